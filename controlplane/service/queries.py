"""Queries: what both faces show, read from the store, supervisord and the log files.

Status, logs and load are measured in controlplane.observe; this module is the one way the
faces reach them (and the store's projects, commits, releases and history). Nothing here
writes, and nothing needs serve: the CLI reads the same way while serve is down. Texts come
out plain (the bot escapes and redacts them itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import parse_program, program_name, slot_logs
from controlplane.adapters.tail import FileCursor
from controlplane.domain.history import CommitRow, Release, SlotState
from controlplane.domain.models import Project, validate_name
from controlplane.errors import ControlPlaneError
from controlplane.observe import retention
from controlplane.observe.logs import (
    STREAMS,
    BuildLog,
    SlotLogs,
    build_log_path,
    build_tail,
    follow,
    format_build_log,
    format_logs,
    log_file,
    slot_tail,
)
from controlplane.observe.status import (
    ProjectStatus,
    format_overview,
    format_status,
    gather,
    project_status,
    swarm_infos,
)
from controlplane.service.configure import Clients
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.observe.load import Snapshot

STDERR_TAG = "[err] "


@dataclass(frozen=True)
class LoadReport:
    """The container's load now, and the samples of the last hour when asked for."""

    snapshot: Snapshot
    samples: list[dict[str, Any]]

    def text(self, lang: str = "en") -> str:
        from controlplane.observe.loadtext import format_load  # see Queries.load

        return format_load(self.snapshot, self.samples, lang=lang)

    def to_dict(self) -> dict[str, Any]:
        return {**self.snapshot.to_dict(), "samples": self.samples}


class LogReader:
    """New lines of a slot's stdout and stderr (stderr's tagged), from now on; each read
    takes at most the newest `limit` bytes per file, so a flooding app skips ahead."""

    def __init__(self, paths: tuple[Path, Path], *, limit: int, lines: int) -> None:
        out_log, err_log = paths
        self.cursors = [(FileCursor(out_log), ""), (FileCursor(err_log), STDERR_TAG)]
        self.limit = limit
        self.lines = lines

    def read(self) -> list[str]:
        return [tag + line for cursor, tag in self.cursors for line in self._bounded(cursor)]

    def _bounded(self, cursor: FileCursor) -> list[str]:
        try:
            st = cursor.path.stat()
        except FileNotFoundError:
            return []
        skipped = st.st_ino == cursor.inode and st.st_size - cursor.offset > self.limit
        if skipped:
            cursor.offset, cursor.partial = st.st_size - self.limit, b""
        found = cursor.read_new()
        if len(cursor.partial) > self.limit:  # a line without end: keep its tail only
            cursor.partial = cursor.partial[-self.limit :]
        return (found[1:] if skipped else found)[-self.lines :]


