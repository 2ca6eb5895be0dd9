"""The whole first-parent history is numbered: #1 is the branch's first commit, numbers
never change, an old never-built commit can be built, and the rows live in their own
compact file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.domain.history import CommitRow, find
from controlplane.domain.models import Project
from controlplane.engine.releases import Engine, Quiet
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings
from tests.support.fixtures_repos import Origin, sh_git


class Lines(Quiet):
    """The op's log lines (not its steps), kept."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[str] = []

    def log(self, line: str) -> None:
        self.logged.append(line)


def engine_for(settings: Settings, store: Store) -> Engine:
    return Engine(settings, store, Outbox(store), runner=SupervisorRunner(settings))


def test_the_whole_first_parent_history_is_numbered_from_the_first_commit(
    settings: Settings, store: Store, origin: Callable[..., Origin], tmp_path: Path
) -> None:
    repo = origin("app")
    old = repo.bulk(300)
    # a merged side branch: its commits are not on the first-parent line
    sh_git("checkout", "-q", "-b", "side", cwd=repo.work)
    side = repo.commit("side work")
    sh_git("checkout", "-q", "main", cwd=repo.work)
    sh_git("merge", "-q", "--no-ff", "-m", "merge side", "side", cwd=repo.work)
    repo.push()
    store.add_project(Project(name="app", repo=repo.url, path=str(tmp_path / "live")))
    engine = engine_for(settings, store)
    op = Lines()
    head = engine.sync(store.get_project("app"), op)
    commits = store.commits("app")
    assert head.n == 301 and head.subject == "merge side"
    assert [c.n for c in commits] == list(range(1, 302))
    assert [c.sha for c in commits[:300]] == old and commits[0].subject == "old 1"
    assert side not in {c.sha for c in commits}
    # the log names the range and the last 20, not 301 lines
    assert op.logged[0] == "numbered #1-#301 (301 commits); the last:" and len(op.logged) == 21

    newer = repo.commits(2, prefix="new")
    engine.sync(store.get_project("app"), Quiet())
    after = store.commits("app")
    assert after[:301] == commits  # numbers given once never change
    assert [(c.n, c.sha) for c in after[301:]] == [(302, newer[0]), (303, newer[1])]


def test_commits_live_in_their_own_compact_file(
    settings: Settings, store: Store, origin: Callable[..., Origin], tmp_path: Path
) -> None:
    repo = origin("app")
    repo.bulk(250)
    store.add_project(Project(name="app", repo=repo.url, path=str(tmp_path / "live")))
    engine_for(settings, store).sync(store.get_project("app"), Quiet())
    own = settings.layout.commit_store("app")
    rows = json.loads(own.read_text())["rows"]
    assert len(rows) == 250 and rows[0][:2] == [1, store.commits("app")[0].sha]
    project_file = json.loads(settings.layout.project_store("app").read_text())
    assert "commits" not in project_file  # the state's file stays small
    assert own.stat().st_size < 250 * 120  # about 100 bytes a commit
    store.forget("app")
    assert not own.exists() and store.commits("app") == []


def test_a_project_numbered_by_an_older_version_keeps_its_numbers(
    settings: Settings, store: Store, origin: Callable[..., Origin], tmp_path: Path
) -> None:
    repo = origin("app")
    shas = repo.bulk(30)
    store.add_project(Project(name="app", repo=repo.url, path=str(tmp_path / "live")))
    # an older version numbered the last 20 (#1 = the 11th commit), in the project's file
    with store.transaction("project:app") as db:
        store.table(db, "commits").insert_multiple(
            {**CommitRow(i + 1, sha, 0.0, "a", f"old {i + 11}").to_dict(), "project": "app"}
            for i, sha in enumerate(shas[10:])
        )
    assert [c.n for c in store.commits("app")] == list(range(1, 21))
    newer = repo.commits(1, prefix="new")
    head = engine_for(settings, store).sync(store.get_project("app"), Quiet())
    assert (head.n, head.sha) == (21, newer[0])
    commits = store.commits("app")
    assert [(c.n, c.sha) for c in commits[:20]] == [(i + 1, s) for i, s in enumerate(shas[10:])]
    assert "commits" not in json.loads(settings.layout.project_store("app").read_text())


def test_an_old_never_built_commit_builds(
    settings: Settings, store: Store, origin: Callable[..., Origin], tmp_path: Path
) -> None:
    repo = origin("app")
    repo.bulk(120)
    repo.commit("app", {"main.py": "print('hi')\n"})
    repo.push()
    store.add_project(Project(name="app", repo=repo.url, path=str(tmp_path / "live")))
    engine = engine_for(settings, store)
    project = store.get_project("app")
    engine.sync(project, Quiet())
    old = find(store.commits("app"), "#3")
    engine.ensure_release(project, old, Quiet())
    release = store.release("app", 3)
    assert release is not None and release.state == "ready" and release.sha == old.sha
    built = engine.release_path("app", 3, old.sha)
    assert (built / "history.txt").read_text() == "old 3\n"
