"""The build's python step: the interpreter a commit asks for, found on the box or fetched.

A commit asks with `.python-version` or `[project].requires-python` (shapes.py). The
control plane's projects' interpreter (CONTROLPLANE_PYTHON) is used when it fits or when
nothing is asked; otherwise `python3` and `python3.N` on PATH, in /usr/local/bin and
/usr/bin and those uv fetched before are probed as the builder runs them, and the newest
that fits is used. When none fits, uv is asked to fetch one (where the box reaches the
download; UV_PYTHON_DOWNLOADS=never on the project forbids it); when that fails too, the
build fails naming what the commit asked for and what the box has.
"""

from __future__ import annotations

import os
from pathlib import Path

from controlplane.adapters import runner
from controlplane.engine import shapes
from controlplane.engine.buildsteps import Build, BuildError, Outcome
from controlplane.errors import CommandFailed
from controlplane.i18n import Text, join, tr, verbatim

VERSION_CHECK = "import sys; print(*sys.version_info[:3])"
# where interpreters are looked for, besides PATH and those uv fetched
SYSTEM_BINS = (Path("/usr/local/bin"), Path("/usr/bin"))


def _probe(b: Build, path: str) -> shapes.Version | None:
    """An interpreter's version as the builder runs it; None when it does not run."""
    try:
        out = runner.run([path, "-c", VERSION_CHECK], env=b.env, timeout=15, user=b.builder)
        return tuple(int(p) for p in out.output.split()[:3])
    except (CommandFailed, OSError, ValueError):
        return None


def _interpreters(b: Build) -> list[tuple[shapes.Version, str]]:
    path_dirs = [Path(p) for p in b.env.get("PATH", "").split(os.pathsep) if p]
    fetched = sorted((b.cache_dir / "python").glob("*/bin"))
    found = []
    for path in shapes.candidate_paths([*path_dirs, *SYSTEM_BINS, *fetched]):
        version = _probe(b, path)
        if version is not None:
            found.append((version, path))
    return found


def _fetch(b: Build, request: shapes.PythonRequest) -> str | None:
    """Ask uv to download the Python the commit wants (where the box reaches it); None
    without uv or when the project set UV_PYTHON_DOWNLOADS=never."""
    if b.uv is None or b.env.get("UV_PYTHON_DOWNLOADS", "").lower() == "never":
        return None
    want = request.spec.removeprefix("cpython-").removeprefix("cpython@")
    argv = [b.uv, "python", "install", want]
    return b.run(argv, b.timeouts.python, cwd=b.dest, extra_env={"UV_PYTHON_DOWNLOADS": "manual"})


def python(b: Build) -> Outcome:
    """The interpreter the commit asks for (`.python-version`, `requires-python`), found on
    the box or fetched by uv; the default one when it asks for none."""
    request = shapes.python_request(b.dest)
    if request is None:
        why = tr("the commit asks for no version (.python-version, requires-python)")
        return _outcome(b, why)
    asked = tr("{source} asks for {spec}", source=request.source, spec=request.spec)
    default = shapes.parse_version(b.python_version)
    if default and request.matches(default):
        return _outcome(b, asked)
    found = _interpreters(b)
    chosen = shapes.pick_python(request, found)
    fetched: str | None = None
    if chosen is None:
        try:
            fetched = _fetch(b, request)
        except CommandFailed as exc:
            fetched = exc.output or "?"
        found = _interpreters(b) if fetched is not None else found
        chosen = shapes.pick_python(request, found)
    if chosen is None:
        why = _missing_python(request, found, fetched is not None)
        raise BuildError(why, output=fetched or "")
    b.python, version = chosen
    b.python_version = shapes.version_text(version)
    return _outcome(b, asked, fetched or "")


def _outcome(b: Build, why: Text, output: str = "") -> Outcome:
    """The step names the version; its line says which interpreter and why."""
    line = tr("{python}: {why}", python=b.python, why=why)
    return Outcome(output=output, details=[line], what=verbatim(b.python_version))


def _missing_python(
    request: shapes.PythonRequest, found: list[tuple[shapes.Version, str]], tried: bool
) -> Text:
    """What the commit asked for and what the box has (and that uv tried, if it did)."""
    there = (
        join(f"{shapes.version_text(v)} ({p})" for v, p in sorted(found)) if found else tr("none")
    )
    if tried:
        return tr(
            "this commit asks for Python {spec} ({source}); this box has {found} and uv could "
            "not fetch it: install it on the box, or change {source}",
            spec=request.spec,
            source=request.source,
            found=there,
        )
    return tr(
        "this commit asks for Python {spec} ({source}); this box has {found}: install it "
        "on the box, or change {source}",
        spec=request.spec,
        source=request.source,
        found=there,
    )
