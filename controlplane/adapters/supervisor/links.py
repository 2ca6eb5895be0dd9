"""Slot links: how supervisord's slots are pointed at a release.

A slot's program runs the code in the slot's folder (layout.slot_code): prod runs from the
admin's project folder, test from projects/NAME/test, and each is a symlink to a release.
A link is switched by making a new link beside it and renaming it over the old one, so the
folder always points at a whole release. A folder holding files we did not put there is
never deleted or taken over.

Start order: the prod folder lies outside $DATA, so a new container on an old data volume
has no link there until `serve` puts it back, while supervisord starts the apps at once.
`controlplane up` leaves a "links pending" mark ($DATA/supervisor/links-pending) before it
starts supervisord, `serve` removes it once the links are back, and `run-slot` waits (a
bounded wait) for the link while the mark is there instead of failing the first start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from controlplane.adapters.files import fsync_dir
from controlplane.errors import ControlPlaneError
from controlplane.i18n import tr

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
                tr(
                    "{folder} holds files the control plane did not put there; move them "
                    "away or give the project another folder (`controlplane project set` "
                    "cannot change it: remove and add the project)",
                    folder=str(link),
                )
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


PENDING_MARK = "links-pending"
LINK_WAIT = 30.0  # seconds run-slot waits for serve to put a link back (serve on a Pi)


def pending_mark(supervisor_dir: Path) -> Path:
    """The mark `up` leaves until serve has put the slot links back."""
    return supervisor_dir / PENDING_MARK


def mark_links_pending(supervisor_dir: Path) -> None:
    """Before supervisord starts: the links may be missing until serve has restored them."""
    supervisor_dir.mkdir(parents=True, exist_ok=True)
    pending_mark(supervisor_dir).write_text(f"{os.getpid()}\n", encoding="utf-8")


def mark_links_restored(supervisor_dir: Path) -> None:
    """serve has put the links back: a slot without code now really has none."""
    pending_mark(supervisor_dir).unlink(missing_ok=True)


def wait_for_code(
    code: Path, supervisor_dir: Path, timeout: float = LINK_WAIT, step: float = 0.05
) -> bool:
    """Whether `code` is a folder, waiting while the links are pending (at most `timeout`
    seconds); without the mark it answers at once."""
    deadline = time.monotonic() + timeout
    while not code.is_dir():
        if not pending_mark(supervisor_dir).exists() or time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True
