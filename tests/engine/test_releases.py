"""The engine's plain decisions and its git side, without supervisord."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.links import FolderTaken, switch_link
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.domain.history import CommitRow, Release, find, number_new, parse_ref, to_prune
from controlplane.domain.models import Project
from controlplane.engine.buildwatch import FAILED_AT
from controlplane.engine.releases import BuildFailed, Engine, Quiet
from controlplane.errors import NotFound, ValidationError
from controlplane.i18n import Text, as_text
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings
from tests.support.fixtures_repos import Origin


def row(n: int, sha: str) -> CommitRow:
    return CommitRow(n, sha, 0.0, "a", f"c{n}")


def test_numbers_are_never_reused() -> None:
    known = [row(1, "a" * 40), row(2, "b" * 40)]
    fresh = number_new(known, [row(0, "b" * 40), row(0, "c" * 40), row(0, "c" * 40)])
    assert [(c.n, c.sha[0]) for c in fresh] == [(3, "c")]


def test_refs() -> None:
    commits = [row(1, "abcd" + "0" * 36), row(2, "abce" + "1" * 36), row(3, "ffff" + "2" * 36)]
    assert parse_ref("#7") == 7 and parse_ref("AbCd12") == "abcd12"
    assert find(commits, "2").n == 2 and find(commits, "ffff").n == 3
    with pytest.raises(ValidationError, match="SHA prefix of 4"):
        find(commits, "abc")  # 3 hex digits are refused outright
    with pytest.raises(ValidationError):
        find(commits, "x; rm -rf /")
    with pytest.raises(NotFound):
        find(commits, "9")


def test_ambiguous_prefix() -> None:
    commits = [row(1, "abcd" + "0" * 36), row(2, "abcd" + "1" * 36)]
    with pytest.raises(ValidationError, match="several commits"):
        find(commits, "abcd")


def test_prune_keeps_newest_live_and_last_good() -> None:
    releases = [Release(n=n, sha=str(n) * 40, state="ready") for n in range(1, 8)]
    releases.append(Release(n=8, sha="8" * 40, state="failed", size=10))
    gone = to_prune(releases, keep=2, protected=(2, None, 4))
    assert gone == [1, 3, 5, 8]


def test_link_switch_never_takes_someone_s_folder(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    link = tmp_path / "live"
    link.mkdir()  # empty: taken over
    switch_link(link, a)
    assert link.resolve() == a
    switch_link(link, b)
    assert link.resolve() == b and not list(tmp_path.glob(".live.switch-*"))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(FolderTaken, match="did not put there"):
        switch_link(theirs, a)
    assert (theirs / "notes.txt").read_text() == "mine"


def test_force_push_keeps_numbers_and_numbers_the_new_head(
    settings: Settings, store: Store, origin: Callable[..., Origin], tmp_path: Path
) -> None:
    repo = origin("app")
    shas = repo.commits(3)
    store.add_project(Project(name="app", repo=repo.url, path=str(tmp_path / "live")))
    engine = Engine(settings, store, Outbox(store), runner=SupervisorRunner(settings))
    project = store.get_project("app")
    assert engine.sync(project, Quiet()).n == 3
    repo.reset_hard(shas[0])
    rewritten = repo.commit("rewritten")
    repo.push(force=True)
    head = engine.sync(project, Quiet())
    assert (head.n, head.sha) == (4, rewritten)
    numbers = {c.n: c.sha for c in store.commits("app")}
    assert numbers == {1: shas[0], 2: shas[1], 3: shas[2], 4: rewritten}
    # the commits the force-push dropped are still exportable by number
    from controlplane.adapters import git

    dest = tmp_path / "export"
    git.export(engine.mirror("app"), numbers[3], dest)
    assert (dest / "change_3.txt").read_text() == "change 3"


class Steps:
    """An operation's steps as the engine reports them (Texts), kept to render later."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.steps: list[Text] = []

    def step(self, text: Text | str) -> None:
        self.steps.append(as_text(text))

    def log(self, line: str) -> None:
        pass


# the words of a failed build that are not ours to translate: names, commands, states
NOT_OURS = {"shop", "main", "venv", "pip", "requirements", "txt", "uv", "python", "controlplane"}


def english_words(text: str, sha: str) -> list[str]:
    text = re.sub(r"/\S+", "", text.replace(sha, ""))  # paths are not words
    text = re.sub(r"\b[A-Z][A-Z0-9_]*=\S*|`[^`]*`", "", text)  # nor settings, nor `names`
    words = re.findall(r"[A-Za-z]{2,}", text)
    return [w for w in words if w not in NOT_OURS]


def test_a_failed_build_is_told_in_russian_and_unchanged_in_english(
    settings: Settings, store: Store, origin: Callable[..., Origin], tmp_path: Path
) -> None:
    repo = origin("shop")
    repo.commit("v1", {"main.py": "print(1)\n", "requirements.txt": "no-such-package==1.0\n"})
    repo.push()
    (tmp_path / "uv.toml").write_text("no-index = true\n")
    store.add_project(Project(name="shop", repo=repo.url, path=str(tmp_path / "live")))
    store.set_env(
        "shop", "prod", {"PIP_NO_INDEX": "1", "UV_CONFIG_FILE": str(tmp_path / "uv.toml")}
    )
    outbox = Outbox(store)
    engine = Engine(settings, store, outbox, runner=SupervisorRunner(settings))
    project = store.get_project("shop")
    op = Steps()
    commit = engine.sync(project, op)
    with pytest.raises(BuildFailed) as failed:
        engine.ensure_release(project, commit, op)
    (event,) = [e for e in outbox.recent("shop") if e.kind == "build_failed"]
    assert re.fullmatch(r"shop: build of #1 failed: install: exited with status \d+", event.text)
    russian = event.message.render("ru")
    assert re.fullmatch(
        r"shop: сборка #1 не удалась: установка зависимостей: код выхода \d+", russian
    ), russian
    error = failed.value.text.render("ru")
    assert error.startswith(f"сборка #1 {commit.short} не удалась: ") and not english_words(
        error, commit.short
    ), error
    steps = [s.render("ru") for s in op.steps]
    assert steps[:2] == ["получение ветки main", f"сборка #1 {commit.short}"], steps
    assert any(s.startswith("установка зависимостей: ОШИБКА (") for s in steps), steps
    # the tool's own line naming what failed is shown as the tool wrote it
    ours = [s.render("ru") for s in op.steps if s.msgid != FAILED_AT]
    assert [w for s in ours for w in english_words(s, commit.short)] == [], "\n".join(steps)
    assert "что не удалось: error: No solution found when resolving dependencies" in steps
