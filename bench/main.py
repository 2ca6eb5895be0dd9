"""Run the benchmark modules (each in its own process group, with a time limit) and write
docs/performance.md from the figures they report.

    bench/run [module ...]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict

from bench.common import ROOT, RUNS, Figure, kill_group, log, median, spread

# module → time limit in seconds (a module that passes it is stopped and reported)
MODULES: dict[str, int] = {
    "store": 150,  # 1,000 projects: about 15 s to write them, then 1–2 min
    "memory": 240,  # 10 starts of serve with 1,000 projects
    "poll": 360,  # 1,000 projects: 5 cycles, 3 rounds of 1,000 fetches (2–4 min)
    "deploy": 300,
    "restart": 90,
    "bot": 120,
    "history": 120,
    "scale": 900,  # 1,000 programs under one supervisord: 4–7 min
    "rollback": 120,
    "realdeps": 900,
    "swarm": 420,  # a two-node swarm up and down: ~145 s warm, ~200 s cold (base built)
}
# Figures of issue 8 that no module measures yet (shown in the report as such).
NOT_YET: dict[str, str] = {}
OUT = ROOT / "docs" / "performance.md"
# The raw figures of the latest run of each module: a partial `bench/run X` replaces X's
# figures and keeps every other module's, so the report always shows every figure.
RAW = ROOT / "docs" / "performance.json"


def run_module(name: str, limit: int) -> tuple[list[Figure], str | None]:
    """Run bench/bench_NAME.py; returns its figures and an error line when it failed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.bench_{name}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        start_new_session=True,
    )
    figures: list[Figure] = []
    error = None
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, _ = proc.communicate()
        error = f"timed out after {limit} s"
    finally:
        kill_group(proc)
    for line in (out or "").splitlines():
        if line.startswith("RESULT "):
            figures.append(Figure(**json.loads(line[len("RESULT ") :])))
        elif line.strip():
            log(f"  {name}: {line}")
    if error is None and proc.returncode != 0:
        error = f"exited with status {proc.returncode}"
    return figures, error


def fmt(value: float, unit: str) -> str:
    if value != value:  # nan
        return "—"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}"


def cell(xs: list[float], unit: str) -> str:
    lo, hi = spread(xs)
    return f"**{fmt(median(xs), unit)}** ({fmt(lo, unit)}–{fmt(hi, unit)}, n={len(xs)})"


def verdict(fig: Figure) -> tuple[str, str]:
    """(ratio text, verdict) for a figure; one that could not be measured here has none."""
    if not fig.samples:
        return "", "not measured"
    ours = median(fig.samples)
    ratio = ""
    base = fig.baselines.get(fig.ratio_of or "") if fig.ratio_of else None
    if base:
        ratio = f"{median(base) / ours:.1f}×" if ours > 0 else "∞"
    if fig.kind == "ratio":
        ok = bool(base) and median(base) / ours >= fig.limit
    elif fig.kind == "relmax":  # ours ≤ limit × baseline
        ok = bool(base) and ours <= fig.limit * median(base)
        if base:
            ratio = f"{ours / median(base):.2f}× of baseline"
    else:
        ok = ours <= fig.limit
    return ratio, "met" if ok else "**missed**"


def table(figures: list[Figure]) -> list[str]:
    rows = [
        "| figure | ours: median (min–max, runs) | baselines in the same run | ratio | target "
        "| verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fig in figures:
        bases = [f"{name}: {cell(xs, fig.unit)}" for name, xs in fig.baselines.items()]
        bases += [f"{name}: not measured ({why})" for name, why in fig.not_measured.items()]
        ratio, ok = verdict(fig)
        rows.append(
            f"| {fig.title} | {cell(fig.samples, fig.unit)} | {'<br>'.join(bases) or '—'} "
            f"| {ratio or '—'} | {fig.target} | {ok} |"
        )
    return rows


def merge(fresh: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """The saved figures of every module, with the modules run now replaced by `fresh`."""
    saved: dict[str, dict[str, object]] = {}
    if RAW.exists():
        try:
            saved = json.loads(RAW.read_text())
        except ValueError:
            log(f"{RAW.relative_to(ROOT)} is not JSON; starting it again")
    saved.update(fresh)
    ordered = {name: saved[name] for name in MODULES if name in saved}
    RAW.write_text(json.dumps(ordered, indent=1) + "\n")
    return ordered


def write_report(modules: dict[str, dict[str, object]]) -> None:
    figures = [
        Figure(**raw)
        for entry in modules.values()
        for raw in entry["figures"]  # type: ignore[attr-defined]
    ]
    errors = {name: str(e["error"]) for name, e in modules.items() if e.get("error")}
    runs = ", ".join(f"{name} {e['when']} ({e['seconds']:.0f} s)" for name, e in modules.items())
    lines = [
        "# Performance",
        "",
        "Written by `bench/run` (do not edit by hand). Every figure is the median of "
        f"{RUNS} or more runs, with the fastest and slowest run; every baseline was measured "
        "in the same run on the same machine, and the ratio is baseline median ÷ our median.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}; the cores are shared with "
        "other work, so single runs are noisy. Each module's last run (UTC, its length): "
        f"{runs}.",
        "",
        *table(figures),
        "",
    ]
    notes = [f for f in figures if f.note]
    if notes:
        lines += ["## Notes on each figure", ""]
        for fig in notes:
            lines += [f"**{fig.title}.** {fig.note}", ""]
    if NOT_YET:
        lines += ["## Figures not measured yet", ""]
        lines += [f"- {title} (target {target})" for title, target in NOT_YET.items()]
        lines.append("")
    if errors:
        lines += ["## Benchmarks that did not finish", ""]
        lines += [f"- `{name}`: {why}" for name, why in errors.items()]
        lines.append("")
    OUT.write_text("\n".join(lines))


def main(argv: list[str]) -> int:
    chosen = argv or list(MODULES)
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(MODULES)}", file=sys.stderr)
        return 2
    fresh: dict[str, dict[str, object]] = {}
    for name in chosen:
        t0 = time.monotonic()
        log(f"== {name}")
        got, error = run_module(name, MODULES[name])
        if error:
            log(f"== {name}: {error}")
        for fig in got:
            ratio, ok = verdict(fig)
            log(f"   {fig.title}: {fmt(median(fig.samples), fig.unit)} {ratio} {ok}")
        seconds = time.monotonic() - t0
        log(f"== {name} done in {seconds:.0f} s")
        fresh[name] = {
            "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "seconds": seconds,
            "error": error,
            "figures": [asdict(f) for f in got],
        }
    write_report(merge(fresh))
    log(f"wrote {OUT.relative_to(ROOT)} (and {RAW.relative_to(ROOT)})")
    return 1 if any(e["error"] for e in fresh.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
