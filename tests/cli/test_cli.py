"""The CLI as a person uses it: readable output, --json, and bad input refused cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import cli_env
from tests.support.fixtures_repos import Origin

ROOT = Path(__file__).resolve().parents[2]


ENGLISH = {"LANG": "C.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as the admin runs it, in English (the texts below are compared)."""
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env=cli_env(data_dir, **{**ENGLISH, **env}),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def seeded(data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]) -> Path:
    repo = origin("demo")
    repo.commits(3)
    done = run(
        data_dir, "project", "add", "demo", "--repo", repo.url, "--path", str(tmp_path / "live")
    )
    assert done.returncode == 0, done.stderr
    assert run(data_dir, "env", "set", "demo", "API_KEY=sk-live-0123456789abcdef").returncode == 0
    return data_dir


def test_help_lists_the_commands(data_dir: Path) -> None:
    done = run(data_dir, "--help")
    assert done.returncode == 0
    for command in ("up", "serve", "run-slot", "project", "env", "poll", "status", "key"):
        assert command in done.stdout
    for sub in (["project", "--help"], ["env", "set", "--help"], ["poll", "--help"]):
        assert run(data_dir, *sub).returncode == 0


def test_a_session(seeded: Path, tmp_path: Path) -> None:
    shown = run(seeded, "env", "list", "demo")
    assert shown.stdout.strip() == "API_KEY=sk-…cdef  (secret)"
    assert "sk-live-0123456789abcdef" in run(seeded, "env", "list", "demo", "--reveal").stdout
    assert json.loads(run(seeded, "env", "list", "demo", "--json").stdout) == {
        "API_KEY": "sk-…cdef"
    }
    done = run(seeded, "env", "set", "demo", "--test", "API_KEY=test", "X=1")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "set API_KEY, X for demo test",
        "demo test is not running: the change applies when it starts",
    ]
    listed = run(seeded, "env", "list", "demo", "--test").stdout.splitlines()
    assert listed == ["API_KEY=•••  (secret)", "X=1"]  # a secret by its name; X is plain
    # marks: by hand, without retyping the value; a value set anew keeps its mark
    assert run(seeded, "env", "mark", "demo", "--test", "X", "--secret").returncode == 0
    assert run(seeded, "env", "set", "demo", "--test", "X=2").returncode == 0
    assert run(seeded, "env", "list", "demo", "--test").stdout.splitlines()[1] == "X=•••  (secret)"
    assert run(seeded, "env", "mark", "demo", "--test", "API_KEY", "--plain").returncode == 0
    assert run(seeded, "env", "list", "demo", "--test").stdout.splitlines()[0] == "API_KEY=test"
    assert run(seeded, "env", "mark", "demo", "--test", "API_KEY", "--default").returncode == 0
    assert "API_KEY=•••" in run(seeded, "env", "list", "demo", "--test").stdout
    assert run(seeded, "env", "set", "demo", "--test", "--plain", "TOKEN_URL=x1").returncode == 0
    assert "TOKEN_URL=x1\n" in run(seeded, "env", "list", "demo", "--test").stdout
    assert run(seeded, "env", "mark", "demo", "NOT_SET", "--plain").returncode != 0
    only_build = run(seeded, "env", "set", "demo", "PIP_INDEX_URL=https://pypi.example/simple")
    assert only_build.stdout.splitlines()[1] == (
        "only the build reads them: the next build uses them; nothing restarted"
    )
    assert run(seeded, "poll", "demo", "15m").stdout.strip() == "demo: poll 15m"
    assert run(seeded, "project", "set", "demo", "keep", "3").returncode == 0
    listed = json.loads(run(seeded, "project", "list", "--json").stdout)
    assert [(p["name"], p["poll"], p["keep"]) for p in listed] == [("demo", 900, 3)]
    assert "poll 15m" in run(seeded, "project", "list").stdout
    status = run(seeded, "status")
    assert "data dir" in status.stdout and "projects       1" in status.stdout
    platform = json.loads(run(seeded, "status", "--json").stdout)["platform"]
    assert set(platform) == {"os", "arch", "in_container"}
    assert run(seeded, "env", "unset", "demo", "--test", "X").returncode == 0
    assert run(seeded, "project", "remove", "demo").returncode == 0
    assert run(seeded, "project", "list").stdout.startswith("no projects yet")


