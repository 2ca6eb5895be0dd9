"""Requests: the operations a face may ask for, by name, with their arguments checked.

A request names an operation (`Op`), a project and its arguments, as the bot builds them
and as the CLI sends them over the control socket. `check_request` validates every field
before anything starts (pure: it reads nothing) and raises ValidationError naming what is
accepted. An operation asked for while serve is down gets `ServeDown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.domain.history import parse_ref
from controlplane.domain.kinds import OpKind
from controlplane.domain.models import (
    parse_test_duration,
    validate_name,
    validate_placement,
    validate_runner,
    validate_slot,
)
from controlplane.errors import ControlPlaneError, ValidationError
from controlplane.i18n import N_, Text, tr

DEFAULT_TEST_SECONDS = 60
SERVE_DOWN = N_(
    "controlplane serve is not running: start it with `controlplane up` "
    "(or `supervisorctl start controlplane` when supervisord runs)"
)


# Every operation by its name (the name is also the socket protocol's `op`): the domain's
# one enum of operations, under the name the faces know.
Op = OpKind


# operations of a project that the engine carries out (check_request's)
ENGINE_OPS = (
    Op.DEPLOY,
    Op.TEST,
    Op.PROMOTE,
    Op.DISCARD,
    Op.ROLLBACK,
    Op.START,
    Op.STOP,
    Op.RESTART,
    Op.SYNC,
    Op.PRUNE,
    Op.MOVE,
    Op.PLACE,
)
SLOT_OPS = (Op.START, Op.STOP, Op.RESTART)
ARG_NAMES = {"duration": N_("duration"), "seconds": N_("seconds")}  # as a refusal names them


@dataclass(frozen=True)
class Request:
    """A checked request: the operation, its project, and clean arguments."""

    op: Op
    project: str
    args: dict[str, Any]


def commit_arg(args: dict[str, Any]) -> str | None:
    value = args.get("commit")
    if value in (None, ""):
        return None
    parse_ref(str(value))
    return str(value)


def slot_arg(args: dict[str, Any]) -> str:
    return validate_slot(str(args.get("slot", "prod")))


def seconds_arg(args: dict[str, Any], key: str, default: int) -> int:
    raw = args.get(key)
    if raw in (None, ""):
        return default
    field = Text(ARG_NAMES[key]) if key in ARG_NAMES else key
    return parse_test_duration(str(raw), field_name=field)


def check_request(op: str, project: str | None, args: dict[str, Any]) -> Request:
    """Validate a request for the engine (pure); raises ValidationError naming what is
    accepted."""
    if op not in ENGINE_OPS:
        ops = ", ".join(ENGINE_OPS)
        raise ValidationError(tr("operation"), op, tr("use one of {ops}", ops=ops))
    kind = Op(op)
    name = validate_name(project or "")
    clean: dict[str, Any] = {}
    if kind in (Op.DEPLOY, Op.TEST, Op.ROLLBACK):
        clean["commit"] = commit_arg(args)
    if kind == Op.ROLLBACK and clean["commit"] is None:
        raise ValidationError(tr("commit"), "", tr("rollback needs a commit number, like 3"))
    if kind == Op.TEST:
        clean["duration"] = seconds_arg(args, "duration", 0)
    if kind in SLOT_OPS:
        clean["slot"] = slot_arg(args)
    if kind == Op.RESTART and args.get("watch"):
        clean["watch"] = True  # a restart for a variable change: with the health window
    if kind == Op.PROMOTE:
        clean["force"] = bool(args.get("force", False))
    if kind == Op.MOVE:
        clean["runner"] = validate_runner(str(args.get("runner", "")))
    if kind == Op.PLACE:
        raw = args.get("placement") or []
        clean["placement"] = list(validate_placement([str(v) for v in raw]))
    return Request(op=kind, project=name, args=clean)


class ServeDown(ControlPlaneError):
    """Operations need serve, and nothing listens on its socket (or this facade was opened
    on the store alone); the message says how to start it."""

    def __init__(self) -> None:
        super().__init__(Text(SERVE_DOWN))
