"""Bytecode in a release: the app's dependencies are compiled at build time (a release is
not writable by the run-as user, so a module without its .pyc would be compiled again at
every start), their test suites are not, and, with uv, neither is pip, which the app never
imports (docs/releases.md, Bytecode). The pip installer's `python -m venv` seeds a compiled
pip, as it always did. With uv, a wheel is compiled once: its .pyc files are kept in uv's
cache and come with the next install. A project's UV_COMPILE_BYTECODE=0 turns compiling off.

Real builds from a local wheel folder holding a pip wheel, with either installer.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from controlplane.engine import build
from tests.engine.test_build import Project, offline_env
from tests.engine.test_build_shapes import INSTALLERS, bundled_pip, project

__all__ = ["project"]  # the fixture, used by name


def wheel_with_tests(folder: Path) -> Path:
    """A wheel `shoplib` 1.0 with a module, a subpackage and its test suite."""
    info = "shoplib-1.0.dist-info"
    files = {
        "shoplib/__init__.py": "from shoplib.core import answer\n",
        "shoplib/core.py": "def answer():\n    return 42\n",
        "shoplib/tests/__init__.py": "",
        "shoplib/tests/test_core.py": "def test_answer():\n    assert True\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: shoplib\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    lines = []
    for name, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        hashed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        lines.append(f"{name},sha256={hashed},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*lines, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "shoplib-1.0-py3-none-any.whl", "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    pip = bundled_pip()
    if pip is None:
        pytest.skip("no pip wheel on this machine")
    shutil.copy(pip, folder)
    return folder


def compiled(site: Path, folder: str) -> list[str]:
    return sorted(p.name.split(".")[0] for p in (site / folder).rglob("*.pyc"))


def build_it(project: Project, installer: build.Installer, **env: str) -> build.BuildResult:
    wheels = wheel_with_tests(project.tmp / "wheels")
    sha = project.commit({"requirements.txt": "shoplib==1.0\n"})
    result = project.build(sha, offline_env(project.tmp, wheels, **env), installer=installer)
    assert result.state == "ready", result.error
    return result


def built(project: Project, installer: build.Installer, **env: str) -> Path:
    result = build_it(project, installer, **env)
    [site] = (result.dest / ".venv").glob("lib/python*/site-packages")
    return site


def said(result: build.BuildResult) -> str:
    install = next(s for s in result.steps if s.name == "install")
    return next(line for line in install.tail_lines if line.startswith("Bytecode:"))


@pytest.mark.parametrize("installer", INSTALLERS)
def test_dependencies_are_compiled_but_not_their_tests_nor_pip(
    project: Project, installer: build.Installer
) -> None:
    site = built(project, installer)
    assert compiled(site, "shoplib") == ["__init__", "core"]
    if installer == "uv":
        assert compiled(site, "pip") == []


def test_a_project_can_turn_compiling_off(project: Project) -> None:
    site = built(project, "uv", UV_COMPILE_BYTECODE="0")
    assert compiled(site, "shoplib") == []


def test_a_wheel_is_compiled_once_and_its_bytecode_comes_from_uvs_cache(
    project: Project,
) -> None:
    first = build_it(project, "uv")
    assert said(first).startswith("Bytecode: 2 modules (0 compiled before")
    build.remove_release(first.dest)  # the next build makes its venv anew (no venv reuse)
    again = build_it(project, "uv")
    assert said(again).startswith("Bytecode: 2 modules (2 compiled before, from uv's cache; 0")
    [site] = (again.dest / ".venv").glob("lib/python*/site-packages")
    for pyc in (site / "shoplib").rglob("*.pyc"):
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b11, f"{pyc.name} is not a checked-hash .pyc"
    imported = subprocess.run(
        [str(again.python), "-c", "import shoplib; print(shoplib.answer())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout == "42\n"
