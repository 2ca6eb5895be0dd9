"""A new commit with unchanged requirements reuses a ready release's venv (venvreuse.py):
real builds with uv and pip from a local wheel folder, real venvs, real file systems."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.engine import build, preflightcache, venvreuse
from controlplane.engine.venvreuse import NotReusable
from controlplane.layout import release_in
from tests.engine.test_build import Project, offline_env
from tests.support.fixtures_repos import Origin

PY312 = Path("/root/.pyenv/versions/3.12.1/bin/python3.12")
APP = "import tinylib\nprint(open('VERSION').read().strip(), tinylib.VERSION)\n"


class Releases(Project):
    """Builds numbered releases of one project side by side, as the engine does."""

    def build_n(self, n: int, sha: str, env: dict[str, str], **kwargs: object) -> build.BuildResult:
        kwargs.setdefault("base_env", {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        kwargs.setdefault("python", "/usr/bin/python3")
        return build.build_release(
            dest=release_in(self.releases, n, sha),
            mirror=self.mirror,
            sha=sha,
            env=env,
            log_path=self.tmp / "logs" / f"app-{n}.log",
            cache_dir=self.tmp / "cache",
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
def releases(origin: Callable[..., Origin], tmp_path: Path) -> Releases:
    return Releases(origin(), tmp_path)


def step(result: build.BuildResult, name: str) -> build.StepResult:
    return next(s for s in result.steps if s.name == name)


def run(release: Path, *argv: str) -> str:
    done = subprocess.run(
        [str(release / ".venv" / "bin" / "python"), *argv],
        capture_output=True,
        text=True,
        cwd=release,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


WHERE = "def where():\n    return where.__code__.co_filename\n"


def files_naming(root: Path, needle: bytes) -> list[Path]:
    """Files under root holding `needle`, but bytecode: the path a .pyc holds is the one
    it was compiled at, which Python replaces with the source's on import."""
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p.suffix != ".pyc" and needle in p.read_bytes()
    ]


def reused(result: build.BuildResult) -> bool:
    return "reused from" in str(step(result, "venv").summary)


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_unchanged_requirements_reuse_the_venv_and_the_release_stands_alone(
    releases: Releases, wheelhouse: Callable[..., Path], installer: build.Installer
) -> None:
    env = offline_env(releases.tmp, wheelhouse("tinylib", "1.0", WHERE))
    files = {"main.py": APP, "VERSION": "one\n", "requirements.txt": "tinylib==1.0\n"}
    first = releases.build_n(1, releases.commit(files), env, installer=installer)
    assert first.state == "ready" and not reused(first)
    files.update({"VERSION": "two\n", "main.py": APP + "print('new code')\n"})
    second = releases.build_n(2, releases.commit(files), env, installer=installer)
    assert second.state == "ready", second.error

    venv = step(second, "venv")
    assert str(venv.summary).startswith("venv (reused from #1, same requirements): ok")
    assert venv.summary.render("ru").startswith("venv (взят из #1, те же зависимости): ок")
    for name in ("pip upgrade", "install"):
        assert str(step(second, name).summary).startswith(
            f"{build.step_label(name)}: not needed: the venv of #1 was reused"
        )
    assert run(second.dest, "main.py").splitlines() == ["two 1.0", "new code"]

    old_venv, new_venv = first.dest / ".venv", second.dest / ".venv"
    # site-packages shared; every file naming a release's path is its own, naming its own
    lib = next(new_venv.glob("lib/python3*/site-packages/tinylib/__init__.py"))
    twin = old_venv / lib.relative_to(new_venv)
    assert lib.stat().st_ino == twin.stat().st_ino
    assert files_naming(new_venv, os.fsencode(first.dest)) == []
    code_file = run(second.dest, "-c", "import tinylib; print(tinylib.where())")
    assert code_file == str(lib)  # tracebacks name the new release's files
    own = files_naming(new_venv, os.fsencode(second.dest))
    assert new_venv / "bin" / "pip" in own
    for path in own:
        assert path.stat().st_ino != (old_venv / path.relative_to(new_venv)).stat().st_ino
    assert (new_venv / "pyvenv.cfg").stat().st_ino != (old_venv / "pyvenv.cfg").stat().st_ino

    # the source release pruned: the new one keeps working, pip included
    build.remove_release(first.dest)
    assert run(second.dest, "main.py").splitlines() == ["two 1.0", "new code"]
    assert run(second.dest, "-m", "pip", "--version").startswith("pip ")
    shown = subprocess.run(
        [str(new_venv / "bin" / "pip"), "--version"], capture_output=True, text=True, check=True
    )
    assert str(new_venv) in shown.stdout


