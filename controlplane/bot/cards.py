"""Live cards kept in the store while their operation runs, so that none stays at ⏳.

A card (progress.py) is recorded with its chat, message, operation and the process that
runs it when it is posted, and forgotten once it shows how the operation ended. A card
still recorded when the bot starts was cut short: by a crash of serve (its process is
gone) or by a restart of the bot alone (its operation may still run here): progress.
take_up_cards ends or takes up each.
"""

from __future__ import annotations

import os
import time
from typing import Any

from controlplane.bot.context import Deps
from controlplane.service.facade import Operation

TABLE = "cards"


def live(d: Deps, op: Operation, at: tuple[int, int]) -> None:
    """Remember a card being posted (blocking: the store)."""
    row = {
        "chat": at[0],
        "message": at[1],
        "op": str(op.op),
        "project": op.project,
        "pid": os.getpid(),
        "since": time.time(),
    }

    def change(rows: dict[str, Any]) -> None:
        rows[op.id] = row

    d.service.config.bot_records(TABLE, change)


def ended(d: Deps, op_id: str) -> None:
    """Forget a card that shows how its operation ended."""
    d.service.config.bot_records(TABLE, lambda rows: rows.pop(op_id, None))


def take_all(d: Deps) -> dict[str, dict[str, Any]]:
    """Every card recorded (they are forgotten as they are ended or taken up)."""

    def change(rows: dict[str, Any]) -> dict[str, Any]:
        taken = dict(rows)
        rows.clear()
        return taken

    taken: dict[str, dict[str, Any]] = d.service.config.bot_records(TABLE, change)
    return taken
