"""Status of projects, and every text the observability commands print.

`project_status` (one) and `gather` (several) collect the store, supervisord,
events.jsonl and an optional Poller into plain `ProjectStatus` records; `build_status` is
the pure part that builds one. The texts
(`format_status`, `format_overview`) are pure functions of those records, plain text in
the language asked for (the gettext catalog: labels, durations, sizes and counts in that
language; states, names and commits as they are); the bot escapes them for Telegram.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from controlplane.domain.backoff import poll_wait
from controlplane.domain.history import CommitRow, Release, SlotState
from controlplane.domain.kinds import op_name, slot_name
from controlplane.domain.models import Project, interval_text
from controlplane.domain.runner import ProcessInfo, program_name
from controlplane.i18n import Duration, Size, Text, ntr, render, t
from controlplane.layout import rotated

if TYPE_CHECKING:
    from controlplane.adapters.store import Store
    from controlplane.settings import Settings

logger = logging.getLogger(__name__)

HOUR = 3600.0
RESTART_STATES = ("EXITED", "BACKOFF")  # an exit or a failed start, as watch.py counts them


class NextPoll(Protocol):
    """What status needs of a Poller."""

    def next_poll(self, name: str) -> float | None: ...


@dataclass(frozen=True)
class CommitInfo:
    """A numbered commit as status shows it."""

    n: int | None
    sha: str
    subject: str
    date: float | None


@dataclass(frozen=True)
class SlotStatus:
    """One slot: what supervisord says and which release it runs."""

    slot: str
    program: str
    state: str  # RUNNING, STOPPED, BACKOFF, FATAL, … ; 'ABSENT' when it has no program
    pid: int
    uptime: float
    restarts: int  # exits and failed starts in the last hour
    wanted: bool  # the store says it should run
    release: CommitInfo | None
    exitstatus: int | None = None


@dataclass(frozen=True)
class ProjectStatus:
    """Everything `controlplane status NAME` shows, as plain data."""

    name: str
    branch: str
    poll_interval: int
    prod: SlotStatus
    test: SlotStatus
    last_poll: dict[str, Any] | None
    next_poll: float | None  # epoch seconds; None: off
    next_poll_exact: bool  # from the running poller; else estimated from the last poll
    waiting: CommitInfo | None  # the branch head, when prod does not run it
    op: dict[str, Any] | None
    releases_on_disk: int
    releases_bytes: int
    now: float
    note: Text | str | None = None  # why supervisord's figures are missing

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["note"] = None if self.note is None else str(self.note)
        if self.next_poll is not None and math.isinf(self.next_poll):
            data["next_poll"] = None
        return data


# -- the pure part -------------------------------------------------------------------------


def restarts_by_program(records: Iterable[Mapping[str, Any]], since: float) -> dict[str, int]:
    """Exits and failed starts per program in the event records at or after `since`."""
    counts: dict[str, int] = {}
    for r in records:
        if r.get("state") in RESTART_STATES and float(r.get("time", 0)) >= since:
            program = str(r.get("program", ""))
            counts[program] = counts.get(program, 0) + 1
    return counts


def last_exits(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The exit status of each program's last exit or failed start that the event
    listener recorded one for."""
    exits: dict[str, int] = {}
    for r in records:
        if r.get("state") in RESTART_STATES and r.get("exitstatus") is not None:
            exits[str(r.get("program", ""))] = int(r["exitstatus"])
    return exits


def exit_status(info: ProcessInfo | None, logged: int | None) -> int | None:
    """The exit status to show beside a slot's state: supervisord's own after an exit
    while running (EXITED); after failed starts (BACKOFF, FATAL) the one the event
    listener recorded, since supervisord keeps none then and says 0; else none."""
    if info is None:
        return None
    if info.state == "EXITED":
        return info.exitstatus
    return logged if info.state in ("BACKOFF", "FATAL") else None


def commit_info(
    commits: Sequence[CommitRow], sha: str | None = None, n: int | None = None
) -> CommitInfo | None:
    """The numbered commit with that sha or number (a bare sha when it has no number)."""
    for c in commits:
        if (sha is not None and c.sha == sha) or (n is not None and c.n == n):
            return CommitInfo(c.n, c.sha, c.subject, c.date)
    return CommitInfo(None, sha, "", None) if sha else None


def estimate_next_poll(project: Project, state: SlotState) -> float | None:
    """When the next check is due, from the last one (the poller adds a little jitter)."""
    if project.poll <= 0:
        return None
    last = (state.last_poll or {}).get("at")
    if last is None:
        return -math.inf
    return float(last) + poll_wait(project.poll, state.poll_failures)


def slot_status(
    slot: str,
    name: str,
    state: SlotState,
    info: ProcessInfo | None,
    restarts: int,
    commits: Sequence[CommitRow],
    logged_exit: int | None = None,
) -> SlotStatus:
    n = state.release(slot)
    return SlotStatus(
        slot=slot,
        program=program_name(name, slot),
        state=info.state if info else "ABSENT",
        pid=info.pid if info else 0,
        uptime=info.uptime if info else 0.0,
        restarts=restarts,
        wanted=state.running(slot),
        release=commit_info(commits, n=n) if n is not None else None,
        exitstatus=exit_status(info, logged_exit),
    )


