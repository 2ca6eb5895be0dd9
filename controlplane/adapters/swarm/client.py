"""The Docker engine through the docker SDK, imported only when a swarm runner connects.

`serve` must not pay for the SDK unless a project runs on the swarm, so nothing here
imports `docker` at module level. The engine's refusals become ControlPlaneErrors in
plain, translated words (`engine_error`); so do the task errors a slot's state carries
(`task_problem`: "no such image", "no suitable node").
"""

from __future__ import annotations

import gc
import re
import warnings
from datetime import UTC, datetime
from typing import Any

from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, tr

# every object we make carries this label, valued NAME-SLOT (or NAME for images)
LABEL_SLOT = "controlplane.slot"
LABEL_PROJECT = "controlplane.project"


def connect(base_url: str | None = None, timeout: float = 60.0) -> Any:
    """A docker.DockerClient for `base_url` (DOCKER_HOST or the local socket when None)."""
    import docker  # lazy: the SDK costs memory and start-up time

    try:
        if base_url:
            return docker.DockerClient(base_url=base_url, timeout=int(timeout))
        return docker.from_env(timeout=int(timeout))
    except Exception as exc:  # DockerException: no socket, bad DOCKER_HOST
        failure = engine_error(exc, base_url or "DOCKER_HOST")
    # the SDK leaves a client that failed to start with its connection open: closed here,
    # once the traceback that holds it is gone, without a ResourceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    raise failure


def engine_error(exc: BaseException, where: str = "") -> ControlPlaneError:
    """An SDK or HTTP failure as a ControlPlaneError a person can act on (one already
    said, such as connect's, as it is)."""
    if isinstance(exc, ControlPlaneError):
        return exc
    words = str(getattr(exc, "explanation", None) or exc)
    low = words.lower()
    if "not a swarm manager" in low or "swarm init" in low:
        return ControlPlaneError(
            tr(
                "the Docker engine at {where} is not a swarm manager: run docker swarm init "
                "there or point DOCKER_HOST at a manager",
                where=where or "DOCKER_HOST",
            )
        )
    problem = task_problem(words)
    if problem is not None:
        return ControlPlaneError(problem)
    if "connection" in low or "no such file" in low or "timed out" in low:
        return ControlPlaneError(
            tr("cannot reach the Docker engine at {where}: {reason}", where=where, reason=words)
        )
    return ControlPlaneError(tr("the Docker engine refused: {reason}", reason=words))


NO_IMAGE = re.compile(r"no such image:?\s*(?P<image>\S+)?|image (?P<ref>\S+) not found", re.I)


def task_problem(err: str) -> Text | None:
    """A task's error (Status.Err) as plain words; None when it names nothing we know."""
    if not err:
        return None
    low = err.lower()
    found = NO_IMAGE.search(err)
    if found or "pull access denied" in low or "manifest unknown" in low:
        image = (found and (found["image"] or found["ref"])) or ""
        return tr(
            "no node could get the image {image}: it is not on the node and the registry "
            "did not give it (is CONTROLPLANE_REGISTRY set and reachable from every node?)",
            image=image.strip("'\""),
        )
    if "no suitable node" in low:
        return tr(
            "no node can run it: {reason} (check the placement rules and that the nodes "
            "are up and active)",
            reason=err,
        )
    return None


def parse_time(stamp: str | None) -> float:
    """An engine timestamp (RFC 3339, nanoseconds) as seconds since the epoch; 0 if none."""
    if not stamp or stamp.startswith("0001-"):
        return 0.0
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp)
    if match is None:
        return 0.0
    base = datetime.fromisoformat(match[1] + ("+00:00" if match[3] == "Z" else match[3]))
    fraction = int((match[2] or "0").ljust(9, "0")[:9]) / 1e9
    return base.astimezone(UTC).timestamp() + fraction
