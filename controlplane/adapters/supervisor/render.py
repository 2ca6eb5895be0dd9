"""Packaged files: find the templates, render them strictly, write results atomically.

Templates live at the repository root in a source checkout (supervisord.conf.tmpl,
templates/) and under controlplane/_data/ in an installed wheel (pyproject force-includes
them there); resource_path() looks in the wheel location first.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.errors import ControlPlaneError
from controlplane.i18n import tr

if TYPE_CHECKING:
    import jinja2

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # controlplane/ (this is adapters/supervisor/)
SEARCH_DIRS = (PACKAGE_DIR / "_data", PACKAGE_DIR.parent)


class MissingFile(ControlPlaneError, FileNotFoundError):
    """A packaged file is not where the package puts it (a broken install)."""


class Unwritable(ControlPlaneError, ValueError):
    """A value that a supervisord config line cannot hold (a newline, a quote)."""


def resource_path(name: str) -> Path:
    """The packaged file `name` (e.g. 'templates/program.conf.j2'), wheel location first."""
    for base in SEARCH_DIRS:
        candidate = base / name
        if candidate.exists():
            return candidate
    searched = ", ".join(str(b) for b in SEARCH_DIRS)
    raise MissingFile(
        tr(
            "packaged file {name} not found in {folders}; reinstall controlplane",
            name=repr(name),
            folders=searched,
        )
    )


def percent_escape(value: object) -> str:
    """supervisord expands %(name)s in values, so a literal % is written %%."""
    return str(value).replace("%", "%%")


def shell_word(value: object) -> str:
    """One word of a supervisord `command=`, which is split like a shell would (shlex)."""
    return percent_escape(shlex.quote(str(value)))


def env_value(value: object) -> str:
    """A double-quoted value for `environment=`; supervisord's lexer has no escapes."""
    text = str(value)
    if any(c in text for c in "\"'\n\r\x00"):
        raise Unwritable(
            tr("{value} cannot be written into a supervisord environment= line", value=repr(text))
        )
    return '"' + percent_escape(text) + '"'


def config_value(value: object) -> str:
    """A single-line ini value (paths, names): no newlines, % escaped."""
    text = str(value)
    if any(c in text for c in "\n\r\x00"):
        raise Unwritable(
            tr("{value} cannot be written into a supervisord config line", value=repr(text))
        )
    return percent_escape(text)


def logfile_value(value: object) -> str:
    """A [program:…] *_logfile value: supervisord expands those twice, so % is %%%%."""
    return percent_escape(config_value(value))


def render(template: str, **context: Any) -> str:
    """Render the packaged file `template` with StrictUndefined and the escaping filters."""
    return compiled(template).render(**context)


@functools.cache
def compiled(template: str) -> jinja2.Template:
    """The packaged file `template`, compiled once per process: compiling took ~10 ms, paid
    by every rollback and restart that renders its program file to compare it."""
    import jinja2  # only the renderer needs it; run-slot never imports this module

    # ini files, not HTML: escaping is explicit, through the filters below
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701
    )
    env.filters.update(
        pct=percent_escape, cfg=config_value, log=logfile_value, word=shell_word, env=env_value
    )
    source = resource_path(template).read_text(encoding="utf-8")
    return env.from_string(source)
