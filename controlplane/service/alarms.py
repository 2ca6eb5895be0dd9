"""Error reports: an error caught at one of serve's top-level boundaries (the reconcile
loop, serve's own loop, a poll round, the load sampler, the notifier, a bot handler) is
logged with its traceback and told to every admin through the outbox (an `alarm` event,
rendered in each admin's language): which part failed, the error, what the system did
about it and what the admin can do.

Reports are grouped by part (and project): the first of a group goes out at once; later
ones within WINDOW seconds are only counted, and when the window is over `tick` (serve's
loop calls it every pass) sends one more report, of the latest error, with the count. So
an error that repeats every second gives one message every 10 minutes, never a flood,
also when the error is the notifier's own failure to deliver the report.

`report` never raises: a failing outbox, a failing redactor, even a failing log handler
are logged (or swallowed) and the caller's loop goes on. Without an outbox (the CLI's
local service, a test) an Alarms only logs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum, unique
from pathlib import Path

from controlplane.domain.events import EventSink
from controlplane.domain.kinds import EventKind
from controlplane.errors import ControlPlaneError
from controlplane.i18n import N_, Text, ntr, tr, verbatim

logger = logging.getLogger(__name__)

WINDOW = 600.0  # s: at most one report per group in this time
ERROR_LIMIT = 300  # characters of an exception's own text in a report

Redact = Callable[[str], str]


@unique
class Part(StrEnum):
    """Where an error was caught: each a top-level boundary of serve."""

    RECONCILE = "reconcile"
    SERVE_LOOP = "serve_loop"
    POLLER = "poller"
    SAMPLER = "sampler"
    NOTIFIER = "notifier"
    BOT_HANDLER = "bot_handler"


PART_NAMES: dict[str, str] = {  # each part as a person reads it (translated where shown)
    Part.RECONCILE: N_("reconcile loop"),
    Part.SERVE_LOOP: N_("main loop of serve"),
    Part.POLLER: N_("poll round"),
    Part.SAMPLER: N_("load sampler"),
    Part.NOTIFIER: N_("notifier"),
    Part.BOT_HANDLER: N_("bot handler"),
}

DID: dict[str, str] = {  # what the system does about an error of each part, by default
    Part.RECONCILE: N_(
        "The program files are written and applied again in 10 s; running apps are left "
        "as they are."
    ),
    Part.SERVE_LOOP: N_("The next pass of the loop runs as usual, in a moment."),
    Part.POLLER: N_("The next round runs as usual, after a short wait."),
    Part.SAMPLER: N_("The next sample is taken as usual, in 30 s."),
    Part.NOTIFIER: N_("The next delivery pass runs as usual, in a few seconds."),
    Part.BOT_HANDLER: N_("The person who pressed or wrote was told it failed; the bot goes on."),
}

REPORT = N_("Internal error in the {part}: {error}\nWhat I did: {did}\nWhat you can do: {can}")
REPORT_REPEATED = N_(
    "Internal error in the {part}: {error}\n{repeats}\nWhat I did: {did}\nWhat you can do: {can}"
)


def error_text(exc: BaseException, redact: Redact, limit: int = ERROR_LIMIT) -> Text:
    """The error for a person, secrets hidden: our error's own message (translated), else
    the exception's type and its first line, in English as it is."""
    if isinstance(exc, ControlPlaneError):
        return exc.text.redacted(redact)
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    kind = type(exc).__name__
    said = first if first.startswith(kind) else f"{kind}: {first}" if first else kind
    said = redact(said)
    return verbatim(said if len(said) <= limit else said[: limit - 1] + "…")


def report_text(part: str, error: Text, did: Text, can: Text, count: int | None) -> Text:
    """One report; `count` (when given) is how many errors of its group it stands for."""
    name = PART_NAMES.get(part)
    values = {
        "part": Text(name) if name is not None else verbatim(part),
        "error": error,
        "did": did,
        "can": can,
    }
    if count is None:
        return tr(REPORT, **values)
    repeats = ntr(
        "Seen {n} time in the last 10 minutes.", "Seen {n} times in the last 10 minutes.", count
    )
    return tr(REPORT_REPEATED, repeats=repeats, **values)


@dataclass
class Occurrence:
    """One error as it is to be told (its texts made when it happened)."""

    part: str
    project: str | None
    error: Text
    did: Text
    can: Text


@dataclass
class Group:
    """The errors of one part (and project): when the last report went out (None: not
    yet, or its publishing failed) and how many came since, the latest kept."""

    told_at: float | None = None
    pending: int = 0
    last: Occurrence | None = None


