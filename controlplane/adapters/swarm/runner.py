"""Docker Swarm as the Runner (controlplane.domain.runner): one service per slot.

A release is an image (images.py), a slot is the service cp-NAME-SLOT (services.py), its
variables a versioned secret (secrets.py). `switch` builds the release's image when it is
missing and points the slot at it: the link that the one box uses (so the engine sees the
same folders) and the service's `controlplane.image` label; the running task keeps its
image until the slot is restarted, which rolls the service onto the image the label
names, with the variables as they are then. State, output and state changes come from the
tasks (services.py, logs.py, events.py), from whichever node runs them.

The docker SDK is imported on the first call that needs the engine, never at import.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.adapters.supervisor.links import link_target, remove_link, switch_link
from controlplane.adapters.swarm import logs
from controlplane.adapters.swarm.client import LABEL_SLOT, connect, engine_error
from controlplane.adapters.swarm.events import TaskEvents
from controlplane.adapters.swarm.images import ensure_image, image_ref, remove_image
from controlplane.adapters.swarm.secrets import (
    digest_key,
    env_secret,
    prune_secrets,
    secret_reference,
)
from controlplane.adapters.swarm.services import (
    LABEL_IMAGE,
    LABEL_SPEC,
    LIVE,
    NS,
    Limits,
    Shape,
    needs_nodes,
    process_info,
    replicas,
    rollback_config,
    service_labels,
    service_name,
    task_template,
    update_config,
)
from controlplane.domain.models import Project
from controlplane.domain.runner import ProcessInfo, ProcessState, SlotLines, parse_program
from controlplane.errors import ControlPlaneError
from controlplane.i18n import tr
from controlplane.settings import Settings

Variables = Callable[[str, str], dict[str, str]]
DEFAULT_BASE = "python:3.12-slim"


class SwarmRunner:
    """The Runner protocol over the swarm that `base_url` (DOCKER_HOST when None) manages.
    `variables(name, slot)` gives a slot's variables (the store's, prod under test)."""

    def __init__(
        self,
        settings: Settings,
        *,
        variables: Variables | None = None,
        registry: str | None = None,
        base_image: str | None = None,
        base_url: str | None = None,
        shape: Shape | None = None,
        limits: Limits | None = None,
        key: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.variables = variables or (lambda name, slot: {})
        env = os.environ
        self.registry = env.get("CONTROLPLANE_REGISTRY", "") if registry is None else registry
        self.base_image = base_image or env.get("CONTROLPLANE_BASE_IMAGE") or DEFAULT_BASE
        self.base_url = base_url
        self.shape = shape or Shape(entry="main.py")
        self.limits = limits or Limits()
        self._key = key  # keys the digests of variables' secrets (secrets.py)
        self._client: Any = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = digest_key(self.settings.data_dir / "swarm-secrets.key")
        return self._key

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.base_url)
        return self._client

    @property
    def api(self) -> Any:
        return self.client.api

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- the engine's objects ---------------------------------------------------------------

    def _service(self, name: str, slot: str) -> dict[str, Any] | None:
        try:
            found = self.api.services(filters={"name": service_name(name, slot)})
        except Exception as exc:
            raise engine_error(exc, self.base_url or "") from exc
        exact = [s for s in found if s["Spec"]["Name"] == service_name(name, slot)]
        return exact[0] if exact else None

    def _need(self, name: str, slot: str) -> dict[str, Any]:
        service = self._service(name, slot)
        if service is None:
            raise ControlPlaneError(
                tr(
                    "{name} {slot} has no service on the swarm; deploy it first",
                    name=name,
                    slot=slot,
                )
            )
        return service

    def _tasks(self, service_id: str) -> list[dict[str, Any]]:
        try:
            return list(self.api.tasks(filters={"service": service_id}))
        except Exception as exc:
            raise engine_error(exc) from exc

    def _down(self) -> frozenset[str]:
        """The ids of the nodes that are not ready (their tasks' states are stale)."""
        try:
            nodes = self.api.nodes()
        except Exception as exc:
            raise engine_error(exc) from exc
        return frozenset(n["ID"] for n in nodes if n.get("Status", {}).get("State") != "ready")

    def _image(self, project: Project, release: Path) -> str:
        return ensure_image(
            self.client,
            registry=self.registry,
            base=self.base_image,
            name=project.name,
            release=release,
        )

    def _shape(self, project: Project) -> Shape:
        constraints = project.placement or self.shape.constraints
        return Shape(**{**self.shape.__dict__, "entry": project.entry, "constraints": constraints})

    def _update(self, service: dict[str, Any], **spec: Any) -> None:
        """Update the service; when the engine moved its version on meanwhile (its own
        update bookkeeping: "update out of sequence"), read it again and retry."""
        for attempt in range(3):
            try:
                self.api.update_service(
                    service["ID"], service["Version"]["Index"], fetch_current_spec=True, **spec
                )
                return
            except Exception as exc:
                if attempt == 2 or "out of sequence" not in str(exc):
                    raise engine_error(exc) from exc
            try:
                service = self.api.inspect_service(service["ID"])
            except Exception as exc:
                raise engine_error(exc) from exc

    def _roll(
        self, service: dict[str, Any], name: str, slot: str, *, count: int, force: bool
    ) -> None:
        """Update the service to the image its label points at, with the variables as
        they are now, `count` replicas; `force` makes new tasks even if nothing changed."""
        spec = service["Spec"]
        template = dict(spec["TaskTemplate"])
        container = dict(template["ContainerSpec"])
        container["Image"] = spec["Labels"][LABEL_IMAGE]
        secret = env_secret(self.client, self.key, name, slot, self.variables(name, slot))
        container["Secrets"] = [secret_reference(secret)]
        template["ContainerSpec"] = container
        template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + (1 if force else 0)
        self._update(service, task_template=template, mode={"Replicated": {"Replicas": count}})
        prune_secrets(self.client, name, slot, keep={secret.id})

    def _wait_quiet(self, service_id: str, timeout: float) -> None:
        """Wait until no task of the service runs or starts (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self._tasks(service_id)
            if not any(t["Status"]["State"] in LIVE for t in tasks):
                return
            time.sleep(0.1)
        raise ControlPlaneError(
            tr(
                "the swarm did not stop {service} within {seconds} s",
                service=service_id[:12],
                seconds=int(timeout),
            )
        )

    # -- programs and links --------------------------------------------------------------------

    def place(self, project: Project, slot: str, *, autostart: bool) -> bool:
        release = link_target(self.settings.layout.slot_code(project, slot))
        if release is None:
            raise ControlPlaneError(
                tr(
                    "{name} {slot}: no release to run; deploy it first",
                    name=project.name,
                    slot=slot,
                )
            )
        image = self._image(project, release)
        shape = self._shape(project)
        service = self._service(project.name, slot)
        if service is not None and service["Spec"]["Labels"].get(LABEL_SPEC) == shape.digest():
            return False
        name = project.name
        secret = env_secret(self.client, self.key, name, slot, self.variables(name, slot))
        image = service["Spec"]["Labels"].get(LABEL_IMAGE, image) if service else image
        spec = {
            "task_template": task_template(
                shape, name=name, slot=slot, image=image, secret=secret_reference(secret)
            ),
            "labels": service_labels(shape, name, slot, image),
            "update_config": update_config(shape),
            "rollback_config": rollback_config(shape),
        }
        count = 1 if autostart or (service is not None and replicas(service)) else 0
        spec["mode"] = {"Replicated": {"Replicas": count}}
        if service is None:
            try:
                self.api.create_service(name=service_name(name, slot), **spec)
            except Exception as exc:
                raise engine_error(exc, self.base_url or "") from exc
        else:
            self._update(service, **spec)
        prune_secrets(self.client, name, slot, keep={secret.id})
        return True

    def switch(self, project: Project, slot: str, release: Path) -> bool:
        image = self._image(project, release)
        link = self.settings.layout.slot_code(project, slot)
        moved = link_target(link) != release.resolve()
        if moved:
            switch_link(link, release)
        service = self._service(project.name, slot)
        if service is not None and service["Spec"]["Labels"].get(LABEL_IMAGE) != image:
            labels = {**service["Spec"]["Labels"], LABEL_IMAGE: image}
            self._update(service, labels=labels)
            moved = True
        return moved

    def remove(self, project: Project, slot: str) -> bool:
        """Stop the slot's task (and wait for it), then remove its service, secrets and
        link; its data volume stays on the nodes, as the one box keeps its data folder."""
        service = self._service(project.name, slot)
        if service is not None:
            self.stop(project.name, slot)
            try:
                self.api.remove_service(service["ID"])
            except Exception as exc:
                raise engine_error(exc) from exc
        prune_secrets(self.client, project.name, slot, keep=set())
        remove_link(self.settings.layout.slot_code(project, slot))
        return service is not None

    # -- processes ---------------------------------------------------------------------------

    def start(self, name: str, slot: str) -> bool:
        service = self._need(name, slot)
        live = any(t["Status"]["State"] in LIVE for t in self._tasks(service["ID"]))
        if replicas(service) and live:
            return False
        self._roll(service, name, slot, count=1, force=replicas(service) != 0)
        return True

    def stop(self, name: str, slot: str) -> bool:
        service = self._need(name, slot)
        live = any(t["Status"]["State"] in LIVE for t in self._tasks(service["ID"]))
        if replicas(service):
            self._update(service, mode={"Replicated": {"Replicas": 0}})
        grace = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("StopGracePeriod", 0) / NS
        self._wait_quiet(service["ID"], grace + 30)
        return live

    def restart(self, name: str, slot: str) -> None:
        """A rolling update onto the image the slot points at (the old task stops first
        on the host's network, after the new one runs on an overlay)."""
        service = self._need(name, slot)
        self._roll(service, name, slot, count=1, force=True)

    def status(self, name: str, slot: str) -> ProcessInfo | None:
        service = self._service(name, slot)
        if service is None:
            return None
        tasks = self._tasks(service["ID"])
        down = self._down() if needs_nodes(tasks) else frozenset()
        return process_info(service, tasks, self.limits, _delay(service), down)

    def statuses(self) -> list[ProcessInfo]:
        try:
            services = self.api.services(filters={"label": LABEL_SLOT})
            tasks = self.api.tasks()
        except Exception as exc:
            raise engine_error(exc, self.base_url or "") from exc
        found = []
        down = self._down() if needs_nodes(tasks) else frozenset()
        for service in services:
            if parse_program(service["Spec"]["Labels"].get(LABEL_SLOT, "")) is None:
                continue
            own = [t for t in tasks if t.get("ServiceID") == service["ID"]]
            found.append(process_info(service, own, self.limits, _delay(service), down))
        return found

    def drop_release(self, project: Project, release: Path) -> None:
        """Remove the release's image from the engine this runner talks to (an image a task
        or a stopped task in Swarm's history still uses stays, logged); the registry's copy
        and other nodes' pulls stay (docs/multihost.md says how to clean them)."""
        remove_image(self.client, image_ref(self.registry, project.name, release))

    def manager_pid(self) -> int | None:
        return None  # the apps run under each node's container runtime, not under us

    # -- output and state changes ----------------------------------------------------------------

    def tail(self, name: str, slot: str, lines: int) -> SlotLines:
        return logs.tail(self.api, service_name(name, slot), lines)

    def follow(self, name: str, slot: str) -> logs.TaskLogs:
        return logs.TaskLogs(self.api, service_name(name, slot))

    def events(self) -> TaskEvents:
        return TaskEvents(self.api)


def _delay(service: dict[str, Any]) -> float:
    policy = service["Spec"]["TaskTemplate"].get("RestartPolicy", {})
    return float(policy.get("Delay", 0)) / NS


__all__ = ["ProcessState", "SwarmRunner"]
