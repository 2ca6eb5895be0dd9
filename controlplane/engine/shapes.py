"""What a commit declares: how its dependencies are installed and which Python it wants.

Pure decisions on the exported files (no subprocess): `detect_shape` reads the dependency
files, `python_request` reads `.python-version` or `[project].requires-python`, and
`satisfies` / `pick_python` choose among interpreters whose versions the build probed.

Shapes, first match wins:

- `uv.lock` (with a `pyproject.toml`), when uv installs: `uv sync --frozen` into the venv;
- `requirements.txt`: installed with `-r`;
- `pyproject.toml` with a `[build-system]`: a package, installed into the venv (which
  installs its dependencies);
- `pyproject.toml` without one: an application; its `[project].dependencies` are
  installed and nothing is built;
- none of these: nothing is installed, and the build says so.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, tr, verbatim

ShapeKind = Literal["uv.lock", "requirements.txt", "package", "application", "none"]
Version = tuple[int, ...]
SPEC_RE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>|===)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*$")
PIN_RE = re.compile(r"^(?:cpython[-@]?|python)?([0-9]+(?:\.[0-9]+){0,2})$", re.IGNORECASE)


class ShapeError(ControlPlaneError):
    """A dependency or version file this build cannot read (its message names it)."""


@dataclass(frozen=True)
class Shape:
    """How a commit's dependencies are installed; `dependencies` for an application."""

    kind: ShapeKind
    dependencies: tuple[str, ...] = ()
    note: Text | None = None  # a file present but not used, and why

    @property
    def label(self) -> Text:
        """What the install step names: 'requirements.txt', 'pyproject.toml (package)'."""
        labels = {
            "package": tr("pyproject.toml (package)"),
            "application": tr("pyproject.toml (dependencies only)"),
            "none": tr("no dependency file"),
        }
        if self.kind in labels:
            return labels[self.kind]
        return verbatim(self.kind)  # a file's name: uv.lock, requirements.txt


@dataclass(frozen=True)
class PythonRequest:
    """The Python a commit asks for: `spec` as written, from `source`."""

    source: str  # ".python-version" or "requires-python"
    spec: str

    def matches(self, version: Version) -> bool:
        if self.source == ".python-version":
            pin = _pin(self.spec)
            return version[: len(pin)] == pin
        return satisfies(version, self.spec)


def _pyproject(root: Path) -> dict[str, Any] | None:
    path = root / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ShapeError(tr("pyproject.toml cannot be read: {error}", error=str(exc))) from None


def detect_shape(root: Path, *, uv: bool) -> Shape:
    """The first shape in the module's order that this commit has (see the docstring)."""
    pyproject = _pyproject(root)
    lock = (root / "uv.lock").is_file() and pyproject is not None
    if lock and uv:
        return Shape("uv.lock")
    note = tr("uv.lock is read by uv only; pip installs from the other files") if lock else None
    if (root / "requirements.txt").is_file():
        return Shape("requirements.txt", note=note)
    if pyproject is None:
        return Shape("none")
    if "build-system" in pyproject:
        return Shape("package", note=note)
    deps = pyproject.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ShapeError(tr("pyproject.toml: [project].dependencies is not a list of strings"))
    return Shape("application", tuple(deps), note=note)


def python_request(root: Path) -> PythonRequest | None:
    """`.python-version` (its first line that is not a comment) or else `requires-python`."""
    pin = root / ".python-version"
    if pin.is_file():
        lines = [
            ln.strip() for ln in pin.read_text(encoding="utf-8", errors="replace").splitlines()
        ]
        first = next((ln for ln in lines if ln and not ln.startswith("#")), "")
        if first:
            _pin(first)  # refuse what cannot be read, naming it
            return PythonRequest(".python-version", first)
    pyproject = _pyproject(root)
    spec = (pyproject or {}).get("project", {}).get("requires-python")
    if isinstance(spec, str) and spec.strip():
        for part in spec.split(","):
            _spec(part)
        return PythonRequest("requires-python", spec.strip())
    return None


def _pin(text: str) -> Version:
    found = PIN_RE.match(text.strip())
    if found is None:
        raise ShapeError(
            tr(
                ".python-version asks for {pin}; only CPython versions such as 3.12 or "
                "3.12.4 can be picked",
                pin=text.strip()[:40],
            )
        )
    return _version(found.group(1))


def _version(text: str) -> Version:
    return tuple(int(p) for p in text.split("."))


def parse_version(text: str) -> Version:
    """'3.11.2' → (3, 11, 2); () for what is not a version ('?', '3.13.0rc1' → (3, 13))."""
    parts = []
    for part in text.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != part:
            break
    return tuple(parts)


def _spec(part: str) -> tuple[str, Version, bool]:
    found = SPEC_RE.match(part)
    if found is None:
        raise ShapeError(tr("requires-python cannot be read: {spec}", spec=part.strip()[:60]))
    return found.group(1), _version(found.group(2)), bool(found.group(3))


def _compare(version: Version, op: str, want: Version, wildcard: bool) -> bool:
    size = max(len(version), len(want))
    have = (version + (0,) * size)[:size]
    pad = (want + (0,) * size)[:size]
    if op in ("==", "===", "!="):
        same = version[: len(want)] == want if wildcard else have == pad
        return same if op != "!=" else not same
    if op == "~=":
        prefix = want[:-1] if len(want) > 1 else want
        return have >= pad and version[: len(prefix)] == prefix
    return {">=": have >= pad, "<=": have <= pad, ">": have > pad, "<": have < pad}[op]


def satisfies(version: Version, spec: str) -> bool:
    """Whether a Python version meets a requires-python string ('>=3.10,<3.13')."""
    return all(_compare(version, *_spec(p)) for p in spec.split(",") if p.strip())


def pick_python(
    request: PythonRequest, found: Iterable[tuple[Version, str]]
) -> tuple[str, Version] | None:
    """The newest interpreter that meets the request (its path and version), or None."""
    fitting = sorted((v, path) for v, path in found if request.matches(v))
    return (fitting[-1][1], fitting[-1][0]) if fitting else None


def candidate_paths(dirs: Iterable[Path]) -> list[str]:
    """`python3` and `python3.N` in each folder, each real file once, in folder order; a
    venv's folder is skipped (a release's venv is made from a real interpreter)."""
    seen: set[Path] = set()
    paths: list[str] = []
    for folder in dirs:
        if not folder.is_dir() or (folder.parent / "pyvenv.cfg").exists():
            continue
        names = sorted(
            p.name for p in folder.glob("python3*") if re.fullmatch(r"python3(\.\d+)?", p.name)
        )
        for name in names:
            path = folder / name
            try:
                real = path.resolve(strict=True)
            except OSError:
                continue
            if real not in seen and real.is_file():
                seen.add(real)
                paths.append(str(path))
    return paths


def version_text(version: Version) -> str:
    return ".".join(str(p) for p in version)