def build_status(
    project: Project,
    state: SlotState,
    releases: Sequence[Release],
    commits: Sequence[CommitRow],
    infos: Mapping[str, ProcessInfo],
    restarts: Mapping[str, int],
    now: float,
    next_poll: float | None = None,
    note: Text | str | None = None,
    exits: Mapping[str, int] | None = None,
) -> ProjectStatus:
    """One project's status from plain data (`infos`, `restarts` and the recorded `exits`
    keyed by program)."""
    slots = {
        slot: slot_status(
            slot,
            project.name,
            state,
            infos.get(program_name(project.name, slot)),
            restarts.get(program_name(project.name, slot), 0),
            commits,
            (exits or {}).get(program_name(project.name, slot)),
        )
        for slot in ("prod", "test")
    }
    live = slots["prod"].release
    waiting = None
    if state.head and (live is None or live.sha != state.head):
        waiting = commit_info(commits, sha=state.head)
    on_disk = [r for r in releases if r.state == "ready"]
    return ProjectStatus(
        name=project.name,
        branch=project.branch,
        poll_interval=project.poll,
        prod=slots["prod"],
        test=slots["test"],
        last_poll=state.last_poll,
        next_poll=next_poll if next_poll is not None else estimate_next_poll(project, state),
        next_poll_exact=next_poll is not None,
        waiting=waiting,
        op=state.op,
        releases_on_disk=len(on_disk),
        releases_bytes=sum(r.size for r in on_disk),
        now=now,
        note=note,
    )


# -- gathering (side effects) --------------------------------------------------------------


def read_events(events_log: Path) -> list[dict[str, Any]]:
    """The event listener's records (the rotated generation, then the current one)."""
    records: list[dict[str, Any]] = []
    for path in (rotated(events_log), events_log):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, PermissionError):
            continue
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def supervisor_infos(settings: Settings) -> tuple[dict[str, ProcessInfo], Text | None]:
    """Every program supervisord knows, by name; an empty map and the reason when it is down."""
    from controlplane.adapters.supervisor.client import Supervisor
    from controlplane.errors import SupervisorError

    try:
        with Supervisor(settings, timeout=5.0) as client:
            return {i.name: i for i in client.all_info()}, None
    except SupervisorError as exc:
        return {}, exc.text


def swarm_infos(settings: Settings) -> dict[str, ProcessInfo]:
    """Every slot the swarm runs, by name (none when the swarm does not answer)."""
    from controlplane.adapters.swarm.runner import SwarmRunner
    from controlplane.errors import ControlPlaneError

    runner = SwarmRunner(settings)
    try:
        return {i.name: i for i in runner.statuses()}
    except ControlPlaneError:
        return {}
    finally:
        runner.close()


def gather(
    settings: Settings,
    store: Store,
    names: Sequence[str] | None = None,
    *,
    infos: Mapping[str, ProcessInfo] | None = None,
    poller: NextPoll | None = None,
    now: float | None = None,
) -> list[ProjectStatus]:
    """Status of the named projects (all when None), one supervisord call for all."""
    now = time.time() if now is None else now
    projects = [store.get_project(n) for n in names] if names is not None else store.list_projects()
    note: Text | None = None
    if infos is None:
        infos, note = supervisor_infos(settings) if projects else ({}, None)
        if any(p.runner == "swarm" for p in projects):
            infos = {**infos, **swarm_infos(settings)}
    records = read_events(settings.layout.events_log)
    restarts, exits = restarts_by_program(records, now - HOUR), last_exits(records)
    out = []
    for p in projects:
        next_poll = poller.next_poll(p.name) if poller is not None else None
        state, releases = store.state(p.name), store.releases(p.name)
        numbers = {n for n in (state.release("prod"), state.release("test")) if n is not None}
        commits = store.find_commits(p.name, numbers, {state.head} if state.head else set())
        out.append(
            build_status(p, state, releases, commits, infos, restarts, now, next_poll, note, exits)
        )
    return out


# -- texts (pure) --------------------------------------------------------------------------


def commit_text(c: CommitInfo) -> str:
    number = f"#{c.n} " if c.n is not None else ""
    return f"{number}{c.sha[:7]} {c.subject}".rstrip()


def state_text(state: str, lang: str) -> str:
    """supervisord's name of a state as it is (RUNNING, FATAL …); ours for a slot without
    a program in the reader's language."""
    return t(lang, "ABSENT") if state == "ABSENT" else state


def slot_line(s: SlotStatus, lang: str = "en") -> str:
    """'prod  RUNNING  pid 812  up 2h 3m  1 restart in the last hour' (plain text)."""
    parts = [f"{slot_name(s.slot).render(lang):<5} {state_text(s.state, lang)}"]
    if s.pid:
        parts.append(f"pid {s.pid}")
    if s.uptime:
        parts.append(t(lang, "up {duration}", duration=Duration(s.uptime)))
    if s.exitstatus is not None:
        parts.append(t(lang, "exit status {status}", status=s.exitstatus))
    if s.restarts:
        restarts = ntr("{n} restart in the last hour", "{n} restarts in the last hour", s.restarts)
        parts.append(restarts.render(lang))
    return "  ".join(parts)