@pytest.mark.parametrize("change", ["requirements", "installer", "interpreter", "index"])
def test_a_changed_input_builds_the_venv_anew(
    releases: Releases, wheelhouse: Callable[..., Path], change: str
) -> None:
    if change == "interpreter" and not PY312.is_file():
        pytest.skip("no second interpreter on this machine")
    wheelhouse("tinylib", "2.0")
    env = offline_env(releases.tmp, wheelhouse("tinylib", "1.0"))
    files = {"main.py": APP, "VERSION": "one\n", "requirements.txt": "tinylib==1.0\n"}
    first = releases.build_n(1, releases.commit(files), env, installer="uv")
    assert first.state == "ready", first.error
    files["VERSION"] = "two\n"
    kwargs: dict[str, object] = {"installer": "uv"}
    if change == "requirements":
        files["requirements.txt"] = "tinylib==2.0\n"
    elif change == "installer":
        kwargs["installer"] = "pip"
    elif change == "interpreter":
        kwargs["python"] = str(PY312)
    else:
        env = {**env, "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}
    second = releases.build_n(2, releases.commit(files), env, **kwargs)
    assert second.state == "ready", second.error
    assert not reused(second) and step(second, "install").note is None
    want = "2.0" if change == "requirements" else "1.0"
    assert run(second.dest, "main.py") == f"two {want}"
    third = releases.build_n(3, releases.commit({**files, "VERSION": "three\n"}), env, **kwargs)
    assert str(step(third, "venv").summary).startswith("venv (reused from #2, same requirements)")


def test_a_venv_on_another_file_system_is_built_not_linked(
    releases: Releases, wheelhouse: Callable[..., Path]
) -> None:
    if os.stat("/dev/shm").st_dev == os.stat(tempfile.gettempdir()).st_dev:
        pytest.skip("/dev/shm is not another file system here")
    env = offline_env(releases.tmp, wheelhouse("tinylib", "1.0"))
    files = {"main.py": APP, "VERSION": "one\n", "requirements.txt": "tinylib==1.0\n"}
    first = releases.build_n(1, releases.commit(files), env)
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm")) / first.dest.name
    try:
        shutil.move(first.dest, elsewhere)
        first.dest.symlink_to(elsewhere)  # a release kept on another volume
        second = releases.build_n(2, releases.commit({**files, "VERSION": "two\n"}), env)
        assert second.state == "ready", second.error
        venv = step(second, "venv")
        assert not reused(second) and "could not be linked" in "\n".join(map(str, venv.details))
        assert step(second, "install").note is None
        assert run(second.dest, "main.py") == "two 1.0"
    finally:
        shutil.rmtree(elsewhere.parent, ignore_errors=True)


def test_a_project_installed_into_its_venv_is_never_reused(tmp_path: Path) -> None:
    def deps(files: dict[str, str]) -> object:
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        root.mkdir()
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        try:
            return venvreuse._dependencies(root, uv=True)
        except NotReusable:
            return None

    package = "[project]\nname='shop'\nversion='1'\n[build-system]\nrequires=[]\n"
    assert deps({"pyproject.toml": package}) is None
    assert deps({"pyproject.toml": package, "uv.lock": "version = 1\n"}) is None
    virtual = "[project]\nname='shop'\nversion='1'\ndependencies=['tinylib']\n"
    assert deps({"pyproject.toml": virtual, "uv.lock": "version = 1\n"}) is not None
    for local in ("-e .", ".", "./libs/kit", "libs/kit", "kit @ file:///srv/kit", "-f wheels/"):
        assert deps({"requirements.txt": f"tinylib==1.0\n{local}\n"}) is None, local
    fine = "tinylib==1.0  # pinned\n--index-url https://pypi.org/simple\n-r base.txt\n"
    found = deps({"requirements.txt": fine, "base.txt": "kit @ https://x.org/kit.whl\n"})
    assert isinstance(found, dict) and set(found["files"]) == {"requirements.txt", "base.txt"}
    outside = deps({"requirements.txt": "-r ../other.txt\n"})
    assert outside is None


def test_the_preflight_answer_is_remembered_only_while_nothing_it_checked_changed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data" / "releases"
    folder.mkdir(parents=True)
    key = preflightcache.key("/usr/bin/python3", None, folder, pip=False)
    assert preflightcache.recall(key) is None
    preflightcache.remember(key, "python 3.11.2 - releases folder reachable by this user")
    assert preflightcache.recall(key) == "python 3.11.2 - releases folder reachable by this user"
    assert preflightcache.key("/usr/bin/python3", None, folder, pip=False) == key
    assert preflightcache.key("/usr/bin/python3", None, folder, pip=True) != key
    assert preflightcache.key("/usr/bin/python3", "nobody", folder, pip=False) != key
    (tmp_path / "data").chmod(0o700)  # a folder above changed: checked again
    assert preflightcache.key("/usr/bin/python3", None, folder, pip=False) != key
    assert preflightcache.key("/no/such/python", None, folder, pip=False) is None
