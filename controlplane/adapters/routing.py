"""The Runner serve gives the engine: each project's slots go to the runner it is on.

A project is on this box (`Project.runner` "local": supervisord) or on the swarm
("swarm"). Calls that carry the project (place, switch, remove) go by its field; calls
by name look the project up once and keep the answer (`forget` drops it: a move). The
Swarm runner is made on the first call that needs it, so serve never imports the docker
SDK while every project stays on this box; it gets the store's variables as run-slot
composes them (`variables`) and each project's placement constraints. `statuses` and
`events` cover both runners (the swarm's only once it is in use); the apps' parent on
this host is supervisord's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.domain.models import Project
from controlplane.domain.runner import (
    EventFeed,
    LogFeed,
    ProcessInfo,
    Runner,
    SlotEvent,
    SlotLines,
)
from controlplane.errors import ControlPlaneError
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.adapters.swarm.runner import SwarmRunner

logger = logging.getLogger(__name__)

Lookup = Callable[[str], Project]  # a project by name (the store's)
Variables = Callable[[str, str], dict[str, str]]  # a slot's variables, as run-slot sees them
LOCAL, SWARM = "local", "swarm"


def make_swarm(settings: Settings, variables: Variables) -> SwarmRunner:
    """The Swarm runner for DOCKER_HOST (or the local socket), with the store's variables."""
    from controlplane.adapters.swarm.runner import SwarmRunner

    return SwarmRunner(settings, variables=variables)


class RoutingRunner:
    """The Runner protocol over `local` and a Swarm runner made by `swarm_factory` on
    first use; `lookup` finds a project by name (the store's get_project)."""

    def __init__(
        self,
        local: Runner,
        lookup: Lookup,
        swarm_factory: Callable[[], Runner],
    ) -> None:
        self.local = local
        self.lookup = lookup
        self._factory = swarm_factory
        self._swarm: Runner | None = None
        self._where: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- which runner -----------------------------------------------------------------------

    @property
    def swarm_in_use(self) -> bool:
        """Whether the Swarm runner has been made (some project needed it)."""
        return self._swarm is not None

    def swarm(self) -> Runner:
        """The Swarm runner, made now if it was not yet."""
        with self._lock:
            if self._swarm is None:
                self._swarm = self._factory()
            return self._swarm

    def by_kind(self, kind: str) -> Runner:
        return self.swarm() if kind == SWARM else self.local

    def forget(self, name: str) -> None:
        """Look the project up again at its next call (it moved, or was removed)."""
        with self._lock:
            self._where.pop(name, None)

    def _kind(self, name: str) -> str:
        kind = self._where.get(name)
        if kind is None:
            try:
                kind = self.lookup(name).runner
            except Exception:  # no such project (any more): this box's, as before
                return LOCAL
            with self._lock:
                self._where[name] = kind
        return kind

    def _for(self, project: Project) -> Runner:
        with self._lock:
            self._where[project.name] = project.runner
        return self.by_kind(project.runner)

    def _named(self, name: str) -> Runner:
        return self.by_kind(self._kind(name))

    # -- the protocol -----------------------------------------------------------------------

    def place(self, project: Project, slot: str, *, autostart: bool) -> bool:
        return self._for(project).place(project, slot, autostart=autostart)

    def switch(self, project: Project, slot: str, release: Path) -> bool:
        return self._for(project).switch(project, slot, release)

    def remove(self, project: Project, slot: str) -> bool:
        return self._for(project).remove(project, slot)

    def start(self, name: str, slot: str) -> bool:
        return self._named(name).start(name, slot)

    def stop(self, name: str, slot: str) -> bool:
        return self._named(name).stop(name, slot)

    def restart(self, name: str, slot: str) -> None:
        self._named(name).restart(name, slot)

    def status(self, name: str, slot: str) -> ProcessInfo | None:
        return self._named(name).status(name, slot)

    def statuses(self) -> list[ProcessInfo]:
        found = list(self.local.statuses())
        if self._swarm is not None:
            found.extend(self._swarm.statuses())
        return found

    def tail(self, name: str, slot: str, lines: int) -> SlotLines:
        return self._named(name).tail(name, slot, lines)

    def follow(self, name: str, slot: str) -> LogFeed:
        return self._named(name).follow(name, slot)

    def events(self) -> EventFeed:
        return MergedEvents(self)

    def drop_release(self, project: Project, release: Path) -> None:
        """To the project's runner; the swarm's too once in use (an image from before a
        move back). Never raises: a swarm that cannot be reached keeps its image."""
        if project.runner != SWARM and self._swarm is None:
            return
        try:
            self.swarm().drop_release(project, release)
        except ControlPlaneError as exc:
            logger.info("the image of %s stays on the swarm: %s", release.name, exc)

    def manager_pid(self) -> int | None:
        return self.local.manager_pid()


class MergedEvents:
    """Both runners' state changes from now on; the swarm's from the first read after
    it came into use."""

    def __init__(self, router: RoutingRunner) -> None:
        self.router = router
        self.local = router.local.events()
        self.swarm: EventFeed | None = None

    def read_new(self) -> list[SlotEvent]:
        events = self.local.read_new()
        if self.swarm is None and self.router.swarm_in_use:
            self.swarm = self.router.swarm().events()
        if self.swarm is not None:
            events = sorted([*events, *self.swarm.read_new()], key=lambda e: e.time)
        return events
