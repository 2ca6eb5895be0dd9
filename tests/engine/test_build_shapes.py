"""Real builds of each project shape, pip in every venv, and the Python a commit asks for.

Packages come from a local wheel folder (never the internet); the package shape builds
with a backend that lives in the repository (PEP 517 `backend-path`), so nothing but the
folder is needed. Interpreters: Debian's /usr/bin/python3 and, where this machine has
it, pyenv's 3.12 (root's: the builds here run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.engine import build, shapes
from controlplane.engine.buildenv import find_uv
from tests.engine.test_build import Project, offline_env
from tests.support.fixtures_repos import Origin

PY312 = Path("/root/.pyenv/versions/3.12.1/bin")
INSTALLERS = ["uv", "pip"]
DEBIAN_VERSION = subprocess.run(
    ["/usr/bin/python3", "-c", "import sys; print(*sys.version_info[:3], sep='.')"],
    capture_output=True,
    text=True,
    check=True,
).stdout.strip()

BACKEND = '''"""A PEP 517 backend that packs shopkit into a wheel (no index needed)."""
import base64, hashlib, os, zipfile

def _line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = "shopkit-0.1.dist-info"
    files = {
        "shopkit/__init__.py": open("shopkit/__init__.py", "rb").read(),
        info + "/METADATA": b"Metadata-Version: 2.1\\nName: shopkit\\nVersion: 0.1\\n"
        b"Requires-Dist: tinylib==1.0\\n",
        info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\n"
        b"Tag: py3-none-any\\n",
    }
    record = "\\n".join(_line(n, d) for n, d in files.items()) + f"\\n{info}/RECORD,,\\n"
    files[info + "/RECORD"] = record.encode()
    name = "shopkit-0.1-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        for path, data in files.items():
            whl.writestr(path, data)
    return name
'''
PACKAGE = {
    "pyproject.toml": (
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "shopkit"\nversion = "0.1"\ndependencies = ["tinylib==1.0"]\n'
    ),
    "backend.py": BACKEND,
    "shopkit/__init__.py": "import tinylib\nKIT = 'kit ' + tinylib.VERSION\n",
}
APPLICATION = {
    "pyproject.toml": (
        '[project]\nname = "shop"\nversion = "0.1"\nrequires-python = ">=3.9"\n'
        'dependencies = ["tinylib==1.0"]\n'
    ),
    "main.py": "import tinylib\n",
}


@pytest.fixture
def project(origin: Callable[..., Origin], tmp_path: Path) -> Project:
    return Project(origin(), tmp_path)


def bundled_pip() -> Path | None:
    """The pip wheel this machine's Python brings (Debian's, or ensurepip's own)."""
    found = glob.glob("/usr/share/python-wheels/pip-*.whl") + glob.glob(
        f"{sys.base_prefix}/lib/python3*/ensurepip/_bundled/pip-*.whl"
    )
    return Path(sorted(found)[-1]) if found else None


