"""The wheel ships the templates: build it, install it into a fresh venv outside the source
tree, and render supervisord.conf and a program file with the installed package.

Dependencies come from the uv cache when it has them (exact pins and URLs exported from
uv.lock as pylock.toml, installed with --offline); otherwise uv resolves them from PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STEP_TIMEOUT = 180

RENDER = """
import json, sys
import controlplane
from controlplane.adapters.supervisor import client as supervisor
from controlplane.domain.models import Project
from controlplane.adapters.supervisor.render import resource_path
from controlplane.settings import Settings

settings = Settings.from_env({"CONTROLPLANE_DATA_DIR": sys.argv[1]})
project = Project(name="demo", repo="https://example.com/demo.git", path="/srv/demo")
print(json.dumps({
    "file": controlplane.__file__,
    "template": str(resource_path("templates/program.conf.j2")),
    "conf": supervisor.render_supervisord_conf(settings),
    "program": supervisor.render_program(settings, project, "prod"),
}))
"""


def find_uv() -> str | None:
    """The uv beside this interpreter (it is a dependency), else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def clean_env() -> dict[str, str]:
    """This environment minus whatever would point a child at the source tree or dev venv."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT")
    return {
        k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CONTROLPLANE_")
    }


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )


def must(argv: list[str], cwd: Path) -> str:
    done = run(argv, cwd)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def uv_cached_first(uv: str, args: list[str], cwd: Path) -> None:
    """`uv ARGS --offline` (the cache), and only when that cannot work, `uv ARGS` (PyPI)."""
    offline = run([uv, *args, "--offline"], cwd)
    if offline.returncode != 0:
        print(f"uv {args[0]} offline failed, using the network: {offline.stderr.strip()[-300:]}")
        must([uv, *args], cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the source tree with the freshly built wheel installed."""
    uv = find_uv()
    if uv is None:
        print("uv is neither beside the interpreter nor on PATH")
        pytest.skip("uv is not installed")
    tmp = tmp_path_factory.mktemp("packaging")
    uv_cached_first(uv, ["build", "--wheel", "--out-dir", str(tmp / "dist")], REPO)
    wheels = sorted((tmp / "dist").glob("controlplane-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp / "venv"
    must([uv, "venv", "--no-project", "--python", sys.executable, str(venv)], tmp)
    python = venv / "bin" / "python"
    lock = tmp / "pylock.toml"
    exported = run(
        [
            uv,
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--format",
            "pylock.toml",
            "-q",
            "-o",
            str(lock),
        ],
        REPO,
    )
    if exported.returncode == 0:
        uv_cached_first(uv, ["pip", "install", "--python", str(python), "-r", str(lock)], tmp)
    uv_cached_first(uv, ["pip", "install", "--python", str(python), str(wheels[0])], tmp)
    return venv


def test_wheel_holds_the_templates(installed: Path) -> None:
    data = next(installed.glob("lib/python*/site-packages/controlplane/_data"))
    assert (data / "supervisord.conf.tmpl").is_file()
    assert (data / "templates" / "program.conf.j2").is_file()


def test_installed_cli_answers_help_outside_the_repo(installed: Path, tmp_path: Path) -> None:
    out = must([str(installed / "bin" / "controlplane"), "--help"], tmp_path)
    assert "usage: controlplane" in out and "run-slot" in out
    out = must([str(installed / "bin" / "python"), "-m", "controlplane", "--help"], tmp_path)
    assert "usage: controlplane" in out


def test_installed_package_renders_both_configs(installed: Path, tmp_path: Path) -> None:
    python = installed / "bin" / "python"
    data_dir = tmp_path / "data"
    out = json.loads(must([str(python), "-c", RENDER, str(data_dir)], tmp_path))

    package = Path(out["file"]).resolve().parent
    assert package.is_relative_to(installed.resolve()), out["file"]
    assert not package.is_relative_to(REPO)
    assert Path(out["template"]).resolve().is_relative_to(package / "_data")

    conf = out["conf"]
    assert "[unix_http_server]" in conf and "[supervisord]" in conf
    assert str(data_dir / "supervisor" / "supervisor.sock") in conf
    program = out["program"]
    assert "[program:demo-prod]" in program and "[group:demo-prod]" in program
    command = next(line for line in program.splitlines() if line.startswith("command="))
    assert command.endswith("run-slot demo prod")
    assert str(python) in command and "-m controlplane" in command


def test_installed_package_speaks_russian_from_its_compiled_catalog(installed: Path) -> None:
    site = next(installed.glob("lib/python*/site-packages/controlplane"))
    messages = site / "i18n" / "locale" / "ru" / "LC_MESSAGES"
    assert (messages / "controlplane.mo").is_file()
    # no .po beside it: installed, the catalog is the compiled one, whatever the files' times
    assert not (messages / "controlplane.po").exists()
    assert not (site / "i18n" / "locale" / "controlplane.pot").exists()
    code = "from controlplane.i18n import tr; print(tr('cancelled').render('ru'))"
    assert must([str(installed / "bin" / "python"), "-c", code], installed).strip() == "отменено"
