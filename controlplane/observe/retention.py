"""What the logs take on disk and what bounds each (`controlplane logs --sizes`).

Every file under $DATA/logs/ is counted with its rotated backups (NAME.1, NAME.2 …) and
the rule that keeps it bounded: supervisord rotates the apps' logs at
CONTROLPLANE_APP_LOG_SIZE keeping CONTROLPLANE_APP_LOG_BACKUPS, and the control plane's own
(supervisord.log, controlplane.log, events.err.log) at CONTROLPLANE_OWN_LOG_SIZE keeping
CONTROLPLANE_OWN_LOG_BACKUPS; the event listener rotates events.jsonl once at 1 MiB; load.json
holds the last hour of samples; build logs go with their releases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.adapters import buildlogs
from controlplane.adapters.supervisor.events import MAX_LOG_BYTES
from controlplane.i18n import Size, Text, t, tr
from controlplane.settings import LogLimit, Settings

BACKUP_RE = re.compile(r"(.+?)\.(\d+)")
OWN = ("supervisord.log", "controlplane.log", "events.err.log")
EVENTS = "events.jsonl"
LOAD = "load.json"
BUILDS = "builds"


@dataclass(frozen=True)
class LogUsage:
    """One log with its backups: what it takes now and what bounds it (`limit` for a log
    supervisord or the listener rotates, else `rule` says it)."""

    name: str
    size: int
    files: int
    limit: LogLimit | None = None
    rule: Text | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "size": self.size, "files": self.files}
        if self.limit is not None:
            data |= {"rotated_at": self.limit.size, "backups": self.limit.backups}
            data["at_most"] = self.limit.most
        if self.rule is not None:
            data["rule"] = self.rule.render("en")
        return data


def _limit(settings: Settings, name: str) -> tuple[LogLimit | None, Text | None]:
    if name in OWN:
        return settings.own_logs, None
    if name == EVENTS:
        return LogLimit(size=MAX_LOG_BYTES, backups=1), None
    if name == LOAD:
        return None, tr("the last hour of samples")
    if name.endswith((".out.log", ".err.log")):
        return settings.app_logs, None
    return None, tr("no limit")


def _sizes(files: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """Base name → (bytes, files), a backup NAME.N counted with NAME."""
    found: dict[str, tuple[int, int]] = {}
    for path in files:
        try:
            if not path.is_file():
                continue
            size = path.stat().st_size
        except OSError:
            continue
        backup = BACKUP_RE.fullmatch(path.name)
        base = backup.group(1) if backup else path.name
        total, count = found.get(base, (0, 0))
        found[base] = (total + size, count + 1)
    return found


def log_sizes(settings: Settings) -> list[LogUsage]:
    """Every log under logs/ with its size and bound; the build logs as one row."""
    logs = settings.layout.logs_dir
    try:
        files = sorted(logs.iterdir())
    except OSError:
        files = []
    order = {name: i for i, name in enumerate((*OWN, EVENTS, LOAD))}
    rows = []
    for name, (size, count) in sorted(
        _sizes(files).items(), key=lambda item: (order.get(item[0], len(order)), item[0])
    ):
        limit, rule = _limit(settings, name)
        rows.append(LogUsage(name=name, size=size, files=count, limit=limit, rule=rule))
    try:
        builds = list(settings.layout.builds_dir.iterdir())
    except OSError:
        builds = []
    size = sum(n for n, _ in _sizes(builds).values())
    rule = tr(
        "each goes with its release; {n} builds of a commit at most", n=buildlogs.ATTEMPTS_KEPT
    )
    rows.append(LogUsage(name=BUILDS + "/", size=size, files=len(builds), rule=rule))
    return rows


def format_sizes(rows: list[LogUsage], lang: str = "en") -> str:
    """A table in `lang`: each log, its size, where it rotates, backups kept, at most; the
    total; which settings change the limits."""
    head = (t(lang, "log"), t(lang, "size"), t(lang, "rotated at"), t(lang, "backups"))
    table = [(*head, t(lang, "at most"))]
    ruled: dict[int, str] = {}  # a row bound by a rule: the rule's text after its size
    for row in rows:
        name = row.name
        if row.files > 1:
            name += " " + t(lang, "({n} files)", n=row.files)
        size = Size(row.size).render(lang)
        if row.limit is None:
            ruled[len(table)] = row.rule.render(lang) if row.rule else ""
            table.append((name, size, "", "", ""))
            continue
        limit = row.limit
        rotated_at, most = Size(limit.size).render(lang), Size(limit.most).render(lang)
        table.append((name, size, rotated_at, str(limit.backups), most))
    table.append((t(lang, "total"), Size(sum(row.size for row in rows)).render(lang), "", "", ""))
    widths = [max(len(cells[i]) for cells in table) for i in range(5)]
    lines = []
    for i, cells in enumerate(table):
        shown = [*cells[:2], ruled[i], "", ""] if i in ruled else list(cells)
        lines.append("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    lines.append(t(lang, "Apps' logs: CONTROLPLANE_APP_LOG_SIZE and CONTROLPLANE_APP_LOG_BACKUPS."))
    lines.append(
        t(
            lang,
            "The control plane's own: CONTROLPLANE_OWN_LOG_SIZE and CONTROLPLANE_OWN_LOG_BACKUPS; "
            "a change applies at the next `controlplane up`.",
        )
    )
    return "\n".join(lines)
