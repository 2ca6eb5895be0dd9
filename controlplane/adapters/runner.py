"""The one way to run a subprocess: argv lists, a timeout, output captured, secrets hidden.

Every child gets its own process group so that a timeout or a cancel kills the whole tree
(pip spawns compilers, git spawns helpers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from controlplane.errors import CommandFailed, ControlPlaneError
from controlplane.i18n import tr

logger = logging.getLogger(__name__)

Redact = Callable[[str], str]


def _no_redact(text: str) -> str:
    return text


class Cancelled(CommandFailed):
    """The command was cancelled by a person before it finished."""


@dataclass(frozen=True)
class Result:
    """What a finished command left behind."""

    argv: list[str]
    returncode: int
    output: str
    seconds: float


def primary_group(user: str) -> str:
    """The user's primary group name (Debian's nobody is in nogroup, not nobody)."""
    import grp
    import pwd

    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        raise ControlPlaneError(
            tr("CONTROLPLANE_RUN_AS: there is no user {user} on this system", user=repr(user))
        ) from None


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _feed(proc: subprocess.Popen[bytes], text: str | None) -> None:
    """Write `text` to the child's standard input and close it (a secret stays off argv)."""
    if text is None or proc.stdin is None:
        return
    try:
        proc.stdin.write(text.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it stopped reading (or never started): its exit status says why


def _wait(
    proc: subprocess.Popen[bytes],
    reader: threading.Thread,
    deadline: float,
    cancel: threading.Event | None,
) -> tuple[bool, bool]:
    """Wait for the command to exit, or kill its group at the deadline or on `cancel`;
    returns (timed out, cancelled). The end of its output (`reader` done) wakes this at
    once, since a command closes it when it exits: Popen.wait(timeout) polls with growing
    sleeps instead, which made a 5 ms `git ls-remote` take 8-15 ms (the poller runs 1,000
    of them a round)."""
    while True:
        reader.join(timeout=0.1)
        if not reader.is_alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        if proc.poll() is not None:
            return False, False
        cancelled = cancel is not None and cancel.is_set()
        if cancelled or time.monotonic() > deadline:
            _kill_group(proc, grace=3.0)
            return not cancelled, cancelled


def run(
    argv: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    redact: Redact = _no_redact,
    log: IO[str] | None = None,
    cancel: threading.Event | None = None,
    check: bool = True,
    user: str | None = None,
    group: str | None = None,
    stdin_text: str | None = None,
) -> Result:
    """Run argv (never through a shell) and return its merged stdout and stderr.

    Output is redacted before it is logged, written to `log`, returned or raised.
    Raises CommandFailed on a non-zero exit (when `check`), on timeout, and Cancelled
    when `cancel` is set while the command runs.
    """
    args = [str(a) for a in argv]
    shown = [redact(a) for a in args]
    logger.debug("run %s in %s", shown, cwd)
    started = time.monotonic()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        user=user,
        group=(group or primary_group(user)) if user is not None else None,
        extra_groups=[] if user is not None else None,
    )
    _feed(proc, stdin_text)
    chunks: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = redact(raw.decode("utf-8", "replace"))
            chunks.append(line)
            if log is not None:
                log.write(line)
                log.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out, cancelled = _wait(proc, reader, started + timeout, cancel)
    reader.join(timeout=5.0)
    if proc.stdout is not None:
        proc.stdout.close()
    output = "".join(chunks)
    seconds = time.monotonic() - started
    if cancelled:
        raise Cancelled(argv=shown, cwd=str(cwd) if cwd else None, returncode=None, output=output)
    if timed_out:
        raise CommandFailed(
            argv=shown,
            cwd=str(cwd) if cwd else None,
            returncode=None,
            output=output,
            timed_out=True,
        )
    if check and proc.returncode != 0:
        raise CommandFailed(
            argv=shown, cwd=str(cwd) if cwd else None, returncode=proc.returncode, output=output
        )
    return Result(argv=shown, returncode=proc.returncode, output=output, seconds=seconds)