BAD_INPUTS = [
    ["project", "add", "Bad Name", "--repo", "https://h/o/r", "--path", "/srv/x"],
    ["project", "add", "ok", "--repo", "--upload-pack=touch /tmp/x", "--path", "/srv/x"],
    ["project", "add", "ok", "--repo", "ext::sh -c id", "--path", "/srv/x"],
    ["project", "add", "ok", "--repo", "https://h/o/r", "--path", "/"],
    ["project", "add", "ok", "--repo", "https://h/o/r", "--path", "/etc/app"],
    ["project", "add", "ok", "--repo", "https://h/o/r", "--path", "relative"],
    ["project", "add", "ok", "--repo", "https://h/o/r", "--path", "/srv/x", "--branch", "-x"],
    ["project", "add", "ok", "--repo", "https://h/o/r", "--path", "/srv/x", "--entry", "../x.py"],
    ["project", "add", "demo", "--repo", "https://h/o/r", "--path", "/srv/other"],
    ["project", "add", "ok", "--repo", "https://h/o/r"],
    ["project", "show", "missing"],
    ["project", "show", "../etc"],
    ["project", "remove", "missing"],
    ["project", "set", "demo", "keep", "0"],
    ["project", "set", "demo", "colour", "red"],
    ["project", "set", "demo", "policy", "yolo"],
    ["env", "set", "demo", "API_KEY=ok", "1BAD=x"],
    ["env", "set", "demo", "NOEQUALS"],
    ["env", "set", "demo", "HOME=/root"],
    ["env", "set", "missing", "A=1"],
    ["env", "unset", "demo", "API_KEY", "NOT_SET"],
    ["env", "unset", "demo", "bad-name"],
    ["env", "list", "missing"],
    ["poll", "demo", "3s"],
    ["poll", "demo", "soon"],
    ["poll", "missing", "5m"],
    ["run-slot", "demo", "staging"],
    ["frobnicate"],
]


@pytest.mark.parametrize("args", BAD_INPUTS, ids=lambda a: " ".join(a)[:50])
def test_bad_input_exits_non_zero_with_one_line_and_writes_nothing(
    seeded: Path, args: list[str]
) -> None:
    before = snapshot(seeded)
    done = run(seeded, *args)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("controlplane") and "error" in lines[0]
    assert "Traceback" not in done.stderr
    assert snapshot(seeded) == before


