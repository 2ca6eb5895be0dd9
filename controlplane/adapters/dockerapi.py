"""The Docker API's figures, through the docker SDK, when the engine can be reached.

Asked only when DOCKER_HOST is set or /var/run/docker.sock exists, so the `docker`
package is never imported otherwise. CPU and memory are computed as `docker stats` does
(memory less the inactive page cache); this container is marked `own`. Why the API is
not asked, or did not answer, is a Text for the load screen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controlplane.i18n import Text, tr

DOCKER_SOCK = Path("/var/run/docker.sock")
PROC_SELF = Path("/proc/self")


def docker_reason(env: Mapping[str, str] | None = None, sock: Path = DOCKER_SOCK) -> Text | None:
    """Why the Docker API is not asked (None when it can be: DOCKER_HOST or the socket)."""
    env = os.environ if env is None else env
    if env.get("DOCKER_HOST") or sock.exists():
        return None
    return tr("no Docker socket at {path} and DOCKER_HOST unset", path=str(sock))


def parse_docker_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """A container's `stats(stream=False)` → CPU % and memory, computed as `docker stats` does."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    mem = stats.get("memory_stats") or {}
    mstat = mem.get("stats") or {}
    cache = mstat.get("inactive_file", mstat.get("total_inactive_file", 0))
    return {
        "name": str(stats.get("name", "")).lstrip("/"),
        "id": str(stats.get("id", ""))[:12],
        "cpu_percent": cpu_delta / system_delta * online * 100.0 if system_delta > 0 else 0.0,
        "memory_used": max(int(mem.get("usage", 0)) - int(cache), 0),
        "memory_limit": int(mem.get("limit", 0)),
    }


def own_container_id(proc: Path = PROC_SELF) -> str | None:
    """This container's id, from mountinfo (/docker/containers/ID/) or cgroup (docker-ID)."""
    text = ""
    for name in ("mountinfo", "cgroup"):
        try:
            text += (proc / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    match = re.search(r"/containers/([0-9a-f]{64})/|docker[-/]([0-9a-f]{64})", text)
    return (match[1] or match[2]) if match else None


def docker_figures(limit: int = 10) -> tuple[tuple[dict[str, Any], ...], Text | None]:
    """The Docker API's figures for the running containers (this one marked `own`)."""
    reason = docker_reason()
    if reason:
        return (), reason
    try:
        from concurrent.futures import ThreadPoolExecutor

        import docker

        client = docker.from_env(timeout=10)
        containers = client.containers.list()[:limit]
        with ThreadPoolExecutor(max_workers=max(len(containers), 1)) as pool:
            stats = list(pool.map(lambda c: c.stats(stream=False), containers))
        client.close()
    except Exception as exc:  # the daemon is away or refuses: say so, never fail
        return (), tr("Docker API: {reason}", reason=str(exc))
    own = own_container_id() or ""
    rows = [parse_docker_stats(s) for s in stats]
    rows = [{**r, "own": bool(own) and own.startswith(r["id"])} for r in rows]
    return tuple(rows), None
