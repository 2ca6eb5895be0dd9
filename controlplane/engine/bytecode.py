"""Bytecode of a release's dependencies, compiled at build time, once per wheel
(docs/releases.md, Bytecode).

A release belongs to root and is not writable by the run-as user, so a module without its
`.pyc` is compiled again at every start of the app (Python cannot write the cache beside
it). The install step therefore installs without compiling (uv's UV_COMPILE_BYTECODE=0,
pip's --no-compile) and then runs SCRIPT with the venv's interpreter, as the builder:

- it leaves out what an app does not import: pip (a tool for a person) and test suites
  (`tests/`, `test/`: 1,395 of the 2,411 modules of numpy + pandas);
- a module whose `.pyc` came with the install is not compiled again; the others are
  compiled on every core, as *checked-hash* `.pyc` files (valid for the source's bytes,
  whatever its file time: uv's copies get new times), and a file that does not compile
  (a template, Python 2 code) is left to compile on import, as pip and uv do;
- each new `.pyc` is copied into uv's cache, beside the module in the unpacked wheel
  (`archive-v0/…`, found by the package's `.dist-info` folder). uv installs a cached wheel
  by copying (or linking) its whole folder, so the next venv with that wheel, in any
  project, gets its `.pyc` files with it: each wheel is compiled once per data dir.

A project that sets UV_COMPILE_BYTECODE to 0 (or false, no, off) has nothing compiled; a
wheel whose `.pyc` files another build kept in uv's cache still brings them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.adapters import runner
from controlplane.layout import venv_python

if TYPE_CHECKING:
    from controlplane.engine.buildsteps import Build

OFF = ("0", "false", "no", "off")
# argv: site-packages, uv's cache folder (or ''); prints one line of counts
SCRIPT = r"""
import glob, os, py_compile, re, sys
from concurrent.futures import ProcessPoolExecutor
from importlib.util import cache_from_source

site, cache = sys.argv[1], sys.argv[2]
skip = re.compile(r"^(pip/|(.*/)?tests?/)")
mode = py_compile.PycInvalidationMode.CHECKED_HASH


def wanted(rel):
    return rel.endswith(".py") and not rel.startswith("..") and not skip.match(rel)


def compile_one(path):
    return py_compile.compile(path, invalidation_mode=mode, quiet=2) is not None


todo, had = [], 0
for here, dirs, files in os.walk(site):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for name in files:
        path = os.path.join(here, name)
        if wanted(os.path.relpath(path, site)):
            if os.path.exists(cache_from_source(path)):
                had += 1
            else:
                todo.append(path)
done = 0
if todo:
    with ProcessPoolExecutor() as pool:
        done = sum(pool.map(compile_one, todo, chunksize=8))


def keep(source, target):
    pyc, into = cache_from_source(source), cache_from_source(target)
    if not os.path.exists(pyc) or os.path.exists(into):
        return 0
    os.makedirs(os.path.dirname(into), exist_ok=True)
    with open(pyc, "rb") as src, open(into + ".tmp%d" % os.getpid(), "wb") as out:
        out.write(src.read())
    os.replace(into + ".tmp%d" % os.getpid(), into)
    return 1


kept = 0
for info in glob.glob(os.path.join(site, "*.dist-info")) if cache and done else []:
    name = os.path.basename(info)
    homes = glob.glob(os.path.join(glob.escape(cache), "archive-v*", "*", name))
    try:
        with open(os.path.join(info, "RECORD"), encoding="utf-8") as fh:
            rels = [line.split(",")[0] for line in fh if wanted(line.split(",")[0])]
    except OSError:
        continue
    for home in homes:
        root = os.path.dirname(home)
        for rel in rels:
            if os.path.isfile(os.path.join(root, rel)):
                try:
                    kept += keep(os.path.join(site, rel), os.path.join(root, rel))
                except OSError:
                    pass
print(f"Bytecode: {had + done} modules ({had} compiled before, from uv's cache; {done} "
      f"compiled now, {kept} kept in the cache); pip and test suites left out")
"""


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the build compiles (the project's UV_COMPILE_BYTECODE may turn it off)."""
    return env.get("UV_COMPILE_BYTECODE", "1").strip().lower() not in OFF


def site_packages(venv: Path) -> Path | None:
    """The venv's site-packages folder (None when it has not exactly one)."""
    found = sorted(venv.glob("lib/python*/site-packages"))
    return found[0] if len(found) == 1 else None


def compile_venv(b: Build) -> str:
    """Compile the release's dependencies (SCRIPT) as the builder; its output ('' when the
    project turned compiling off or the venv has no site-packages)."""
    site = site_packages(b.dest / ".venv")
    if site is None or not wanted(b.env):
        return ""
    cache = b.env.get("UV_CACHE_DIR", "") if b.uv else ""
    python = str(venv_python(b.dest))
    b.log.write(f"$ {python} - <compile bytecode> {site} {cache}\n")
    b.log.flush()
    return runner.run(
        [python, "-", str(site), cache],
        cwd=b.dest,
        env=b.env,
        timeout=b.timeouts.install,
        redact=b.redact,
        log=b.out,
        cancel=b.cancel,
        user=b.builder,
        stdin_text=SCRIPT,
    ).output
