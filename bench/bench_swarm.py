"""The Swarm runner (controlplane/adapters/swarm) on a real two-node swarm, against the
one-box runner in the same run: a release switch, a rollback to a built release, a frozen
node's task running again elsewhere, and the control plane's memory with the runner in use.

The swarm is the tests' (tests/support/swarm.py `running_swarm`: a private manager
dockerd, a worker dockerd in its own network namespace, a registry, the cached base
image), brought up here in a slot of its own and torn down at the end, also on a failure
or on SIGTERM (bench/main.py's time limit); a run killed outright leaves its slot under
/tmp/cp-swarm to the next start, which cleans it. The one box is bench_rollback's rig
(serve's parts over a real supervisord, the sample project with two built releases).
Where no engine can run, every figure is "not measured", saying why.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import bench_rollback as box_bench
from bench.bench_deploy import first_output, size
from bench.common import ROOT, RUNS, Figure, log, median
from bench.swarm_notes import FAILOVER_NOTE, MEMORY_NOTE, ROLLBACK_NOTE, SWITCH_NOTE
from controlplane.adapters.swarm.images import ensure_image
from controlplane.adapters.swarm.runner import SwarmRunner
from controlplane.adapters.swarm.services import Shape, service_name
from controlplane.domain.models import Project
from controlplane.domain.runner import ProcessState
from controlplane.engine.releases import Quiet

ONE_BOX = "one box (supervisord): `engine.rollback` → the old commit's first output"
BARE = "swbare"
BARE_SWITCH = (
    "a bare service (no network attachment, secret or volume) on the same node: "
    "`docker service update --image` → its task running"
)
HEARTBEAT_1S = "the same with `docker swarm update --dispatcher-heartbeat 1s`"
WITHOUT = "serve's parts, no swarm runner"
WITH = "serve's parts + a SwarmRunner that has read the swarm"
FAILOVERS = max(2, RUNS // 2)

# The app: says which release it is, then waits; it ends on SIGTERM (PID 1 of a container
# ignores a signal it has no handler for: without one every stop waits out the grace).
APP = """\
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("running commit {n} ", flush=True)
while True:
    time.sleep(3600)
"""


@dataclass
class SwarmRig:
    """A SwarmRunner on the test swarm; releases are folders under `base`, one per n."""

    swarm: Any  # tests.support.swarm.Swarm
    runner: SwarmRunner
    base: Path
    releases: dict[tuple[str, int], Path] = field(default_factory=dict)

    def project(self, name: str) -> Project:
        return Project(name=name, repo="https://example.com/x.git", path=str(self.base / name))

    def release(self, name: str, n: int) -> Path:
        """Release n of `name` (made and its image built and pushed on first use)."""
        if (name, n) not in self.releases:
            folder = self.base / "releases" / name / f"{n}-{n:07x}"
            folder.mkdir(parents=True)
            (folder / "main.py").write_text(APP.format(n=n))
            ensure_image(
                self.runner.client,
                registry=self.runner.registry,
                base=self.runner.base_image,
                name=name,
                release=folder,
            )
            self.releases[(name, n)] = folder
        return self.releases[(name, n)]

    def go_live(self, name: str, n: int) -> None:
        """What the engine's go-live does on the runner (engine/releases.py _switch_prod):
        switch, place (the shape is unchanged: nothing), restart."""
        project = self.project(name)
        self.runner.switch(project, "prod", self.release(name, n))
        if not self.runner.place(project, "prod", autostart=True):
            self.runner.restart(name, "prod")

    def running_on(
        self, name: str, image: str, node: str | None = None, service: str | None = None
    ) -> bool:
        """A task of the slot (or of `service`) on `image` (and `node`) reports running."""
        found = self.runner.api.tasks(filters={"service": service or service_name(name, "prod")})
        return any(
            t["Status"]["State"] == "running"
            and t["Spec"]["ContainerSpec"]["Image"].startswith(image)
            and (node is None or t.get("NodeID") == node)
            for t in found
        )

    def image(self, name: str, n: int) -> str:
        from controlplane.adapters.swarm.images import image_ref

        return image_ref(self.runner.registry, name, self.release(name, n))


def wait(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> float:
    """Seconds until pred() holds (TimeoutError naming `what` after `timeout`)."""
    t0 = time.perf_counter()
    while not pred():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(step)
    return time.perf_counter() - t0


def said(rig: SwarmRig, name: str, needle: str) -> Callable[[], bool]:
    """A probe: the slot's output (from its current task on) holds `needle`."""
    feed = rig.runner.follow(name, "prod")
    seen: list[str] = []

    def probe() -> bool:
        seen.extend(feed.read_new().stdout)
        return any(needle in line for line in seen)

    return probe


