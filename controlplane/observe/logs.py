"""A slot's logs: the last lines of stdout and stderr, the full file, and following it;
a build's log.

supervisord writes each slot's stdout and stderr to their own files
($DATA/logs/NAME-SLOT.out.log and .err.log) and rotates them at CONTROLPLANE_APP_LOG_SIZE
(5 MB), keeping CONTROLPLANE_APP_LOG_BACKUPS (3) backups (NAME-SLOT.out.log.1 …), so logs
never fill the disk. The last lines come from the end of the file (and the newest backup
when the file was just rotated); `follow` watches the folder with watchfiles and keeps
reading across a rotation. A build's log is the last attempt's file under logs/builds/
(controlplane.adapters.buildlogs).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controlplane.adapters import buildlogs
from controlplane.adapters.supervisor.client import program_name, slot_logs
from controlplane.adapters.tail import FileCursor as FileCursor
from controlplane.adapters.tail import last_lines
from controlplane.errors import NotFound
from controlplane.i18n import ntr, t, tr
from controlplane.layout import build_log_of
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_LINES = 30
STREAMS = ("stdout", "stderr")

OnLines = Callable[[Path, list[str]], None]


@dataclass(frozen=True)
class SlotLogs:
    """The last lines of one slot's stdout and stderr, and where the full files are."""

    project: str
    slot: str
    program: str
    stdout_path: str
    stderr_path: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slot_tail(
    settings: Settings, name: str, slot: str, n: int = DEFAULT_LINES, which: str = "both"
) -> SlotLogs:
    """The last `n` lines of a slot's stdout and/or stderr (`which`: stdout, stderr, both)."""
    out_log, err_log = slot_logs(settings, name, slot)
    return SlotLogs(
        project=name,
        slot=slot,
        program=program_name(name, slot),
        stdout_path=str(out_log),
        stderr_path=str(err_log),
        stdout=last_lines(out_log, n) if which in ("stdout", "both") else [],
        stderr=last_lines(err_log, n) if which in ("stderr", "both") else [],
    )


def log_file(settings: Settings, name: str, slot: str, stream: str = "stdout") -> Path:
    """The full log file of a slot's stream, to be sent as a document."""
    out_log, err_log = slot_logs(settings, name, slot)
    return err_log if stream == "stderr" else out_log


def format_logs(logs: SlotLogs, which: str = "both", lang: str = "en") -> str:
    """Plain text in `lang`: each stream under its own heading, or a note that it is
    empty (the lines themselves as they are)."""
    parts: list[str] = []
    for stream in STREAMS:
        if which not in (stream, "both"):
            continue
        lines: list[str] = getattr(logs, stream)
        count = ntr("{n} line", "{n} lines", len(lines)).render(lang)
        head = f"── {logs.program} {stream} ({count}) ──"
        parts.append(head + "\n" + ("\n".join(lines) if lines else t(lang, "(empty)")))
    return "\n".join(parts)


# -- builds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildLog:
    """The last lines of the newest build attempt of one commit."""

    project: str
    n: int
    attempt: int
    path: str
    lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_log_path(settings: Settings, name: str, n: int) -> Path | None:
    """The log of commit #n's newest build attempt, or None when there is none (never
    built here, or pruned with its release)."""
    found = buildlogs.attempts(settings.layout, name, n)
    return found[-1] if found else None


def build_tail(settings: Settings, name: str, n: int, lines: int = DEFAULT_LINES) -> BuildLog:
    """The last `lines` lines of commit #n's newest build log; NotFound when it has none."""
    found = buildlogs.attempts(settings.layout, name, n)
    if not found:
        raise NotFound(
            tr(
                "{name} has no build log of #{n}: it went with its release when that was "
                "pruned, or #{n} was never built here",
                name=name,
                n=n,
            )
        )
    path = found[-1]
    parsed = build_log_of(path.name)
    return BuildLog(
        project=name,
        n=n,
        attempt=parsed[2] if parsed else 1,
        path=str(path),
        lines=last_lines(path, lines),
    )


def format_build_log(found: BuildLog, lang: str = "en") -> str:
    """Plain text in `lang`: a heading naming the build and its file, then the lines."""
    count = ntr("{n} line", "{n} lines", len(found.lines)).render(lang)
    head = t(
        lang,
        "── build #{n} of {name}, attempt {attempt} ({count}): {path} ──",
        n=found.n,
        name=found.project,
        attempt=found.attempt,
        count=count,
        path=found.path,
    )
    return head + "\n" + ("\n".join(found.lines) if found.lines else t(lang, "(empty)"))


# -- following -----------------------------------------------------------------------------


def follow(
    paths: Path | Sequence[Path],
    stop: threading.Event,
    on_lines: OnLines,
    *,
    from_end: bool = True,
    debounce_ms: int = 200,
) -> None:
    """Call `on_lines(path, lines)` with what each file gains until `stop` is set.

    The folders are watched with watchfiles (inotify, polling where it is missing), so a
    quiet log costs nothing; a rotated file is read to its end before the new one."""
    import watchfiles

    files = [paths] if isinstance(paths, Path) else list(paths)
    cursors = {str(p): FileCursor(p, from_end=from_end) for p in files}
    names = {p.name for p in files} | {p.name + ".1" for p in files}
    folders = sorted({str(p.parent) for p in files})

    def wanted(_change: watchfiles.Change, changed: str) -> bool:
        return os.path.basename(changed) in names

    _deliver(cursors, on_lines)
    for _changes in watchfiles.watch(
        *folders,
        watch_filter=wanted,
        stop_event=stop,
        debounce=debounce_ms,
        rust_timeout=500,
        recursive=False,
        raise_interrupt=False,
    ):
        _deliver(cursors, on_lines)
    _deliver(cursors, on_lines)


def _deliver(cursors: dict[str, FileCursor], on_lines: OnLines) -> None:
    for cursor in cursors.values():
        lines = cursor.read_new()
        if lines:
            try:
                on_lines(cursor.path, lines)
            except Exception:
                logger.exception("a follower of %s failed", cursor.path)
