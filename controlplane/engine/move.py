"""Moving a project between runners (this box's supervisord and the swarm), and its
placement on the swarm.

A move puts every slot that has a release on the new runner first: placed, pointed at the
same release, started when it was running and watched for the health window as a deploy
is. Only when every slot stands there is the old runner's slot removed and the project's
`runner` written; a failure on the way takes the new runner's slots away again and leaves
the project where it was, saying why in one line.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from controlplane.domain.models import SLOTS, Project, validate_placement, validate_runner
from controlplane.domain.runner import Runner
from controlplane.domain.verdict import crash_looping, crash_text
from controlplane.engine.releases import Engine, Reporter
from controlplane.engine.slots import start_slot
from controlplane.engine.watch import Watcher
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, tr


@runtime_checkable
class Runners(Protocol):
    """serve's runner (adapters/routing.py): each kind's runner, and a lookup to drop."""

    def by_kind(self, kind: str) -> Runner: ...

    def forget(self, name: str) -> None: ...


@dataclass(frozen=True)
class SlotMove:
    slot: str
    release: Path
    running: bool


def where(kind: str) -> Text:
    return tr("this box") if kind == "local" else tr("the swarm")


def runners_of(engine: Engine) -> Runners:
    runners = engine.runner
    if not isinstance(runners, Runners):
        raise ControlPlaneError(tr("this control plane runs every project on this box only"))
    return runners


def reachable(runners: Runners, kind: str) -> Runner:
    """The runner of `kind`, asked once that it answers (a swarm: that one is reachable)."""
    try:
        runner = runners.by_kind(kind)
        runner.statuses()
    except ControlPlaneError as exc:
        if kind != "swarm":
            raise
        raise ControlPlaneError(
            tr(
                "no swarm is reachable ({reason}); docs/multihost.md says how to set one up",
                reason=exc.text,
            )
        ) from exc
    return runner


def slots_to_move(engine: Engine, project: Project) -> list[SlotMove]:
    """Each slot that has a release: the release folder it points at, whether it runs."""
    state = engine.store.state(project.name)
    found = []
    for slot in SLOTS:
        n = state.release(slot)
        code = engine.settings.layout.slot_code(project, slot)
        if n is None and not code.is_symlink():
            continue
        if code.is_symlink():
            release = code.resolve()
        else:
            assert n is not None
            row = engine.store.release(project.name, n)
            if row is None:
                continue
            release = engine.release_path(project.name, n, row.sha)
        found.append(SlotMove(slot, release, state.running(slot)))
    return found


def move(engine: Engine, name: str, kind: str, op: Reporter) -> Text:
    """Move the project's slots onto the runner `kind` ("local" or "swarm")."""
    kind = validate_runner(kind)
    project = engine.store.get_project(name)
    if project.runner == kind:
        return tr("{name} runs on {where} already", name=name, where=where(kind))
    runners = runners_of(engine)
    new = reachable(runners, kind)
    old = runners.by_kind(project.runner)
    moved = project.with_(runner=kind)
    slots = slots_to_move(engine, project)
    done: list[SlotMove] = []
    try:
        for item in slots:
            done.append(item)
            bring_up(engine, new, moved, item, op)
    except ControlPlaneError as exc:
        for item in done:
            take_back(new, old, moved, project, item)
        raise ControlPlaneError(
            tr(
                "{name} stays on {where}: {reason}",
                name=name,
                where=where(project.runner),
                reason=exc.text,
            )
        ) from exc
    for item in slots:
        op.step(tr("remove {slot} from {where}", slot=item.slot, where=where(project.runner)))
        old.remove(project, item.slot)
        new.switch(moved, item.slot, item.release)  # the old runner took the link away
    engine.store.update_project(name, runner=kind)
    runners.forget(name)
    return tr("{name} now runs on {where}", name=name, where=where(kind))


def bring_up(engine: Engine, new: Runner, moved: Project, item: SlotMove, op: Reporter) -> None:
    """Put one slot on the new runner, started and watched when it was running."""
    name, slot = moved.name, item.slot
    op.step(tr("put {slot} on {where}", slot=slot, where=where(moved.runner)))
    new.switch(moved, slot, item.release)
    remade = new.place(moved, slot, autostart=item.running)
    if not item.running:
        return
    start_slot(new, name, slot, restart=not remade)
    if moved.health_window <= 0:
        return
    op.step(tr("health window {seconds} s", seconds=moved.health_window))
    watcher = Watcher(new, engine.settings, name, slot)
    deadline = time.monotonic() + moved.health_window
    evidence = watcher.sample()
    while not crash_looping(evidence) and time.monotonic() < deadline:
        if op.cancel.wait(engine.sample_every):
            raise ControlPlaneError(tr("cancelled"))
        evidence = watcher.sample()
    if crash_looping(evidence):
        what = crash_text(watcher.settle())
        raise ControlPlaneError(tr("{slot} crashed there: {what}", slot=slot, what=what))


def take_back(new: Runner, old: Runner, moved: Project, project: Project, item: SlotMove) -> None:
    """Undo one slot's bring_up: gone from the new runner, the link as the old one had it."""
    with contextlib.suppress(ControlPlaneError):  # the move's own error says why
        new.remove(moved, item.slot)
    old.switch(project, item.slot, item.release)


def set_placement(engine: Engine, name: str, raw: list[str], op: Reporter) -> Text:
    """New placement constraints; a project on the swarm has its slots placed anew."""
    placement = validate_placement(raw)
    project = engine.store.update_project(name, placement=placement)
    shown = ", ".join(placement) or tr("anywhere")
    if project.runner == "swarm":
        runner = runners_of(engine).by_kind("swarm")
        state = engine.store.state(name)
        for item in slots_to_move(engine, project):
            op.step(tr("place {slot} again", slot=item.slot))
            runner.place(project, item.slot, autostart=state.running(item.slot))
    return tr("{name}: placement {placement}", name=name, placement=shown)