def run_in(result: build.BuildResult, code: str) -> str:
    done = subprocess.run(
        [str(result.python), "-c", code], capture_output=True, text=True, cwd="/", check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def installed(result: build.BuildResult) -> set[str]:
    names = run_in(
        result, "import importlib.metadata as m; print(*sorted(d.name for d in m.distributions()))"
    )
    return set(names.split())


@pytest.mark.parametrize("installer", INSTALLERS)
def test_every_venv_gets_the_latest_pip_of_the_index_and_names_it(
    project: Project, wheelhouse: Callable[..., Path], installer: build.Installer
) -> None:
    pip = bundled_pip()
    if pip is None:
        pytest.skip("no pip wheel on this machine")
    wheels = wheelhouse("tinylib", "1.0")
    shutil.copy(pip, wheels)
    sha = project.commit({"requirements.txt": "tinylib==1.0\n"})
    result = project.build(sha, offline_env(project.tmp, wheels), installer=installer)
    assert result.state == "ready", result.error
    step = next(s for s in result.steps if s.name == "pip upgrade")
    version = pip.name.split("-")[1]
    assert str(step.what) == f"pip {version}"
    assert str(step.summary).startswith(f"pip upgrade (pip {version}): ok")
    assert step.summary.render("ru").startswith(f"обновление pip (pip {version}): ок")
    pip_bin = result.dest / ".venv" / "bin" / "pip"
    shown = subprocess.run([str(pip_bin), "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.startswith(f"pip {version} ")


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize(
    ("files", "label", "kit"),
    [
        (APPLICATION, "pyproject.toml (dependencies only)", False),
        (PACKAGE, "pyproject.toml (package)", True),
    ],
    ids=["application", "package"],
)
def test_pyproject_shapes_install_what_they_declare(
    project: Project,
    wheelhouse: Callable[..., Path],
    installer: build.Installer,
    files: dict[str, str],
    label: str,
    kit: bool,
) -> None:
    wheels = wheelhouse("tinylib", "1.0")
    sha = project.commit(files)
    result = project.build(sha, offline_env(project.tmp, wheels), installer=installer)
    assert result.state == "ready", (result.error, result.steps[-1].tail_lines)
    step = result.steps[-1]
    assert step.name == "install" and str(step.what) == label
    assert str(step.summary).startswith(f"install ({label}): ok")
    names = installed(result)
    assert "tinylib" in names
    # an application is not built (its name is not installed); a package is
    assert ("shopkit" in names) == kit and "shop" not in names
    if kit:
        assert run_in(result, "import shopkit; print(shopkit.KIT)") == "kit 1.0"


def lock(project: Project, wheels: Path, files: dict[str, str]) -> dict[str, str]:
    """The files plus the uv.lock `uv lock` writes for them against the wheel folder."""
    folder = project.tmp / "locking"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    uv = find_uv()
    assert uv is not None
    env = {**os.environ, **offline_env(project.tmp, wheels), "UV_CACHE_DIR": str(folder / "c")}
    subprocess.run(
        [uv, "lock", "--python", "/usr/bin/python3"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return {**files, "uv.lock": (folder / "uv.lock").read_text()}


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_uv_lock_project_is_synced_frozen_by_uv(
    project: Project, wheelhouse: Callable[..., Path], installer: build.Installer
) -> None:
    wheels = wheelhouse("tinylib", "1.0")
    files = lock(project, wheels, APPLICATION)
    wheelhouse("tinylib", "2.0")  # newer than the lock: a frozen sync keeps 1.0
    sha = project.commit({**files, "requirements.txt": "tinylib==2.0\n"})
    result = project.build(sha, offline_env(project.tmp, wheels), installer=installer)
    assert result.state == "ready", (result.error, result.steps[-1].tail_lines)
    step = result.steps[-1]
    version = run_in(result, "import tinylib; print(tinylib.VERSION)")
    if installer == "uv":
        assert str(step.what) == "uv.lock" and version == "1.0"
        assert "pip" in installed(result)  # the sync kept the venv's pip
    else:  # pip cannot read uv.lock: it says so and takes requirements.txt
        assert str(step.what) == "requirements.txt" and version == "2.0"
        assert [str(d) for d in step.details] == [
            "uv.lock is read by uv only; pip installs from the other files"
        ]


def test_the_python_version_file_picks_the_interpreter(project: Project) -> None:
    if not (PY312 / "python3.12").is_file():
        pytest.skip("no second interpreter (pyenv 3.12) on this machine")
    base = {"PATH": f"{PY312}:/usr/bin:/bin"}
    sha = project.commit({".python-version": "3.12\n", "main.py": ""})
    result = project.build(sha, {}, base_env=base)
    assert result.state == "ready", result.error
    assert run_in(result, "import sys; print(*sys.version_info[:2])") == "3 12"
    step = next(s for s in result.steps if s.name == "python")
    assert str(step.what) == "3.12.1"
    assert str(step.details[0]).endswith(": .python-version asks for 3.12")
    # a commit asking for Debian's version: the default interpreter, no search
    older = project.build(
        project.commit({".python-version": "# pinned\n3.11\n"}), {}, base_env=base
    )
    assert older.state == "ready" and str(older.steps[2].what) == DEBIAN_VERSION
    assert run_in(older, "import sys; print(*sys.version_info[:2])") == "3 11"


def test_a_missing_python_fails_naming_what_was_asked_and_what_is_there(
    project: Project,
) -> None:
    sha = project.commit(
        {"pyproject.toml": '[project]\nname = "x"\nversion = "1"\nrequires-python = ">=3.99"\n'}
    )
    env = {"UV_PYTHON_DOWNLOADS": "never"}  # this box cannot download one anyway
    result = project.build(sha, env, base_env={"PATH": "/usr/bin:/bin"})
    assert result.state == "failed" and not result.dest.exists()
    step = result.steps[-1]
    assert step.name == "python"
    error = step.error or ""
    assert "asks for Python >=3.99 (requires-python)" in error
    assert f"{DEBIAN_VERSION} (/usr/bin/python3" in error
    assert "install it on the box, or change requires-python" in error
    ru = step.error_text.render("ru") if step.error_text else ""
    assert "Python >=3.99" in ru and "requires-python" in ru and "asks" not in ru


def test_uv_is_asked_to_fetch_a_missing_python_and_its_failure_is_shown(
    project: Project,
) -> None:
    sha = project.commit({".python-version": "3.6\n"})
    result = project.build(sha, {}, base_env={"PATH": "/usr/bin:/bin"})
    assert result.state == "failed"
    step = result.steps[-1]
    assert step.name == "python" and "uv could not fetch it" in (step.error or "")
    assert "3.6" in (step.error or "") and step.tail_lines  # uv's own words


def test_an_unreadable_version_request_fails_the_build_naming_it(project: Project) -> None:
    sha = project.commit({".python-version": "pypy3.10\n"})
    result = project.build(sha, {})
    assert result.state == "failed" and result.steps[-1].name == "python"
    assert "pypy3.10" in (result.steps[-1].error or "")


def test_requires_python_specifiers() -> None:
    assert shapes.satisfies((3, 11, 2), ">=3.10,<3.13")
    assert not shapes.satisfies((3, 13, 0), ">=3.10,<3.13")
    assert shapes.satisfies((3, 11, 2), "~=3.11")
    assert not shapes.satisfies((4, 0, 0), "~=3.11")
    assert shapes.satisfies((3, 11, 9), "==3.11.*") and not shapes.satisfies((3, 12), "==3.11.*")
    assert shapes.satisfies((3, 12, 1), "!=3.11.*")
    assert shapes.satisfies((3, 11, 0), "==3.11")
    with pytest.raises(shapes.ShapeError, match="cannot be read"):
        shapes.satisfies((3, 11), ">=three")
    found = [((3, 11, 2), "/usr/bin/python3"), ((3, 12, 1), "/opt/py312")]
    request = shapes.PythonRequest("requires-python", ">=3.10")
    assert shapes.pick_python(request, found) == ("/opt/py312", (3, 12, 1))
    pin = shapes.PythonRequest(".python-version", "3.11")
    assert shapes.pick_python(pin, found) == ("/usr/bin/python3", (3, 11, 2))
    assert shapes.pick_python(shapes.PythonRequest(".python-version", "3.9"), found) is None