class Queries:
    """The reading side of the facade, on one store."""

    def __init__(self, settings: Settings, store: Store, clients: Clients) -> None:
        self.settings = settings
        self.store = store
        self.clients = clients

    # -- the store ---------------------------------------------------------------------------

    def project(self, name: str) -> Project:
        return self.store.get_project(name)

    def projects(self) -> list[Project]:
        return self.store.list_projects()

    def chat_langs(self) -> dict[int, str]:
        """The language each admin chat chose with 🌐."""
        return self.store.chat_langs()

    def state(self, name: str) -> SlotState:
        return self.store.state(name)

    def commits(self, name: str) -> list[CommitRow]:
        return self.store.commits(name)

    def releases(self, name: str) -> dict[int, Release]:
        return {r.n: r for r in self.store.releases(name)}

    def head(self, name: str) -> CommitRow | None:
        """The newest numbered commit (the branch head after a fetch)."""
        commits = self.store.commits(name)
        return commits[-1] if commits else None

    def variables_diff(self, name: str) -> list[str]:
        """Names of the variables whose values differ between the test and prod slots."""
        prod, test = self.store.slot_env(name, "prod"), self.store.slot_env(name, "test")
        return sorted(k for k in set(prod) | set(test) if prod.get(k) != test.get(k))

    def history(self, name: str) -> list[dict[str, Any]]:
        """Numbered commits, newest first, with what became of each."""
        self.store.get_project(validate_name(name))
        releases = self.releases(name)
        state = self.store.state(name)
        rows = []
        for c in reversed(self.store.commits(name)):
            release = releases.get(c.n)
            verdict = (release.verdict or {}) if release else {}
            rows.append(
                {
                    "n": c.n,
                    "sha": c.sha,
                    "date": c.date,
                    "author": c.author,
                    "subject": c.subject,
                    "release": release.state if release else None,
                    "live": state.live_slots(c.n),
                    "stopped": state.stopped_slots(c.n),
                    "size": release.size if release else 0,
                    "verdict": None
                    if not verdict
                    else ("passed" if verdict.get("passed") else "failed"),
                }
            )
        return rows

    # -- status ------------------------------------------------------------------------------

    def projects_overview(
        self, names: Sequence[str] | None = None
    ) -> list[tuple[Project, SlotState, str | None]]:
        """Every project (or those named, in that order) with its state and its prod
        program's state (None when supervisord does not answer). Named projects cost a
        state file each and one round trip to supervisord for all of them, so a page of
        the list stays cheap with 1,000 projects; all projects take one getAllProcessInfo."""
        projects = self.projects() if names is None else [self.project(n) for n in names]
        states = self._prod_states(None if names is None else [p.name for p in projects])
        if any(p.runner == "swarm" for p in projects):  # their tasks' states, from the swarm
            for info in swarm_infos(self.settings).values():
                parsed = parse_program(info.name)
                if parsed and parsed[1] == "prod":
                    states[parsed[0]] = info.state
        return [(p, self.store.state(p.name), states.get(p.name)) for p in projects]

    def _prod_states(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Prod programs' states by project: all of them, or those of `names`."""
        try:
            with self.clients(5.0) as client:
                if names is not None:
                    programs = {program_name(n, "prod"): n for n in names}
                    found = client.infos(list(programs))
                    return {programs[p]: info.state for p, info in found.items()}
                infos = client.all_info()
        except ControlPlaneError:
            return {}
        found_all = {}
        for info in infos:
            parsed = parse_program(info.name)
            if parsed and parsed[1] == "prod":
                found_all[parsed[0]] = info.state
        return found_all

    def statuses(self, names: Sequence[str] | None = None) -> list[ProjectStatus]:
        """Every project's status (or those named)."""
        clean = [validate_name(n) for n in names] if names is not None else None
        return gather(self.settings, self.store, clean)

    def status_text(self, name: str, lang: str) -> str:
        """One project's state in full."""
        return format_status(project_status(self.settings, self.store, name), lang)

    def describe(self, found: ProjectStatus, lang: str) -> str:
        return format_status(found, lang)

    def overview_text(self, lang: str, found: Sequence[ProjectStatus] | None = None) -> str:
        """Every project, one line each."""
        return format_overview(self.statuses() if found is None else found, lang)

    # -- logs --------------------------------------------------------------------------------

    def logs(self, name: str, slot: str, n: int, which: str = "both") -> SlotLogs:
        """The last n lines of a slot's stdout and stderr (or one of them); a slot on
        the swarm: its running task's, from the engine."""
        if self.store.get_project(validate_name(name)).runner == "swarm":
            return self._swarm_tail(name, slot, n, which)
        return slot_tail(self.settings, name, slot, n, which)

    def _swarm_tail(self, name: str, slot: str, n: int, which: str) -> SlotLogs:
        from controlplane.adapters.swarm.runner import SwarmRunner
        from controlplane.adapters.swarm.services import service_name

        runner = SwarmRunner(self.settings)
        try:
            lines = runner.tail(name, slot, n)
        finally:
            runner.close()
        where = f"docker service logs {service_name(name, slot)}"
        return SlotLogs(
            project=name,
            slot=slot,
            program=program_name(name, slot),
            stdout_path=where,
            stderr_path=where,
            stdout=lines.stdout[-n:] if which in ("stdout", "both") else [],
            stderr=lines.stderr[-n:] if which in ("stderr", "both") else [],
        )

    def logs_text(self, found: SlotLogs, which: str = "both", lang: str = "en") -> str:
        return format_logs(found, which, lang)

    def log_tail_text(self, name: str, slot: str, n: int, lang: str = "en") -> str:
        """The last n lines of both streams as text (headings in `lang`), or "" when the
        slot printed nothing."""
        found = self.logs(name, slot, n)
        return format_logs(found, lang=lang) if found.stdout or found.stderr else ""

    def log_file_text(self, name: str, slot: str, limit: int) -> str:
        """A slot's full log (the newest limit/2 bytes of each stream) under headings."""
        chunks = []
        for stream in STREAMS:
            path = log_file(self.settings, name, slot, stream)
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(max(0, path.stat().st_size - limit // 2))
                    chunks.append(f"==> {stream} <==\n".encode() + handle.read())
        return b"\n".join(chunks).decode("utf-8", "replace")

    def build_log(self, name: str, n: int, lines: int) -> BuildLog:
        """The last lines of commit #n's newest build log (NotFound when it has none)."""
        return build_tail(self.settings, name, n, lines)

    def build_log_text(self, found: BuildLog, lang: str = "en") -> str:
        return format_build_log(found, lang)

    def build_log_file_text(self, name: str, n: int, limit: int) -> str:
        """Commit #n's newest build log (its last `limit` bytes), or "" when it has none."""
        path = build_log_path(self.settings, name, n)
        if path is None:
            return ""
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - limit))
            return handle.read().decode("utf-8", "replace")

    def log_sizes(self) -> list[retention.LogUsage]:
        """Every log file with its size and what bounds it (`logs --sizes`)."""
        return retention.log_sizes(self.settings)

    def log_sizes_text(self, rows: list[retention.LogUsage], lang: str = "en") -> str:
        return retention.format_sizes(rows, lang)

    def log_reader(self, name: str, slot: str, *, limit: int, lines: int) -> LogReader:
        """A reader of the slot's new lines, from now on (the bot's 👁 Follow)."""
        return LogReader(slot_logs(self.settings, name, slot), limit=limit, lines=lines)

    def follow_logs(
        self,
        paths: Sequence[Path],
        stop: threading.Event,
        show: Callable[[Path, list[str]], None],
    ) -> None:
        """Call show(path, lines) with what each file gains until stop is set."""
        follow(list(paths), stop, show)

    # -- load --------------------------------------------------------------------------------

    def load(self, *, hour: bool = False) -> LoadReport:
        """CPU, memory, disk and per-project figures now (and the last hour's samples)."""
        # imported here: psutil costs `controlplane status` and the other CLI commands that
        # never measure load a third of their start-up
        from controlplane.observe.load import measure, read_samples

        snap = measure(self.settings)
        samples = read_samples(self.settings, since=snap.at - 3600) if hour else []
        return LoadReport(snap, samples)
