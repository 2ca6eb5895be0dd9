"""A slot's desired state, handed to the Runner.

The store says whether a slot (prod or test of a project) should run; `apply_slot` puts
the slot's program in place with that as its autostart, and `start_slot` starts it or
restarts it. How a slot is pointed at a release, and what a program is, is the runner's
business (controlplane.domain.runner).
"""

from __future__ import annotations

from controlplane.domain.history import SlotState
from controlplane.domain.models import Project
from controlplane.domain.runner import Runner
from controlplane.settings import Settings


def apply_slot(
    settings: Settings,
    runner: Runner,
    project: Project,
    state: SlotState,
    slot: str,
) -> bool:
    """Make the runner's program for a slot match the store (autostart while the store
    wants the slot running). True when the runner (re)made the program, which starts it
    when autostart is on. A slot with neither code nor a release is left alone."""
    if settings.layout.slot_code(project, slot).exists() or state.release(slot) is not None:
        return runner.place(project, slot, autostart=state.running(slot))
    return False


def start_slot(runner: Runner, name: str, slot: str, *, restart: bool) -> None:
    """Start a slot's app without waiting for it to count as running; restart it when
    asked."""
    if restart:
        runner.restart(name, slot)
    else:
        runner.start(name, slot)
