"""A new release takes a ready release's venv when its dependencies did not change.

A commit's *dependency fingerprint* is a hash of everything that decides what its venv
holds: the shape (shapes.py) and the bytes of its dependency files (requirements.txt and
the files it includes with -r/-c; uv.lock with the dependency tables of pyproject.toml;
an application's `[project].dependencies`), the installer (uv, the uv binary itself, or
pip), the interpreter (its real path, version and file) and the index settings the build
sees (`PIP_*`, `UV_*`, the config files they name). `finish` keeps it in the release's
ready marker. When a ready release of the same project has the same fingerprint, the venv
step makes the new venv a hard-linked copy of that release's venv, and the pip upgrade and
install steps have nothing to do.

Releases stay immutable: every directory of the copy is new; every file outside lib/
(bin/ scripts, activate, pyvenv.cfg) is written as a new file, with the new release's
path for the old one, and so is a .pth, .egg-link or direct_url.json that names it; a
symlink is made anew; every other file (site-packages) is a hard link, which Python and
the installers only ever replace (a .pyc is written beside and renamed; pip and uv remove
a file and write a new one), never write into. A .pyc keeps the path it was compiled at,
which Python replaces with its source's on import. Deleting the source release (prune)
leaves the links working.

No commit whose venv holds the commit itself is a candidate (its fingerprint is None): a
package (`[build-system]`), a uv project that is built, a requirements line naming a local
path (`-e .`, `./lib`, `file:`, a local `--find-links`). A copy that fails (another file
system: EXDEV; a binary holding the old path) is removed and the build creates the venv
and installs as usual, saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from controlplane.engine import buildsteps, shapes
from controlplane.engine.buildsteps import Build, Outcome, Skipped
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, ntr, tr
from controlplane.layout import READY_SUFFIX

FORMAT = 1  # bump when what goes into the fingerprint changes: old releases stop matching
INCLUDES = ("-r", "--requirement", "-c", "--constraint")
LOCAL_OPTIONS = ("-e", "--editable", "-f", "--find-links")
# files that may hold the venv's absolute path; everything else is linked
REWRITTEN_SUFFIXES = (".pth", ".egg-link")
REWRITTEN_NAMES = ("direct_url.json",)
SETTINGS_FILES = ("UV_CONFIG_FILE", "PIP_CONFIG_FILE")


class NotReusable(Exception):
    """The commit's venv cannot come from another release (the message says why, English)."""


# -- the fingerprint ------------------------------------------------------------------------


def fingerprint(b: Build) -> str | None:
    """The commit's dependency fingerprint, or None when its venv must be built (it holds
    the commit itself, or a dependency file cannot be read)."""
    try:
        parts = {
            "format": FORMAT,
            "deps": _dependencies(b.dest, uv=bool(b.uv)),
            "installer": _installer(b),
            "python": _python(b),
            "settings": _settings(b.env),
        }
    except (NotReusable, ControlPlaneError, OSError, ValueError):
        return None
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _dependencies(root: Path, *, uv: bool) -> dict[str, Any]:
    shape = shapes.detect_shape(root, uv=uv)
    if shape.kind == "package":
        raise NotReusable("the project itself is installed")
    if shape.kind == "requirements.txt":
        return {"shape": shape.kind, "files": requirement_files(root, root / "requirements.txt")}
    if shape.kind == "application":
        return {"shape": shape.kind, "dependencies": list(shape.dependencies)}
    if shape.kind == "uv.lock":
        return {"shape": shape.kind, **_uv_project(root)}
    return {"shape": shape.kind}


