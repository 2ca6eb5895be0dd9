"""Shared pieces of the benchmarks: statistics, result records, clean-up, sample projects.

Every benchmark module is run by bench/main.py as its own process and prints one JSON
record per figure (a line starting with `RESULT `); main.py collects them into
docs/performance.md. A record holds the raw samples of the figure and of each baseline,
measured in the same run, so the table can show medians, spreads and ratios.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


@dataclass
class Figure:
    """One row of the table: samples of ours and of each baseline (same unit)."""

    key: str
    title: str
    unit: str  # "s", "ms", "MB"
    samples: list[float]
    baselines: dict[str, list[float]] = field(default_factory=dict)
    target: str = ""
    # "max": ours must be ≤ limit; "ratio": baseline/ours must be ≥ limit
    kind: str = "max"
    limit: float = 0.0
    ratio_of: str | None = None  # which baseline the ratio is taken against
    note: str = ""
    not_measured: dict[str, str] = field(default_factory=dict)

    def emit(self) -> None:
        print("RESULT " + json.dumps(asdict(self)), flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def spread(xs: list[float]) -> tuple[float, float]:
    return (min(xs), max(xs)) if xs else (float("nan"), float("nan"))


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not xs:
        return float("nan")
    ordered = sorted(xs)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def repeat(fn: Callable[[], float], runs: int = RUNS) -> list[float]:
    return [fn() for _ in range(runs)]


@contextlib.contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    """A folder under /tmp that the run-as user can pass through; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def kill_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Stop a process started with start_new_session=True, with everything it started."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


def wait_until(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(step)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def plain_procedure(
    origin: Path,
    where: Path,
    wheels: Path,
    cache: Path,
    *,
    python: str = "/usr/bin/python3",
    env: dict[str, str] | None = None,
) -> float:
    """What a person does by hand (clone, venv, pip -U pip, pip install -r, start), from
    the same wheel folder as ours; seconds to the app's first output."""
    shutil.rmtree(where, ignore_errors=True)
    env = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_CACHE_DIR": str(cache),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **(env or {}),
    }
    t = time.perf_counter()
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True, env=env)
    subprocess.run([python, "-m", "venv", str(where / ".venv")], check=True, env=env)
    pip = [str(where / ".venv" / "bin" / "python"), "-m", "pip", "-q"]
    subprocess.run([*pip, "install", "-U", "pip"], check=True, env=env)
    subprocess.run([*pip, "install", "-r", "requirements.txt"], check=True, env=env, cwd=where)
    app = subprocess.Popen(
        [str(where / ".venv" / "bin" / "python"), "main.py"],
        cwd=where,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert app.stdout is not None
    app.stdout.readline()
    took = time.perf_counter() - t
    app.kill()
    app.wait()
    return took