def test_folder_with_someone_elses_files_is_not_taken_unasked(
    data_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    done = run(data_dir, "project", "add", "x", "--repo", "https://h/o/r", "--path", str(folder))
    assert done.returncode == 2 and "did not put there" in done.stderr
    assert "--take-over" in done.stderr
    assert (folder / "notes.txt").read_text() == "mine"


def test_file_urls_refused_unless_enabled(data_dir: Path, tmp_path: Path) -> None:
    done = run(
        data_dir,
        "project",
        "add",
        "x",
        "--repo",
        str(tmp_path),
        "--path",
        "/srv/x",
        CONTROLPLANE_ALLOW_FILE_URLS="0",
    )
    assert done.returncode == 2 and "repository URL" in done.stderr


def test_unreachable_repository_is_refused_and_credentials_are_not_echoed(
    data_dir: Path,
) -> None:
    done = run(
        data_dir,
        "project",
        "add",
        "x",
        "--repo",
        "http://u:hunter2secret@127.0.0.1:9/o/r",
        "--path",
        "/srv/x",
    )
    assert done.returncode == 1
    assert "unencrypted" not in done.stdout
    assert "hunter2secret" not in done.stdout + done.stderr
    assert "127.0.0.1" in done.stderr
    assert run(data_dir, "project", "list").stdout.startswith("no projects yet")


def test_added_project_numbers_its_whole_history(
    data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]
) -> None:
    repo = origin("many")
    shas = repo.commits(25)
    done = run(
        data_dir, "project", "add", "many", "--repo", repo.url, "--path", str(tmp_path / "many")
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(run(data_dir, "history", "many", "--json").stdout)
    assert [r["n"] for r in rows] == list(range(25, 0, -1))
    assert [r["sha"] for r in reversed(rows)] == shas
    text = run(data_dir, "history", "many").stdout.splitlines()
    assert text[0].split()[:2] == ["#25", shas[-1][:7]] and "change 25" in text[0]
    assert text[-1].split()[:2] == ["#1", shas[0][:7]] and len(text) == 25  # one page: no footer


def test_history_pages_through_every_commit(
    data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]
) -> None:
    repo = origin("long")
    shas = repo.bulk(120)
    live = str(tmp_path / "long")
    added = run(data_dir, "project", "add", "long", "--repo", repo.url, "--path", live)
    assert added.returncode == 0, added.stderr
    first = run(data_dir, "history", "long").stdout.splitlines()
    assert len(first) == 51 and first[0].startswith("#120 ") and first[49].startswith("#71 ")
    assert first[-1] == (
        "commits 1–50 of 120, page 1 of 3: --page N for another page, --all for every commit"
    )
    last = run(data_dir, "history", "long", "--page", "3").stdout.splitlines()
    assert last[0].startswith("#20 ") and last[19].split()[:2] == ["#1", shas[0][:7]]
    assert last[-1].startswith("commits 101–120 of 120, page 3 of 3")
    assert len(run(data_dir, "history", "long", "--all").stdout.splitlines()) == 120
    assert len(json.loads(run(data_dir, "history", "long", "--json").stdout)) == 120
    page = json.loads(run(data_dir, "history", "long", "--json", "--page", "2").stdout)
    assert [r["n"] for r in page] == list(range(70, 20, -1))
    ru = {"LANG": "ru_RU.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
    russian = run(data_dir, "history", "long", "--page", "2", **ru).stdout
    assert "commits" not in russian and "--page" in russian


def test_malformed_setting_is_one_line(data_dir: Path) -> None:
    done = run(data_dir, "status", ADMIN_CHAT_IDS="12,abc")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "ADMIN_CHAT_IDS" in done.stderr


def test_remove_takes_everything_of_ours_and_a_new_project_starts_afresh(
    data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]
) -> None:
    repo = origin("again")
    repo.commits(3)
    live = tmp_path / "again-live"
    assert (
        run(data_dir, "project", "add", "again", "--repo", repo.url, "--path", str(live)).returncode
        == 0
    )
    assert (data_dir / "projects" / "again" / "mirror.git").is_dir()
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    written = ["again-prod.out.log", "again-prod.out.log.1", "again-test.err.log.3"]
    others = ["again-prod-prod.out.log", "againx-prod.err.log", "again-prod.out.log.bak"]
    for name in written + others:
        (logs / name).write_text("a line\n")
    assert run(data_dir, "project", "remove", "again").returncode == 0
    assert not (data_dir / "projects" / "again").exists()
    # its slot logs and their backups go; another project's logs and strangers' files stay
    assert sorted(p.name for p in logs.iterdir() if p.name.startswith("again")) == sorted(others)
    assert (
        run(data_dir, "project", "add", "again", "--repo", repo.url, "--path", str(live)).returncode
        == 0
    )
    rows = json.loads(run(data_dir, "history", "again", "--json").stdout)
    assert [(r["n"], r["live"], r["release"]) for r in rows] == [
        (3, [], None),
        (2, [], None),
        (1, [], None),
    ]


def test_repo_url_can_be_changed_and_its_token_is_kept_secret(
    seeded: Path, origin: Callable[..., Origin]
) -> None:
    done = run(
        seeded,
        "project",
        "set",
        "demo",
        "repo",
        "https://x-access-token:tok123secret@github.com/o/r.git",
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(run(seeded, "project", "show", "demo", "--json").stdout)
    assert shown["repo"] == "https://github.com/o/r.git"
    assert b"tok123secret" not in (seeded / "store.json").read_bytes()
    assert run(seeded, "project", "set", "demo", "repo", "ext::sh").returncode == 2


def test_reserved_variable_names_are_refused(seeded: Path) -> None:
    for name in ("PATH", "LANG", "HOME", "APP_DATA_DIR", "CONTROLPLANE_X"):
        done = run(seeded, "env", "set", "demo", f"{name}=x")
        assert done.returncode == 2 and "set by the control plane" in done.stderr, name


def test_a_bad_runner_or_placement_is_said_before_serve_is_asked(seeded: Path) -> None:
    """serve is down here: what is wrong with the request is said first, in one line."""
    cases = {
        ("demo", "runner", "cloud"): "bad runner 'cloud': use local or swarm",
        ("demo", "placement", "node.foo==x"): "bad placement 'node.foo==x': use node.labels",
        ("nosuch", "runner", "swarm"): "no project named nosuch",
    }
    for (name, key, value), said in cases.items():
        done = run(seeded, "project", "set", name, key, value)
        assert done.returncode != 0 and said in done.stderr, done.stderr
        assert done.stderr.strip().count("\n") == 0 and "serve" not in done.stderr
    # a good request needs serve for the move, and says so
    done = run(seeded, "project", "set", "demo", "runner", "swarm")
    assert done.returncode == 1 and "serve is not running" in done.stderr
