"""1,000 projects × 100 numbered commits under one real supervisord: what grows with them.

One box (a supervisord with our config and event listener) gets projects in three steps,
100, 500 and 1,000, each with its prod program file (conf.d/NAME-prod.conf, run-slot as
the command, as serve writes it). At each step: supervisord's own RSS and the time of
`reloadConfig` when nothing changed (what every `serve` start and every program change
pays). The apps are a 3-line Python program that sleeps (`while True: time.sleep(3600)`,
about 9 MB each); RUNNING of them are started, the others are programs with
autostart=false whose slot state says stopped, since 1,000 Python processes plus their
run-slot starts would spend minutes of 2 shared cores on setup.

With 1,000 programs it then measures, against baselines in the same run:
- `controlplane status` (all projects), start to exit, with bytecode cached as in an
  installed controlplane, against `supervisorctl status` of the same supervisord;
- a page of the bot's projects list through the bot's own code (bot/views.py
  projects_listing, then the screen), against what the list read before it was paged
  (every project's state and every program's info);
- `serve` start (store opened, recovery, reconcile of 1,000 program files, the bot
  answering /start from the fake Bot API), with the pids of the running apps compared
  before and after: an app restarted by the start fails the benchmark.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, RUNS, Figure, kill_group, log, median, rss_mb, tempdir, wait_until
from bench.populate import populate, project_name
from controlplane.adapters.supervisor.client import Supervisor, find_supervisord
from controlplane.bot import screens, views
from controlplane.engine.build import ready_marker
from controlplane.service.facade import Service
from controlplane.service.serve import reconcile_once
from tests.support.botapi import FakeBotAPI
from tests.support.fixtures_supervisor import Box, start_box

PROJECTS = 1000
COMMITS = 100
STEPS = (100, 500, 1000)
RUNNING = 100  # apps started; the rest are stopped programs (autostart=false)
SERVE_RUNS = 3
TOKEN = "424242:BENCH-SCALE-TOKEN"
ADMIN = 111
APP = "import time\n\nwhile True:\n    time.sleep(3600)\n"
TG_TEXT, TG_BUTTONS = 4096, 100  # a message's length and an inline keyboard's buttons


def write_app(code: Path) -> None:
    code.mkdir(parents=True, exist_ok=True)
    (code / "main.py").write_text(APP)
    os.chmod(code, 0o755)


def running_pids(client: Supervisor) -> dict[str, int]:
    return {i.name: i.pid for i in client.all_info() if i.state == "RUNNING" and i.pid}


def grow(box: Box, apps: Path, have: int, want: int) -> None:
    """Projects have…want-1 with their apps and program files, added to supervisord."""
    populate(box.store, want - have, COMMITS, base=apps, start=have, running=lambda i: i < RUNNING)
    for i in range(have, want):  # as deployed: the app's folder links to its release
        name = project_name(i)
        for release in box.store.releases(name):
            dest = box.settings.layout.release_dir(name, release.n, release.sha)
            write_app(dest)
            ready_marker(dest).touch()
        (apps / name).parent.mkdir(parents=True, exist_ok=True)
        (apps / name).symlink_to(dest)
    t = time.perf_counter()
    plan = reconcile_once(box.settings, box.store, box.client)
    log(f"{want} programs: added {len(plan.added)} in {time.perf_counter() - t:.1f} s")
    started = min(RUNNING, want)
    wait_until(
        lambda: len([p for p in running_pids(box.client) if p.endswith("-prod")]) >= started,
        120,
        f"{started} apps running",
        step=0.5,
    )


def reread_ms(client: Supervisor) -> float:
    t = time.perf_counter()
    added, changed, removed = client.call("reloadConfig")[0]
    took = (time.perf_counter() - t) * 1000
    assert not (added or changed or removed), (added, changed, removed)
    return took


def supervisord_steps(box: Box, apps: Path) -> None:
    have = 0
    for step in STEPS:
        grow(box, apps, have, step)
        have = step
        time.sleep(1.0)
        rss = [rss_mb(box.proc.pid) for _ in range(RUNS)]
        with Supervisor(box.settings, timeout=300.0) as client:  # tens of seconds at 1,000
            reread = [reread_ms(client) for _ in range(RUNS if step < PROJECTS else 2)]
        Figure(
            key=f"scale:supervisord rss {step}",
            title=f"supervisord's RSS with {step} programs ({min(step, RUNNING)} running)",
            unit="MB",
            samples=rss,
            target="comfortable ≤ 100 MB",
            kind="max",
            limit=100.0,
            note="supervisord's own process (not its children), idle, after the programs "
            "were added; it keeps a config, a process object and log handlers per program: "
            "about 28 MB with 100, 34 MB with 500, 45 MB with 1,000, so memory is not "
            "where it stops being comfortable (its reloadConfig is).",
        ).emit()
        Figure(
            key=f"scale:reloadConfig {step}",
            title=f"supervisord `reloadConfig` with {step} programs, nothing changed",
            unit="ms",
            samples=reread,
            target="comfortable ≤ 1000 ms",
            kind="max",
            limit=1000.0,
            note="supervisord re-parses every conf.d file and compares each group's config. "
            "Its config parser re-joins every section read so far after each file, so the "
            "time grows with the square of the number of files: comfortable (under half a "
            "second) up to about 200 programs, 1.4–6 s at 500, 6–15 s at 1,000 on 2 shared "
            "cores, and supervisord answers nothing meanwhile (no RPC, no state change). "
            "serve's start skips it when no program file changed and supervisord has read "
            "them all (adapters/supervisor/confread.py); a deploy to a slot whose file is "
            "unchanged never calls it; adding or removing a project, a first deploy and a "
            "slot's autostart change still do. Beyond a few hundred programs what it would "
            "take: several programs per conf.d file (tens of files instead of 1,000), or "
            "a process manager without the quadratic reread.",
        ).emit()


def status_runs(box: Box, base: Path) -> None:
    """`controlplane status` of all projects vs `supervisorctl status`."""
    env = {k: v for k, v in box.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(base / "pycache"))
    ours_argv = [sys.executable, "-m", "controlplane", "status"]
    conf = str(box.settings.supervisord_conf)
    ctl = shutil.which("supervisorctl") or str(Path(find_supervisord()).with_name("supervisorctl"))
    user, password = box.settings.supervisor_auth.read_text().split(":", 1)
    ctl_argv = [ctl, "-c", conf, "-u", user, "-p", password.strip(), "status"]

    def timed(argv: list[str], lines: int) -> float:
        t = time.perf_counter()
        out = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - t
        got = len(out.stdout.splitlines())
        assert got >= lines, f"{argv[-1]}: {got} lines, rc {out.returncode}: {out.stderr[-400:]}"
        return took

    timed(ours_argv, PROJECTS)  # writes the bytecode, as an install does
    ours, base_runs = [], []
    for _ in range(RUNS):
        ours.append(timed(ours_argv, PROJECTS))
        base_runs.append(timed(ctl_argv, PROJECTS))
    Figure(
        key="scale:status",
        title=f"`controlplane status` of {PROJECTS} projects, start to exit",
        unit="s",
        samples=ours,
        baselines={"`supervisorctl status` (every program)": base_runs},
        ratio_of="`supervisorctl status` (every program)",
        target="≤ 1 s",
        kind="max",
        limit=1.0,
        note="One getAllProcessInfo, then per project its state file and only the commits "
        "the lines show (store.find_commits: the prod and test numbers and the head, "
        "without making a row of each of the 100 commits), plus Python's start and the "
        "CLI's imports; bytecode is cached, as in an installed controlplane.",
    ).emit()


def list_pages(box: Box) -> None:
    """A page of the bot's projects list, as the bot reads and renders it."""
    query = Service(box.settings, box.store).query
    pages = [(0, ""), (PROJECTS // 20, ""), (PROJECTS // 10 - 1, ""), (0, "p09")]
    query.projects()  # serve's store is warm: the first read of store.json is not a page's

    def page(k: int) -> float:
        number, search = pages[k % len(pages)]
        t = time.perf_counter()
        listing = views.projects_listing(query, number, search)
        text, markup = screens.projects_list("en", listing)
        took = (time.perf_counter() - t) * 1000
        buttons = sum(len(row) for row in markup.inline_keyboard)
        assert listing.rows and len(text) <= TG_TEXT and buttons <= TG_BUTTONS, (text, buttons)
        return took

    def whole(_k: int) -> float:
        t = time.perf_counter()
        rows = query.projects_overview()
        took = (time.perf_counter() - t) * 1000
        assert len(rows) == PROJECTS
        return took

    ours = [page(k) for k in range(max(RUNS, 8))]
    before = [whole(k) for k in range(RUNS)]
    Figure(
        key="scale:list page",
        title=f"a page of the bot's projects list with {PROJECTS} projects (10 a page)",
        unit="ms",
        samples=ours,
        baselines={"every project's state and program (the list before paging)": before},
        ratio_of="every project's state and program (the list before paging)",
        target="≤ 50 ms, within Telegram's limits",
        kind="max",
        limit=50.0,
        note="bot/views.py projects_listing and screens.projects_list, as a press of 📦 "
        "Projects runs them (first, middle and last page, and a search): the names from "
        "store.json (parsed once per change of the file), then the state file and "
        "getProcessInfo of the 10 projects shown only. Every page is checked to fit in one "
        f"message ({TG_TEXT} characters, {TG_BUTTONS} buttons).",
    ).emit()


def serve_start(box: Box, api: FakeBotAPI, url: str, base: Path) -> None:
    """serve started with 1,000 programs: reconcile done and the bot answering; the
    running apps keep their pids."""
    env = {
        **box.env,
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_TOKEN": TOKEN,
        "ADMIN_CHAT_IDS": str(ADMIN),
        "TELEGRAM_API_URL": url,
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    before = running_pids(box.client)
    assert len([p for p in before if p.endswith("-prod")]) >= RUNNING, before
    runs, memory = [], []
    for k in range(SERVE_RUNS):
        out = base / f"serve-{k}.log"
        answered = len(api.bot_messages(ADMIN))
        t = time.perf_counter()
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "controlplane", "serve"],
                env=env,
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            api.user_sends(ADMIN, "/start")
            try:
                wait_until(lambda f=out: b"reconciled:" in f.read_bytes(), 60, "reconcile", 0.02)
                wait_until(lambda n=answered: len(api.bot_messages(ADMIN)) > n, 60, "bot", 0.02)
            except TimeoutError:
                log(out.read_text(errors="replace")[-4000:])
                raise
            runs.append(time.perf_counter() - t)
            time.sleep(3.0)
            memory.append(rss_mb(proc.pid))
        finally:
            kill_group(proc)
        after = running_pids(box.client)
        restarted = {p: (before[p], after.get(p)) for p in before if after.get(p) != before[p]}
        assert not restarted, f"serve's start restarted {restarted}"
    log(f"serve's RSS after start with {PROJECTS} programs: {[round(m) for m in memory]} MB")
    Figure(
        key="scale:serve start",
        title=f"`serve` start with {PROJECTS} programs ({RUNNING} running): reconcile done, "
        "the bot answering",
        unit="s",
        samples=runs,
        target="≤ 10 s, no app restarted",
        kind="max",
        limit=10.0,
        note=f"From the process start to both the 'reconciled' log line and the bot's "
        f"answer to a /start sent at once (the fake Bot API). Reconcile renders each "
        f"program file, compares it with the one on disk (unchanged: not checked, not "
        f"written) and calls reloadConfig once; the {len(before)} running apps were "
        f"compared by pid before and after each of the {SERVE_RUNS} starts: none restarted. "
        f"serve's RSS a few seconds after start: {median(memory):.0f} MB.",
    ).emit()


def main() -> None:
    with tempdir("cpbench-scale-") as base:
        box = start_box(base, None)
        api = FakeBotAPI(token=TOKEN)
        url = api.start()
        try:
            supervisord_steps(box, base / "apps")
            status_runs(box, base)
            list_pages(box)
            serve_start(box, api, url, base)
        finally:
            api.stop()
            box.shutdown()


if __name__ == "__main__":
    main()