@contextlib.contextmanager
def swarm_rig(base: Path, settings: Any) -> Iterator[SwarmRig]:
    from tests.support.swarm import running_swarm

    with running_swarm() as swarm:
        runner = SwarmRunner(
            settings,
            base_url=swarm.manager.docker_host,
            registry=swarm.registry,
            base_image=swarm.base_image,
        )
        (base / "swarm").mkdir()
        try:
            yield SwarmRig(swarm, runner, base / "swarm")
        finally:
            runner.close()


# -- the figures ---------------------------------------------------------------------------


def one_box_rollback(r: box_bench.Rig) -> Callable[[int], float]:
    def ours(i: int) -> float:
        n = r.targets[i % 2]
        since = size(r.out)
        t = time.perf_counter()
        r.stack.engine.rollback(r.name, str(n), Quiet())
        first_output(r.out, f"running commit {n} ", since)
        return time.perf_counter() - t

    return ours


def bare_update(rig: SwarmRig, image: str) -> None:
    """`docker service update --image` of the bare service, again when the engine's own
    update bookkeeping moved the service's version in between ("update out of sequence")."""
    for _ in range(10):
        try:
            rig.swarm.docker("service", "update", "--detach", "--image", image, BARE)
            return
        except RuntimeError as exc:
            if "out of sequence" not in str(exc):
                raise
            time.sleep(0.05)
    raise RuntimeError(f"{BARE}: update out of sequence 10 times")


def switch_figure(rig: SwarmRig, box: Callable[[int], float]) -> None:
    """Each sample: a new release (image built and pushed before the clock starts) goes
    live on the worker; to its task running, and on to its first output."""
    name = "swswitch"
    rig.runner.shape = Shape(entry="main.py", constraints=("node.labels.cptest==worker",))
    rig.go_live(name, 1)
    wait(said(rig, name, "running commit 1 "), 300, "release 1's first output")
    rig.swarm.docker(
        "service", "create", "--detach", "--name", BARE, "--constraint",
        "node.labels.cptest==worker", rig.image(name, 1), "main.py",
    )  # fmt: skip
    running: list[float] = []
    output: list[float] = []
    baseline: list[float] = []
    bare: list[float] = []
    for i in range(RUNS):
        n = i + 2
        image = rig.image(name, n)  # built and pushed here
        probe = said(rig, name, f"running commit {n} ")
        t0 = time.perf_counter()
        rig.go_live(name, n)
        wait(functools.partial(rig.running_on, name, image), 120, f"release {n} running")
        running.append(time.perf_counter() - t0)
        wait(probe, 60, f"release {n}'s first output")
        output.append(time.perf_counter() - t0)
        baseline.append(box(i))
        t0 = time.perf_counter()
        bare_update(rig, image)
        wait(functools.partial(rig.running_on, "", image, service=BARE), 120, "the bare one")
        bare.append(time.perf_counter() - t0)
    rig.swarm.docker("service", "rm", BARE)
    log(f"switch: running {median(running):.2f} s, first output {median(output):.2f} s")
    Figure(
        key="swarm:switch",
        title="release switch on the swarm: a new release's update → its task running "
        "(on the second node)",
        unit="s",
        samples=running,
        baselines={
            "the same → the new release's first output": output,
            BARE_SWITCH: bare,
            ONE_BOX: baseline,
        },
        target="≤ 2 s",
        kind="max",
        limit=2.0,
        note=SWITCH_NOTE,
    ).emit()


def rollback_figure(rig: SwarmRig, box: Callable[[int], float]) -> None:
    """Alternately to the two previous releases of swswitch (their images are on the
    worker already), to the old release's first output."""
    name = "swswitch"
    last = max(n for (p, n) in rig.releases if p == name)
    targets = [last - 1, last - 2]

    def ours(i: int) -> float:
        n = targets[i % 2]
        probe = said(rig, name, f"running commit {n} ")
        t0 = time.perf_counter()
        rig.go_live(name, n)
        wait(probe, 60, f"release {n}'s first output")
        return time.perf_counter() - t0

    roll, flip = box_bench.alternate(RUNS, ours, box)
    Figure(
        key="swarm:rollback",
        title="rollback to a built release on the swarm: request → the old release's "
        "first output (on the second node)",
        unit="s",
        samples=roll,
        baselines={ONE_BOX: flip},
        target="≤ 2 s",
        kind="max",
        limit=2.0,
        note=ROLLBACK_NOTE,
    ).emit()