def poll_text(ps: ProjectStatus, lang: str = "en") -> tuple[str, str]:
    """(last poll, next poll) as words."""
    last = ps.last_poll
    if not last:
        last_text = t(lang, "never")
    else:
        age = Duration(ps.now - float(last.get("at", ps.now)))
        if last.get("ok"):
            last_text = t(lang, "{age} ago, ok", age=age)
        else:
            msg = last.get("msg")  # the error as a Text's data (older rows: English only)
            error = Text.from_dict(msg) if isinstance(msg, dict) else str(last.get("error") or "")
            last_text = t(lang, "{age} ago, failed: {error}", age=age, error=error)
    nxt = ps.next_poll
    if nxt is None or nxt == math.inf or ps.poll_interval <= 0:
        return last_text, t(lang, "off")
    wait = Duration(nxt - ps.now)
    every = interval_text(ps.poll_interval)
    if nxt <= ps.now:
        next_text = t(lang, "due now (every {interval})", interval=every)
    elif ps.next_poll_exact:
        next_text = t(lang, "in {wait} (every {interval})", wait=wait, interval=every)
    else:
        next_text = t(lang, "about in {wait} (every {interval})", wait=wait, interval=every)
    return last_text, next_text


def format_status(ps: ProjectStatus, lang: str = "en") -> str:
    """The full status of one project, plain text."""
    lines = [f"{ps.name} ({ps.branch})"]
    for s in (ps.prod, ps.test):
        lines.append(slot_line(s, lang))
        if s.release is not None:
            date = s.release.date
            line = commit_text(s.release)
            if date:
                line += " " + t(lang, "(committed {age} ago)", age=Duration(ps.now - date))
            lines.append("      " + line)
        elif s.slot == "prod":
            lines.append("      " + t(lang, "nothing deployed"))
    last, nxt = poll_text(ps, lang)
    rows = [(t(lang, "last poll"), last), (t(lang, "next poll"), nxt)]
    if ps.waiting is not None:
        rows.append((t(lang, "newer commit"), commit_text(ps.waiting)))
    if ps.op:
        since = Duration(ps.now - float(ps.op.get("since", ps.now)))
        op = op_name(str(ps.op.get("op", "")))
        rows.append((t(lang, "in progress"), t(lang, "{op} for {duration}", op=op, duration=since)))
    on_disk = ntr(
        "{n} on disk, {size}",
        "{n} on disk, {size}",
        ps.releases_on_disk,
        size=Size(ps.releases_bytes),
    )
    rows.append((t(lang, "releases"), on_disk.render(lang)))
    if ps.note:
        rows.append((t(lang, "note"), render(ps.note, lang)))
    width = max(len(k) for k, _ in rows)
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def overview_line(ps: ProjectStatus, lang: str = "en") -> str:
    """One line: 'shop  prod RUNNING #7 up 2h  test STOPPED  newer commit #8  deploy 1m'."""
    parts = [f"{ps.name:<16}"]
    for s in (ps.prod, ps.test):
        if s.state == "ABSENT" and s.release is None:
            continue
        number = f" #{s.release.n}" if s.release and s.release.n is not None else ""
        up = " " + t(lang, "up {duration}", duration=Duration(s.uptime)) if s.uptime else ""
        again = ""
        if s.restarts:
            again = " " + ntr("{n}× restarted", "{n}× restarted", s.restarts).render(lang)
        slot = slot_name(s.slot).render(lang)
        parts.append(f"{slot} {state_text(s.state, lang)}{number}{up}{again}")
    if len(parts) == 1:
        parts.append(t(lang, "nothing deployed"))
    if ps.waiting is not None:
        newer = commit_text(ps.waiting).split(" ")[0]
        parts.append(t(lang, "newer commit {commit}", commit=newer))
    if ps.last_poll and not ps.last_poll.get("ok"):
        parts.append(t(lang, "poll failed"))
    if ps.op:
        since = Duration(ps.now - float(ps.op.get("since", ps.now)))
        parts.append(f"{op_name(str(ps.op.get('op', ''))).render(lang)} {since.render(lang)}")
    return "  ".join(parts)


def format_overview(statuses: Sequence[ProjectStatus], lang: str = "en") -> str:
    """All projects, one line each."""
    if not statuses:
        return t(lang, "no projects yet: add one with `controlplane project add`")
    return "\n".join(overview_line(ps, lang) for ps in statuses)


def project_status(
    settings: Settings,
    store: Store,
    name: str,
    *,
    poller: NextPoll | None = None,
    infos: Mapping[str, ProcessInfo] | None = None,
    now: float | None = None,
) -> ProjectStatus:
    """One project's status (NotFound when there is no such project)."""
    return gather(settings, store, [name], infos=infos, poller=poller, now=now)[0]
