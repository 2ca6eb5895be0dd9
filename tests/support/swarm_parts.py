"""The moving parts of the test swarm (tests/support/swarm.py): private `dockerd`s, the
network namespace and veth pair of the second node, the registry process, the cached base
image, and the teardown of all of it (also of a run that was killed).

Every run takes a free slot N (1..200): its files live in /tmp/cp-swarm/N (a tmpfs, so the
engines' layers go with one umount), its network is
10.213.N.0/30 (host side .1, second node .2), its network namespace is `cpswN` and its veth
pair `cpswNh`/`cpswNn`. A slot holds an `owner` file (pid and start time of the pytest
process); a slot whose owner is gone is cleaned at the next start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLOTS = Path(os.environ.get("CP_SWARM_ROOT", "/tmp/cp-swarm"))
NETNS_DIR = Path("/run/netns")
#: The daemons' flags that leave the host's network alone: no bridge, no NAT rules, no
#: forwarding. The address pool only matters for the `docker_gwbridge` that `swarm init`
#: makes for the ingress network, which the fixture removes at once (docs/multihost.md).
DOCKERD_FLAGS = (
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--insecure-registry=10.213.0.0/16",
    "--default-address-pool=base=10.214.0.0/16,size=24",
    "--shutdown-timeout=3",
)


def log(message: str) -> None:
    """One line of what the fixture does, shown with -s and in a failed test's output."""
    print(f"[swarm {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """A command's output as text; a failure raises with its output."""
    proc = subprocess.run(
        list(args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return proc


def wait_for(what: str, probe: Callable[[], bool], timeout: float, step: float = 0.25) -> float:
    """Seconds until `probe()` is true; AssertionError naming `what` after `timeout`."""
    t0 = time.monotonic()
    while True:
        try:
            if probe():
                return time.monotonic() - t0
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"swarm: {what} not reached within {timeout:.0f} s")
        time.sleep(step)


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _alive_owner(slot: Path) -> bool:
    try:
        pid, started = (slot / "owner").read_text().split()
    except (OSError, ValueError):
        # being claimed right now by another run (mkdir, mount, then the owner file)
        return time.time() - slot.stat().st_mtime < 60

    return _start_time(int(pid)) == started


def claim_slot() -> tuple[int, Path]:
    """A free slot for this run, after cleaning the slots of runs that were killed."""
    SLOTS.mkdir(parents=True, exist_ok=True)
    for stale in sorted(SLOTS.iterdir()):
        if stale.name.isdigit() and not _alive_owner(stale):
            log(f"cleaning the leftovers of a killed run in {stale}")
            teardown_slot(int(stale.name), stale)
    for n in range(1, 201):
        slot = SLOTS / str(n)
        try:
            slot.mkdir()
        except FileExistsError:
            continue
        # a tmpfs: the engines' layers and the registry's blobs go with one umount (removing
        # the tens of thousands of files of two engines took 25 s on the dev machine's disk)
        run(["mount", "-t", "tmpfs", "-o", "mode=755,size=8g", f"cp-swarm-{n}", str(slot)])
        me = os.getpid()
        (slot / "owner").write_text(f"{me} {_start_time(me)}\n")
        return n, slot
    raise RuntimeError(f"no free swarm slot under {SLOTS}")


def names(n: int) -> dict[str, str]:
    """The network names and addresses of slot n."""
    return {
        "netns": f"cpsw{n}",
        "veth_host": f"cpsw{n}h",
        "veth_node": f"cpsw{n}n",
        "host_ip": f"10.213.{n}.1",
        "node_ip": f"10.213.{n}.2",
    }


def make_netns(n: int) -> str:
    """The second node's network namespace, joined to the host by a veth pair on a /30."""
    nm = names(n)
    run(["ip", "netns", "add", nm["netns"]])
    run(["ip", "link", "add", nm["veth_host"], "type", "veth", "peer", "name", nm["veth_node"]])
    run(["ip", "link", "set", nm["veth_node"], "netns", nm["netns"]])
    run(["ip", "addr", "add", f"{nm['host_ip']}/30", "dev", nm["veth_host"]])
    run(["ip", "link", "set", nm["veth_host"], "up"])
    inside = ["nsenter", f"--net={NETNS_DIR / nm['netns']}", "ip"]
    run([*inside, "addr", "add", f"{nm['node_ip']}/30", "dev", nm["veth_node"]])
    run([*inside, "link", "set", nm["veth_node"], "up"])
    run([*inside, "link", "set", "lo", "up"])
    return str(NETNS_DIR / nm["netns"])


def start_dockerd(root: Path, hostname: str, netns: str | None) -> subprocess.Popen[bytes]:
    """A private engine with its roots under `root`, in its own UTS namespace (so each node
    has its own name) and, for the second node, in the network namespace `netns`."""
    for sub in ("data", "exec"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    daemon = [
        "dockerd",
        *DOCKERD_FLAGS,
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
    ]
    # sh execs dockerd: the child's pid is dockerd's (what freezing a node stops)
    cmd = ["unshare", "--uts", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *daemon]
    if netns:
        cmd = ["nsenter", f"--net={netns}", *cmd]
    with (root / "dockerd.log").open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_registry(root: Path, address: str) -> subprocess.Popen[bytes]:
    """Debian's docker-registry as a plain process on address:5000 (plain HTTP; the
    daemons list 10.213.0.0/16 as insecure registries)."""
    (root / "storage").mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}:5000\n  secret: cp-swarm-tests\n"
    )
    with (root / "registry.log").open("ab") as out:
        return subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _our_pids(slot: Path) -> list[int]:
    """Processes whose command line names this slot's folder (dockerd, containerd, shims,
    the registry): only those are ended by a teardown."""
    mark = str(slot) + "/"
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me and mark in _cmdline(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def stop_pids(slot: Path, grace: float = 20) -> None:
    """SIGCONT (a frozen node), SIGTERM, then SIGKILL after `grace` s, for this slot's processes."""
    pids = _our_pids(slot)
    for sig in (signal.SIGCONT, signal.SIGTERM):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.2)
    for pid in filter(_running, _our_pids(slot)):
        log(f"SIGKILL {pid} after {grace:.0f} s: {_cmdline(pid)[:100]}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def teardown_slot(n: int, slot: Path) -> None:
    """Everything slot n made: processes, mounts, the netns, the veth pair, the folder."""
    stop_pids(slot)
    time.sleep(0.2)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    ours = (m for m in mounts if m == str(slot) or m.startswith(str(slot) + "/"))
    for point in sorted(ours, reverse=True):
        run(["umount", "-l", point], check=False)
    nm = names(n)
    run(["ip", "link", "del", nm["veth_host"]], check=False)
    if (NETNS_DIR / nm["netns"]).exists():
        run(["ip", "netns", "del", nm["netns"]], check=False)
    shutil.rmtree(slot, ignore_errors=True)