def failover_once(rig: SwarmRig, name: str, n: int) -> float:
    """The slot's task on the worker, the worker's dockerd frozen: seconds to the task
    running on the manager as the runner reads it (its status RUNNING there)."""
    sw = rig.swarm
    manager, worker = sw.manager, sw.worker
    sw.docker("node", "update", "--availability", "drain", manager.node_id)
    wait(lambda: rig.running_on(name, rig.image(name, n), worker.node_id), 120, "on the worker")
    sw.docker("node", "update", "--availability", "active", manager.node_id)
    with worker.frozen():
        t0 = time.perf_counter()
        down = wait(lambda: sw.node_state(worker) == "down", 120, "worker down", 0.1)
        wait(lambda: rig.running_on(name, rig.image(name, n), manager.node_id), 120, "moved", 0.05)

        def read_running() -> bool:
            info = rig.runner.status(name, "prod")
            return info is not None and info.state == ProcessState.RUNNING

        wait(read_running, 60, "the runner reads it running", 0.05)
        took = time.perf_counter() - t0
    log(f"failover: worker down after {down:.1f} s, running on the manager after {took:.1f} s")
    wait(lambda: sw.is_ready(worker), 120, "the worker ready again", 0.25)
    return took


def failover_figure(rig: SwarmRig) -> None:
    name = "swfail"
    rig.runner.shape = Shape(entry="main.py")
    rig.go_live(name, 1)
    default = [failover_once(rig, name, 1) for _ in range(FAILOVERS)]
    rig.swarm.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
    time.sleep(6)  # a node takes the new period from the answer to its next heartbeat
    try:
        fast = [failover_once(rig, name, 1) for _ in range(2)]
    finally:
        rig.swarm.docker("swarm", "update", "--dispatcher-heartbeat", "5s")
    Figure(
        key="swarm:failover",
        title="a frozen node's task running again on the other node (SIGSTOP of the "
        "node's dockerd → the runner reads the slot RUNNING there)",
        unit="s",
        samples=default,
        baselines={HEARTBEAT_1S: fast},
        target="≤ 30 s",
        kind="max",
        limit=30.0,
        note=FAILOVER_NOTE,
    ).emit()


# -- memory ------------------------------------------------------------------------------------

HOLDER = """\
import gc, sys, time
from pathlib import Path
from controlplane.adapters.store import Store
from controlplane.service.serve import build_stack
from controlplane.settings import Settings
settings = Settings.from_env()
store = Store.open(settings)
stack = build_stack(settings, store)
if sys.argv[1] == "swarm":
    from controlplane.adapters.swarm.runner import SwarmRunner
    runner = SwarmRunner(settings, base_url=sys.argv[2])
    runner.statuses()
    runner.status("swswitch", "prod")
    runner.tail("swswitch", "prod", 30)
gc.collect()
time.sleep(1)
for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) / 1024)
"""


def holder_rss(env: dict[str, str], *args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", HOLDER, *args],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def memory_figure(rig: SwarmRig, env: dict[str, str]) -> None:
    host = rig.swarm.manager.docker_host
    plain, swarm = box_bench.alternate(
        RUNS, lambda _i: holder_rss(env, "plain"), lambda _i: holder_rss(env, "swarm", host)
    )
    diffs = [b - a for a, b in zip(plain, swarm, strict=True)]
    log(f"memory: {median(plain):.1f} MB without, {median(swarm):.1f} MB with the runner")
    Figure(
        key="swarm:memory",
        title="the control plane's memory with the swarm runner in use, over the same "
        "without it (RSS)",
        unit="MB",
        samples=diffs,
        baselines={WITHOUT: plain, WITH: swarm},
        target="≤ 10 MB more",
        kind="max",
        limit=10.0,
        note=MEMORY_NOTE,
    ).emit()


# -- the run ---------------------------------------------------------------------------------

FIGURES = {
    "swarm:switch": ("release switch on the swarm: update → new task running", "s", 2.0),
    "swarm:rollback": ("rollback to a built release on the swarm", "s", 2.0),
    "swarm:failover": ("a frozen node's task running again on the other node", "s", 30.0),
    "swarm:memory": ("the control plane's memory with the swarm runner in use", "MB", 10.0),
}


def not_measured(reason: str) -> None:
    for key, (title, unit, limit) in FIGURES.items():
        more = "≤ 10 MB more" if unit == "MB" else f"≤ {limit:g} s"
        Figure(
            key=key,
            title=title,
            unit=unit,
            samples=[],
            target=more,
            limit=limit,
            not_measured={"swarm": reason},
        ).emit()


def on_sigterm(_sig: int, _frame: object) -> None:
    raise SystemExit(143)  # the teardowns in the `finally`s run


def main() -> None:
    from tests.support.swarm import why_no_engine

    signal.signal(signal.SIGTERM, on_sigterm)
    reason = why_no_engine()
    if reason:
        log(f"no swarm here: {reason}")
        not_measured(reason)
        return
    t0 = time.monotonic()
    with box_bench.rig() as r, swarm_rig(r.base, r.settings) as rig:
        log(f"one box and swarm up in {time.monotonic() - t0:.0f} s")
        box = one_box_rollback(r)
        box(0)  # warm the one box's path
        switch_figure(rig, box)
        rollback_figure(rig, box)
        memory_figure(rig, r.env)
        failover_figure(rig)
    log(f"bench swarm done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
