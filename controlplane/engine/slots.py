"""Slots on disk and in supervisord: the atomic link switch and a slot's desired state.

Prod is the admin's project folder, a symlink to the live release; test is
projects/NAME/test. A link is switched by making a new link beside it and renaming it
over the old one, so the folder always points at a whole release. A folder holding
files we did not put there is never deleted or taken over.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from controlplane.adapters.files import fsync_dir
from controlplane.adapters.supervisor.client import (
    BAD_NAME,
    ProgramOptions,
    RPCFault,
    Supervisor,
    program_name,
    write_program,
)
from controlplane.domain.history import SlotState
from controlplane.domain.models import Project
from controlplane.errors import ControlPlaneError
from controlplane.settings import Settings

logger = logging.getLogger(__name__)


class FolderTaken(ControlPlaneError):
    """The project folder holds someone's files."""


def link_target(link: Path) -> Path | None:
    """Where a slot link points (resolved), or None when it is not a link."""
    if not link.is_symlink():
        return None
    return Path(os.path.realpath(link))


def switch_link(link: Path, target: Path) -> None:
    """Point `link` at `target` atomically (a new link renamed over the old)."""
    if link.exists() and not link.is_symlink():
        if link.is_dir() and not any(link.iterdir()):
            link.rmdir()  # an empty folder the admin made for us
        else:
            raise FolderTaken(
                f"{link} holds files the control plane did not put there; move them away "
                "or give the project another folder (`controlplane project set` cannot "
                "change it: remove and add the project)"
            )
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.switch-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
    fsync_dir(link.parent)
    logger.info("%s -> %s", link, target)


def remove_link(link: Path) -> None:
    """Remove a slot link (never a real folder)."""
    if link.is_symlink():
        link.unlink()


def apply_slot(
    settings: Settings,
    client: Supervisor,
    project: Project,
    state: SlotState,
    slot: str,
) -> bool:
    """Make supervisord's program for a slot match the store: file, autostart, applied.
    True when supervisord (re)made the slot's group, which starts it when autostart is on."""
    changed = False
    if settings.layout.slot_code(project, slot).exists() or state.release(slot) is not None:
        options = ProgramOptions(autostart=state.running(slot))
        changed = write_program(settings, project, slot, options=options)
    if not changed and known(client, program_name(project.name, slot)):
        return False  # a link flip: no reread of every program file (a rollback's hot path)
    plan = client.apply()
    return program_name(project.name, slot) in (*plan.added, *plan.changed)


def known(client: Supervisor, program: str) -> bool:
    """Whether supervisord has the program (a missing file or group needs an apply)."""
    try:
        client.info(program)
    except RPCFault as fault:
        if fault.code == BAD_NAME:
            return False
        raise
    return True


def start_slot(client: Supervisor, name: str, slot: str, *, restart: bool) -> None:
    """Start a slot's program without waiting for startsecs; restart it when asked."""
    program = program_name(name, slot)
    if restart:
        client.stop(program)
    client.start(program, wait=False)
