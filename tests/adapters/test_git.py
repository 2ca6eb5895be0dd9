"""controlplane.git against real repositories on disk and over loopback smart HTTP."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from controlplane.adapters import git, runner
from controlplane.adapters.giterrors import MIRROR
from controlplane.i18n import tr
from tests.support.fixtures_repos import Origin, sh_git
from tests.support.gitserver import serve

OriginFactory = Callable[..., Origin]
TOKEN = "ghp_s3cretTokenValue42"


def mirror_of(o: Origin, tmp_path: Path) -> Path:
    mirror = git.ensure_mirror(o.url, tmp_path / "mirror.git")
    git.fetch(mirror, o.url, o.branch)
    return mirror


def test_ls_remote_returns_branch_head(origin: OriginFactory) -> None:
    o = origin()
    shas = o.commits(3)
    assert git.ls_remote(o.url, "main") == shas[-1]


def test_numbering_list_is_the_whole_first_parent_line_oldest_first(
    origin: OriginFactory, tmp_path: Path
) -> None:
    o = origin()
    shas = o.commits(25)
    sh_git("checkout", "-q", "-b", "feature", cwd=o.work)
    side = o.commit("side work")
    sh_git("checkout", "-q", "main", cwd=o.work)
    sh_git("merge", "-q", "--no-ff", "-m", "merge feature", "feature", cwd=o.work)
    o.push()
    merge = sh_git("rev-parse", "HEAD", cwd=o.work)
    mirror = mirror_of(o, tmp_path)
    log = git.first_parent_log(mirror, "refs/heads/main")
    assert [c.sha for c in log] == [*shas, merge]
    assert side not in [c.sha for c in log]
    assert log[0].subject == "change 1" and log[0].author == "Ada Author"
    last = git.first_parent_log(mirror, "refs/heads/main", 20)
    assert [c.sha for c in last] == [*shas[-19:], merge]
    assert log[-1].date.tzinfo is not None
    newer = o.commits(2, prefix="later")
    git.fetch(mirror, o.url, "main")
    assert [c.sha for c in git.first_parent_log(mirror, "main", since=merge)] == newer
    info = git.commit_info(mirror, newer[0][:8])
    assert (info.sha, info.subject, info.short) == (newer[0], "later 1", newer[0][:7])


def test_export_writes_files_without_git_and_keeps_modes_and_symlinks(
    origin: OriginFactory, tmp_path: Path
) -> None:
    o = origin()
    o.commit("code", {"main.py": "print('hi')\n", "pkg/run.sh": "#!/bin/sh\n"})
    os.chmod(o.work / "pkg/run.sh", 0o755)
    os.symlink("/etc/passwd", o.work / "outside")
    os.symlink("main.py", o.work / "inside")
    sha = o.commit("modes and links", {})
    o.push()
    mirror = mirror_of(o, tmp_path)
    dest = git.export(mirror, sha, tmp_path / "release")
    assert sorted(p.name for p in dest.iterdir()) == ["inside", "main.py", "outside", "pkg"]
    assert (dest / "main.py").read_text() == "print('hi')\n"
    assert os.access(dest / "pkg/run.sh", os.X_OK)
    assert os.readlink(dest / "outside") == "/etc/passwd"
    assert os.readlink(dest / "inside") == "main.py"
    assert not (mirror / "index").exists()
    with pytest.raises(FileExistsError):
        git.export(mirror, sha, dest)


def test_force_push_keeps_numbered_commits_exportable(
    origin: OriginFactory, tmp_path: Path
) -> None:
    o = origin()
    shas = o.commits(3)
    mirror = mirror_of(o, tmp_path)
    git.keep(mirror, [c.sha for c in git.first_parent_log(mirror, "main")])
    o.reset_hard(shas[0])
    rewritten = o.commit("rewritten history")
    o.push(force=True)
    assert git.fetch(mirror, o.url, "main") == rewritten
    sh_git("-C", str(mirror), "gc", "-q", "--prune=now")
    dest = git.export(mirror, shas[2], tmp_path / "old")
    assert (dest / "change_3.txt").read_text() == "change 3"
    # A fresh mirror still gets the orphaned commit by id (protocol v2 fetch by sha).
    fresh = git.ensure_mirror(o.url, tmp_path / "fresh.git")
    assert git.fetch_commit(fresh, o.url, shas[2]) == shas[2]
    assert git.has_commit(fresh, shas[2])
    assert (fresh / "refs/controlplane/keep" / shas[2]).exists()


def test_fetch_commit_gone_from_remote_is_commit_missing(
    origin: OriginFactory, tmp_path: Path
) -> None:
    o = origin()
    o.commits(1)
    mirror = mirror_of(o, tmp_path)
    with pytest.raises(git.CommitMissing, match="not on"):
        git.fetch_commit(mirror, o.url, "1" * 40)


def test_bad_path_is_repo_not_found(tmp_path: Path) -> None:
    with pytest.raises(git.RepoNotFound, match="no repository at") as caught:
        git.ls_remote(str(tmp_path / "nothing.git"), "main")
    assert caught.value.url == str(tmp_path / "nothing.git")


def test_missing_branch_names_the_branches(origin: OriginFactory, tmp_path: Path) -> None:
    o = origin()
    o.commits(1)
    o.push(branch="develop")
    with pytest.raises(git.BranchMissing) as caught:
        git.ls_remote(o.url, "prod")
    assert caught.value.branches == ["develop", "main"] and caught.value.branch == "prod"
    assert caught.value.url == o.url
    assert str(caught.value) == f"branch prod does not exist on {o.url}; branches: develop, main"
    assert caught.value.text.render("ru") == (
        f"ветки prod нет в {o.url}; есть ветки: develop, main"
    )
    mirror = git.ensure_mirror(o.url, tmp_path / "m.git")
    with pytest.raises(git.BranchMissing):
        git.fetch(mirror, o.url, "prod")


def test_http_with_credentials_fetches_and_never_shows_them(
    origin: OriginFactory, tmp_path: Path
) -> None:
    o = origin()
    shas = o.commits(2)
    with serve(o.bare.parent, auth=f"bot:{TOKEN}") as server:
        good = f"http://bot:{TOKEN}@127.0.0.1:{server.server_address[1]}/app.git"
        assert git.ls_remote(good, "main") == shas[-1]
        mirror = git.ensure_mirror(good, tmp_path / "m.git")
        log = io.StringIO()
        git.fetch(mirror, good, "main", log=log)
        assert git.resolve(mirror, "main") == shas[-1]
        bad = good.replace(TOKEN, "wrong-password")
        with pytest.raises(git.AuthFailed, match="authentication failed for http://127") as caught:
            git.ls_remote(bad, "main")
        anonymous = f"{server.base_url}/app.git"
        with pytest.raises(git.AuthFailed):
            git.ls_remote(anonymous, "main")
    refused = caught.value
    assert refused.url == bad.replace("bot:wrong-password@", "")
    assert str(refused).startswith(f"ls-remote: authentication failed for {refused.url}: check")
    assert refused.text.render("ru") == (
        f"запрос веток: {refused.url} — учётные данные не приняты: проверьте токен или пароль "
        "в URL репозитория (и что им можно читать этот репозиторий)"
    )
    shown = str(caught.value) + caught.value.tail + caught.value.url + log.getvalue()
    shown += caught.value.text.render("ru")
    assert "wrong-password" not in shown and TOKEN not in shown
    assert TOKEN not in (mirror / "config").read_text()


def test_credential_never_on_a_command_line(origin: OriginFactory, tmp_path: Path) -> None:
    o = origin()
    o.commits(1)
    seen: list[str] = []
    errors: list[BaseException] = []
    with serve(o.bare.parent, auth=f"bot:{TOKEN}", delay=0.4) as server:
        url = f"http://bot:{TOKEN}@127.0.0.1:{server.server_address[1]}/app.git"
        mirror = git.ensure_mirror(url, tmp_path / "m.git")

        def work() -> None:
            try:
                git.fetch(mirror, url, "main")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        while thread.is_alive():
            for proc in psutil.process_iter(["cmdline"]):
                seen.append(" ".join(proc.info["cmdline"] or []))
            time.sleep(0.05)
        thread.join()
    assert not errors
    assert any("fetch" in line and "127.0.0.1" in line for line in seen)
    assert not [line for line in seen if TOKEN in line or "Authorization" in line]


def test_closed_port_is_host_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(git.HostUnreachable, match="cannot reach"):
        git.ls_remote(f"http://127.0.0.1:{port}/app.git", "main", timeout=20)


def test_silent_server_times_out_as_host_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(git.HostUnreachable, match="did not answer in time"):
            git.ls_remote(f"http://127.0.0.1:{port}/app.git", "main", timeout=1)
    assert time.monotonic() - started < 10


def test_cancel_stops_a_hanging_fetch(origin: OriginFactory, tmp_path: Path) -> None:
    o = origin()
    o.commits(1)
    cancel = threading.Event()
    with serve(o.bare.parent, delay=30) as server:
        mirror = git.ensure_mirror(o.url, tmp_path / "m.git")
        threading.Timer(0.5, cancel.set).start()
        with pytest.raises(runner.Cancelled):
            git.fetch(mirror, f"{server.base_url}/app.git", "main", cancel=cancel)


def _dead_proxy() -> dict[str, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {"http_proxy": f"http://127.0.0.1:{port}", "NO_PROXY": ""}


def test_a_projects_proxy_reaches_an_unprivileged_git(
    origin: OriginFactory,
    run_as_user: str | None,
) -> None:
    if os.geteuid() != 0 or run_as_user is None:
        pytest.skip("needs root and a second user to run git unprivileged")
    o = origin()
    head = o.commits(1)[-1]
    access = git.Access(user=run_as_user)
    with serve(o.bare.parent) as server:
        url = f"{server.base_url}/app.git"
        assert git.ls_remote(url, "main", timeout=20, access=access) == head
        with pytest.raises(git.HostUnreachable):
            git.ls_remote(url, "main", env=_dead_proxy(), timeout=20, access=access)


def test_a_git_running_as_root_never_sees_a_projects_variables(origin: OriginFactory) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: git as root is the case under test")
    o = origin()
    sha = o.commits(1)[-1]
    env = {**_dead_proxy(), "LD_PRELOAD": "/nonexistent/evil.so", "GIT_SSH_COMMAND": "touch /x"}
    with serve(o.bare.parent) as server:
        # the dead proxy is ignored: root's git got none of the project's values
        head = git.ls_remote(f"{server.base_url}/app.git", "main", env=env, timeout=20)
    assert head == sha
    full = git.git_env(env, privileged=True)
    assert "LD_PRELOAD" not in full and "http_proxy" not in full
    assert full["GIT_SSH_COMMAND"].startswith("ssh -F /dev/null")
    unprivileged = git.git_env(env, privileged=False)
    assert unprivileged["http_proxy"] == env["http_proxy"] and "LD_PRELOAD" not in unprivileged


def test_classify_and_redact_are_pure() -> None:
    def failed(text: str) -> runner.CommandFailed:
        return runner.CommandFailed(argv=["git"], cwd=None, returncode=128, output=text)

    url = "https://h/x.git"
    assert isinstance(
        git.classify(failed("remote: Repository not found."), url, "x"), git.RepoNotFound
    )
    assert isinstance(
        git.classify(failed("fatal: Could not resolve host: h"), url, "x"), git.HostUnreachable
    )
    assert isinstance(
        git.classify(failed("Permission denied (publickey)."), url, "x"), git.AuthFailed
    )
    odd = git.classify(failed("fatal: something odd"), url, tr("reading history"))
    assert type(odd) is git.GitError and odd.tail == "fatal: something odd"
    assert str(odd) == "reading history failed for https://h/x.git:\nfatal: something odd"
    assert (
        odd.text.render("ru") == "чтение истории: ошибка (https://h/x.git):\nfatal: something odd"
    )
    local = git.classify(failed(""), MIRROR, tr("reading history"))
    assert local.url == MIRROR and str(local) == "reading history failed for the mirror:\n"
    assert local.text.render("ru") == "чтение истории: ошибка (зеркало):\n"
    remote = git.Remote.parse("https://u:pa55word@h/x.git")
    assert remote.url == url and "pa55word" not in repr(remote)
    redact = git.redactor(remote.secrets())
    assert (
        redact("https://u:pa55word@h and pa55word and https://a:b@c")
        == "https://***@h and *** and https://***@c"
    )


def test_git_env_keeps_proxies_and_drops_dangerous_git_variables() -> None:
    env = git.git_env(
        {
            "HTTPS_PROXY": "http://proxy:3128",
            "GIT_DIR": "/elsewhere",
            "GIT_TRACE_CURL": "1",
            "GIT_SSL_CAINFO": "/ca.pem",
            "GIT_TERMINAL_PROMPT": "1",
        },
        auth="bot:tok",
        privileged=False,
    )
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["GIT_SSL_CAINFO"] == "/ca.pem"
    assert "GIT_DIR" not in env and "GIT_TRACE_CURL" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    values = [env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))]
    assert "never" in values and any(v.startswith("Authorization: Basic ") for v in values)
