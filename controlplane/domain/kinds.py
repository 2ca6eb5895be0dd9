"""The named kinds that cross modules: events, operations, progress.

Each is a StrEnum whose values are the strings stored and sent today (the outbox's
events, the control socket's requests and progress lines), so stored data and every
consumer keep working; a member compares equal to its string.
"""

from __future__ import annotations

from enum import StrEnum, unique

from controlplane.i18n import N_, Text, verbatim


@unique
class EventKind(StrEnum):
    """Something worth telling a person, as the outbox keeps it."""

    NEW_COMMIT = "new_commit"
    VERDICT = "verdict"
    DEPLOYED = "deployed"
    ROLLED_BACK = "rolled_back"
    PROMOTED = "promoted"
    REVERTED = "reverted"
    DISCARDED = "discarded"
    BUILD_FAILED = "build_failed"
    HOST_PINNED = "host_pinned"
    INTERRUPTED = "interrupted"
    CRASH_LOOP = "crash_loop"
    POLL_OUTAGE = "poll_outage"
    POLL_RECOVERED = "poll_recovered"
    ERROR = "error"
    STARTED = "started"
    TRUST_WARNING = "trust_warning"
    BOT_BACK = "bot_back"  # the bot answers again after an outage at start or a crash
    LOAD_WARNING = "load_warning"
    LOAD_OK = "load_ok"
    ALARM = "alarm"  # an error caught in serve, reported grouped (service/alarms.py)


@unique
class OpKind(StrEnum):
    """An operation or request by name (also the control socket's `op`)."""

    DEPLOY = "deploy"
    TEST = "test"
    PROMOTE = "promote"
    DISCARD = "discard"
    ROLLBACK = "rollback"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    SYNC = "sync"
    PRUNE = "prune"
    MOVE = "move"  # onto another runner (this box's supervisord, the swarm)
    PLACE = "place"  # new placement constraints on the swarm
    ADD = "add"
    LAUNCH = "launch"
    REMOVE = "remove"
    CANCEL = "cancel"
    EXTEND = "extend"
    NEW_COMMIT = "new commit"  # the poller's: a new head numbered, then the project's policy


@unique
class ProgressKind(StrEnum):
    """One progress line of a running operation."""

    STEP = "step"  # a named step begins
    LOG = "log"  # a line of output
    DONE = "done"  # the last line: it succeeded
    FAILED = "failed"  # the last line: it failed or was cancelled


OP_NAMES: dict[str, str] = {  # each operation as a person reads it (translated where shown)
    OpKind.DEPLOY: N_("deploy"),
    OpKind.TEST: N_("test"),
    OpKind.PROMOTE: N_("promote"),
    OpKind.DISCARD: N_("discard"),
    OpKind.ROLLBACK: N_("rollback"),
    OpKind.START: N_("start"),
    OpKind.STOP: N_("stop"),
    OpKind.RESTART: N_("restart"),
    OpKind.SYNC: N_("sync"),
    OpKind.PRUNE: N_("prune"),
    OpKind.MOVE: N_("move"),
    OpKind.PLACE: N_("placement"),
    OpKind.ADD: N_("add"),
    OpKind.LAUNCH: N_("launch"),
    OpKind.REMOVE: N_("remove"),
    OpKind.CANCEL: N_("cancel"),
    OpKind.EXTEND: N_("extend"),
    OpKind.NEW_COMMIT: N_("new commit"),
}


def op_name(op: str) -> Text:
    """An operation's name for a person ('deploy' / 'деплой'); an unknown one as it is."""
    msgid = OP_NAMES.get(op)
    return Text(msgid) if msgid is not None else verbatim(op)


SLOT_NAMES: dict[str, str] = {"prod": N_("prod"), "test": N_("test")}


def slot_name(slot: str) -> Text:
    """A slot's name for a person ('prod' / 'прод'); an unknown one as it is."""
    msgid = SLOT_NAMES.get(slot)
    return Text(msgid) if msgid is not None else verbatim(slot)