class Alarms:
    """Logs every error it is given and tells the admins, grouped (thread-safe)."""

    def __init__(
        self,
        outbox: EventSink | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        log_path: Path | None = None,
        redact: Redact | None = None,
        window: float = WINDOW,
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.log_path = log_path
        self.redact: Redact = redact or (lambda text: text)  # serve sets the store's
        self.window = window
        self._groups: dict[tuple[str, str | None], Group] = {}
        self._lock = threading.Lock()

    def report(
        self,
        part: str,
        exc: BaseException,
        did: Text | None = None,
        can: Text | None = None,
        project: str | None = None,
    ) -> None:
        """Log `exc` with its traceback; tell the admins now, or count it for the next
        report when its group was told less than a window ago. Never raises."""
        try:
            self._log(part, exc, did, project)
            error, did_text = self._error(exc), self._did(part, did)
            occurrence = Occurrence(part, project, error, did_text, can or self._can())
            with self._lock:
                group = self._groups.setdefault((part, project), Group())
                group.pending += 1
                group.last = occurrence
                count = self._take_if_due(group, self.clock())
            if count:
                self._publish(group, occurrence, count, shown=count if count > 1 else None)
        except Exception:
            with contextlib.suppress(Exception):
                logger.exception("an error report failed (the error was %r)", exc)

    def reporter(self, part: str, did: Text | None = None) -> Callable[[BaseException], None]:
        """`report` for one part, as a callable a loop is given (the load sampler's)."""

        def report(exc: BaseException) -> None:
            self.report(part, exc, did)

        return report

    def tick(self, now: float | None = None) -> int:
        """Send the counted errors of every group whose window is over; returns how many
        reports went out. Never raises."""
        sent = 0
        try:
            now = self.clock() if now is None else now
            with self._lock:
                due = []
                for key, group in list(self._groups.items()):
                    count = self._take_if_due(group, now)
                    if count and group.last is not None:
                        due.append((group, group.last, count))
                    elif group.told_at is None or now - group.told_at >= self.window:
                        del self._groups[key]  # quiet for a window: the next one is told at once
            for group, occurrence, count in due:
                sent += self._publish(group, occurrence, count, shown=count)
        except Exception:
            with contextlib.suppress(Exception):
                logger.exception("sending the counted error reports failed")
        return sent

    # -- inside -------------------------------------------------------------------------

    def _take_if_due(self, group: Group, now: float) -> int:
        """Under the lock: the count to report now (0: not yet), the group marked told."""
        if not group.pending or (group.told_at is not None and now - group.told_at < self.window):
            return 0
        count, group.pending, group.told_at = group.pending, 0, now
        return count

    def _publish(self, group: Group, occurrence: Occurrence, count: int, shown: int | None) -> int:
        """Tell the admins about `count` errors (`shown`: the count the text names, None
        for the first of a group); on failure they are counted again for the next try."""
        if self.outbox is None:
            return 0
        o = occurrence
        text = report_text(o.part, o.error, o.did, o.can, shown)
        try:
            self.outbox.publish(
                EventKind.ALARM,
                occurrence.project,
                text,
                part=occurrence.part,
                count=count,
            )
        except Exception:
            logger.exception("the error report could not be published: %s", text)
            with self._lock:  # told nobody: counted again, tried at the next report or tick
                group.pending += count
                group.told_at = None
            return 0
        return 1

    def _log(self, part: str, exc: BaseException, did: Text | None, project: str | None) -> None:
        where = f"{part} ({project})" if project else part
        logger.error(
            "%s failed: %s%s",
            where,
            f"{type(exc).__name__}: {exc}",
            f"; {did}" if did is not None else "",
            exc_info=(type(exc), exc, exc.__traceback__),
        )

    def _error(self, exc: BaseException) -> Text:
        try:
            return error_text(exc, self.redact)
        except Exception:  # the redactor itself failed: say no more than the type
            logger.exception("the error could not be redacted")
            return verbatim(type(exc).__name__)

    def _did(self, part: str, did: Text | None) -> Text:
        if did is not None:
            return did
        msgid = DID.get(part)
        return Text(msgid) if msgid is not None else tr("The loop goes on.")

    def _can(self) -> Text:
        if self.log_path is None:
            return tr("See the traceback in serve's log; report it if it keeps happening.")
        return tr(
            "See the traceback in {log}; report it if it keeps happening.",
            log=str(self.log_path),
        )