def _uv_project(root: Path) -> dict[str, Any]:
    """uv.lock and the tables of pyproject.toml `uv sync` reads; a project uv builds and
    installs into the venv is not reusable."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    tool_uv = pyproject.get("tool", {}).get("uv", {})
    if "build-system" in pyproject or tool_uv.get("package") is True:
        raise NotReusable("uv installs the project itself")
    project = pyproject.get("project", {})
    return {
        "lock": hashlib.sha256((root / "uv.lock").read_bytes()).hexdigest(),
        "project": {k: project.get(k) for k in ("dependencies", "optional-dependencies")},
        "groups": pyproject.get("dependency-groups"),
        "tool.uv": tool_uv,
    }


def requirement_files(root: Path, path: Path, depth: int = 0) -> dict[str, str]:
    """The hashes of a requirements file and of the files it includes (-r, -c), by path
    relative to the commit; NotReusable when a line names a local path (its contents are
    the commit's own, which a copied venv would not have)."""
    if depth > 10 or not path.resolve().is_relative_to(root.resolve()):
        raise NotReusable(f"{path} is outside the commit")
    data = path.read_bytes()
    found = {str(path.relative_to(root)): hashlib.sha256(data).hexdigest()}
    for raw in data.decode("utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip().rstrip("\\").strip()
        if not line:
            continue
        words = [line]
        if line.startswith("-"):
            attached = re.match(r"^(-[rcef])([^\s-]\S*)", line)
            words = list(attached.groups()) if attached else line.replace("=", " ", 1).split()
        if words[0] in INCLUDES and len(words) > 1:
            found.update(requirement_files(root, path.parent / words[1], depth + 1))
        elif words[0] in LOCAL_OPTIONS or words[0].startswith(("-e", "-f")):
            if words[0].startswith(("-e", "--editable")) or "://" not in line:
                raise NotReusable(f"local path in {path.name}: {line}")
        elif not line.startswith("-") and _is_local(line):
            raise NotReusable(f"local path in {path.name}: {line}")
    return found


def _is_local(requirement: str) -> bool:
    """'./lib', '/opt/x', 'libs/foo', 'pkg @ file:///…' name files; 'pkg==1', 'pkg @
    https://…', 'git+https://…' do not."""
    if requirement.startswith((".", "/", "~")) or "file:" in requirement:
        return True
    return "/" in requirement.split(";")[0] and "://" not in requirement


def _installer(b: Build) -> dict[str, Any]:
    if b.uv is None:
        return {"name": "pip", "builder": b.builder}
    st = os.stat(b.uv)
    return {"name": "uv", "binary": [st.st_size, st.st_mtime_ns], "builder": b.builder}


def _python(b: Build) -> dict[str, Any]:
    real = os.path.realpath(b.python)
    st = os.stat(real)
    return {"path": real, "version": b.python_version, "file": [st.st_size, st.st_mtime_ns]}


def _settings(env: dict[str, str]) -> dict[str, str]:
    """The index settings the installers read (PIP_*, UV_*, and the files named)."""
    taken = {k: v for k, v in env.items() if k.startswith(("PIP_", "UV_"))}
    for name in SETTINGS_FILES:
        if env.get(name) and Path(env[name]).is_file():
            taken[name + ":content"] = hashlib.sha256(Path(env[name]).read_bytes()).hexdigest()
    return taken


# -- the source release ---------------------------------------------------------------------


def find_source(dest: Path, deps: str) -> Path | None:
    """The newest ready release beside `dest` whose marker holds the same fingerprint."""
    best: tuple[float, Path] | None = None
    for marker in dest.parent.glob("*" + READY_SUFFIX):
        release = marker.with_name(marker.name.removesuffix(READY_SUFFIX))
        if release == dest or not (release / ".venv" / "pyvenv.cfg").is_file():
            continue
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("deps") == deps:
            built = float(info.get("built", 0))
            if best is None or built > best[0]:
                best = (built, release)
    return None if best is None else best[1]


def release_number(release: Path) -> str:
    """'12' for releases/12-abc1234."""
    return release.name.split("-", 1)[0]


# -- the copy -------------------------------------------------------------------------------


def link_copy(source: Path, dest: Path) -> int:
    """`source`/.venv as `dest`/.venv: new folders, new files for those that name the
    source's path (with dest's path instead), hard links for the rest; returns how many
    files are linked. Raises OSError (EXDEV across file systems) having removed the copy."""
    old, new = os.fsencode(source), os.fsencode(dest)
    try:
        return _copy_dir(source / ".venv", dest / ".venv", old, new, every=True)
    except OSError:
        shutil.rmtree(dest / ".venv", ignore_errors=True)
        raise


def _copy_dir(src: Path, dst: Path, old: bytes, new: bytes, *, every: bool) -> int:
    """Copy one folder; `every` (outside lib/): each file is written anew, else only those
    that may name the path (.pth, .egg-link, direct_url.json) are, when they do."""
    os.mkdir(dst)
    linked = 0
    with os.scandir(src) as entries:
        for entry in entries:
            target = dst / entry.name
            if entry.is_symlink():
                link = os.fsencode(os.readlink(entry.path)).replace(old, new)
                os.symlink(os.fsdecode(link), target)
            elif entry.is_dir(follow_symlinks=False):
                inside = every and src.name == ".venv" and entry.name in ("lib", "lib64")
                linked += _copy_dir(Path(entry.path), target, old, new, every=every and not inside)
            elif (every or _may_name_path(entry.name)) and _write_new(
                entry, target, old, new, every
            ):
                continue
            else:
                os.link(entry.path, target)
                linked += 1
    shutil.copymode(src, dst)
    return linked


def _may_name_path(name: str) -> bool:
    return name.endswith(REWRITTEN_SUFFIXES) or name in REWRITTEN_NAMES


def _write_new(entry: os.DirEntry[str], target: Path, old: bytes, new: bytes, always: bool) -> bool:
    """Write `target` as a new file, with `new` for `old`: always, or when the file names
    the source's path; False (nothing written) otherwise. A binary that names the path
    cannot be rewritten: OSError, so the build installs instead."""
    with open(entry.path, "rb") as fh:
        data = fh.read()
    named = old in data
    if not (named or always):
        return False
    if named and b"\0" in data[:8192]:
        raise OSError(f"{entry.path} is a binary that holds its release's path")
    with open(target, "xb") as out:
        out.write(data.replace(old, new) if named else data)
    shutil.copymode(entry.path, target)
    return True


# -- the steps ------------------------------------------------------------------------------


def venv(b: Build) -> str | Outcome:
    """A hard-linked copy of a ready release's venv when the fingerprints match; the
    usual venv otherwise (the reason it was not reused, when a copy failed, is a line)."""
    b.deps = fingerprint(b)
    source = None if b.deps is None else find_source(b.dest, b.deps)
    if source is None:
        return buildsteps.venv(b)
    n = release_number(source)
    b.log.write(f"same dependency fingerprint as {source.name}: copying its venv\n")
    try:
        linked = link_copy(source, b.dest)
    except OSError as exc:
        b.log.write(f"the copy failed ({exc}): creating the venv\n")
        out = buildsteps.venv(b)
        why = tr("the venv of #{n} could not be linked ({error}): built anew", n=n, error=str(exc))
        return Outcome(output=out, details=[why])
    b.reused_from = n
    details: list[Text] = [
        ntr(
            "{n} file linked from #{release}, scripts rewritten for this release",
            "{n} files linked from #{release}, scripts rewritten for this release",
            linked,
            release=n,
        )
    ]
    return Outcome(details=details, what=tr("reused from #{n}, same requirements", n=n))


def pip_upgrade(b: Build) -> str | Outcome:
    """Nothing to do in a reused venv (it has the source release's pip)."""
    if b.reused_from is not None:
        raise Skipped(tr("not needed: the venv of #{n} was reused", n=b.reused_from))
    return buildsteps.pip_upgrade(b)


def install(b: Build) -> str | Outcome:
    """Nothing to do in a reused venv (it has the same requirements installed)."""
    if b.reused_from is not None:
        raise Skipped(tr("not needed: the venv of #{n} was reused", n=b.reused_from))
    return buildsteps.install(b)
