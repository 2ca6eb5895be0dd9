"""supervisord: the box's config, one program config per slot, and an XML-RPC client.

Program configs hold no secret (run-slot decrypts at exec time). A rendered program file
is parsed with supervisor's own config code before it lands in conf.d, because one bad
file makes `reloadConfig` fail for every program. `Supervisor.apply()` does what
`supervisorctl update` does, touching only our groups (NAME-prod, NAME-test), never the
control plane or the event listener. A `Supervisor` is a context manager that closes its
connection; faults are checked by supervisor's own `Faults` names. The slot-level
operations the engine uses are runner.py (the Runner protocol's supervisord side).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import secrets
import shutil
import socket
import sys
import time
import xmlrpc.client
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from controlplane.adapters.files import write_atomic
from controlplane.adapters.supervisor.confread import mark_read
from controlplane.adapters.supervisor.render import render
from controlplane.adapters.supervisor.rpcext import FIELDS
from controlplane.domain.models import Project
from controlplane.domain.runner import ProcessInfo as ProcessInfo
from controlplane.domain.runner import ProcessState
from controlplane.domain.runner import is_ours as is_ours
from controlplane.domain.runner import parse_program as parse_program
from controlplane.domain.runner import program_name as program_name
from controlplane.errors import ControlPlaneError, SupervisorError
from controlplane.i18n import N_, Text, join, tr
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

USERNAME = "controlplane"
NOT_RUNNING_MESSAGE = N_("supervisord is not running; start it with `controlplane up`")


@dataclass(frozen=True)
class ProgramOptions:
    """The knobs of one slot's [program:…] section (defaults suit a long-running app)."""

    autostart: bool = True
    # An app must stay up this long to count as started; a faster exit is a failed start
    # (BACKOFF, then FATAL after startretries) instead of an endless tight restart loop.
    startsecs: int = 1
    startretries: int = 3
    stopwaitsecs: int = 10
    # None: the settings' limits for app logs (CONTROLPLANE_APP_LOG_SIZE, …_BACKUPS)
    log_maxbytes: str | None = None
    log_backups: int | None = None


# -- names (program_name, parse_program, is_ours: controlplane.domain.runner) ---------------


def slot_logs(settings: Settings, name: str, slot: str) -> tuple[Path, Path]:
    """The slot's stdout and stderr log files."""
    return settings.layout.program_logs(program_name(name, slot))


def cli_argv() -> list[str]:
    """How supervisord calls us: this interpreter, by absolute path, running the package."""
    return [sys.executable, "-m", "controlplane"]


# -- the box's supervisord.conf ------------------------------------------------------------


def ensure_dirs(settings: Settings) -> None:
    """supervisor/ is root's alone (socket, auth); logs/ is not for the apps to read."""
    for path, mode in (
        (settings.supervisor_dir, 0o700),
        (settings.confd, 0o700),
        (settings.logs_dir, 0o750),
    ):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)


def ensure_auth(settings: Settings) -> tuple[str, str]:
    """The RPC username and password, generated once into supervisor/auth (0600)."""
    path = settings.supervisor_auth
    try:
        user, _, password = path.read_text(encoding="utf-8").strip().partition(":")
        if user and password:
            return user, password
    except FileNotFoundError:
        pass
    ensure_dirs(settings)
    password = secrets.token_urlsafe(24)
    write_atomic(path, f"{USERNAME}:{password}\n", mode=0o600)
    return USERNAME, password


def render_supervisord_conf(
    settings: Settings, *, serve: bool = True, cli: Sequence[str] | None = None
) -> str:
    """The text of $DATA/supervisord.conf (pure apart from reading the auth file)."""
    username, password = ensure_auth(settings)
    return render(
        "supervisord.conf.tmpl",
        sock=settings.supervisor_sock,
        username=username,
        password=password,
        logs_dir=settings.logs_dir,
        supervisord_log=settings.layout.supervisord_log,
        pidfile=settings.layout.supervisord_pid,
        serve_log=settings.layout.serve_log,
        events_err_log=settings.layout.events_err_log,
        log_maxbytes=settings.own_logs.size,
        log_backups=settings.own_logs.backups,
        data_dir=settings.data_dir,
        confd=settings.confd,
        cli=list(cli) if cli is not None else cli_argv(),
        serve=serve,
        # our XML-RPC extension, only where supervisord can import this package
        rpcext=own_supervisord(),
        # says out loud that root is meant (apps drop to CONTROLPLANE_RUN_AS in run-slot)
        user="root" if os.geteuid() == 0 else None,
    )


def write_supervisord_conf(
    settings: Settings, *, serve: bool = True, cli: Sequence[str] | None = None
) -> Path:
    """Render and write $DATA/supervisord.conf (0600: it holds the RPC password)."""
    ensure_dirs(settings)
    text = render_supervisord_conf(settings, serve=serve, cli=cli)
    return write_atomic(settings.supervisord_conf, text, mode=0o600)


def find_supervisord() -> str:
    """The supervisord beside this interpreter (same venv) first, then on PATH."""
    beside = Path(sys.executable).parent / "supervisord"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("supervisord")
    if found is None:
        raise SupervisorError(
            tr("supervisord not found beside python or on PATH; install the supervisor package")
        )
    return found


def own_supervisord() -> bool:
    """Whether the supervisord that `up` starts runs from this interpreter's environment
    (beside it), and so can import controlplane's XML-RPC extension (rpcext.py)."""
    try:
        return Path(find_supervisord()) == Path(sys.executable).parent / "supervisord"
    except SupervisorError:
        return False


def running_supervisord(settings: Settings) -> int | None:
    """The pid of a supervisord already serving this data dir (its socket answers; 0 when
    its pidfile is gone), or None when none is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        sock.connect(str(settings.supervisor_sock))
    except OSError:
        return None  # no socket, or a stale one left by a killed supervisord
    finally:
        sock.close()
    try:
        return int(settings.layout.supervisord_pid.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0


def already_running(settings: Settings, pid: int) -> Text:
    """What `up` says when this data dir's supervisord runs already, and how to stop it."""
    conf = str(settings.supervisord_conf)
    if pid:
        return tr(
            "supervisord is already running for {data} (pid {pid}); stop it with "
            "`supervisorctl -c {conf} shutdown` (or `kill {pid}`): it stops the apps and "
            "the control plane, then exits; then run `controlplane up` again",
            data=str(settings.data_dir),
            pid=pid,
            conf=conf,
        )
    return tr(
        "supervisord is already running for {data}; stop it with "
        "`supervisorctl -c {conf} shutdown`: it stops the apps and the control plane, then "
        "exits; then run `controlplane up` again",
        data=str(settings.data_dir),
        conf=conf,
    )


def exec_supervisord(settings: Settings) -> NoReturn:
    """Replace this process with `supervisord -n -c $DATA/supervisord.conf`."""
    from controlplane.adapters.slotcgroup import remove_empty

    binary = find_supervisord()
    conf = str(settings.supervisord_conf)
    remove_empty(settings.data_dir)  # slot cgroups a previous run left behind, if empty
    os.execv(binary, [binary, "-n", "-c", conf])  # noqa: S606 - argv list, no shell


# -- one program file per slot -------------------------------------------------------------


def render_program(
    settings: Settings,
    project: Project,
    slot: str,
    *,
    options: ProgramOptions | None = None,
    cli: Sequence[str] | None = None,
) -> str:
    """The conf.d file of one slot: its own group, run-slot as the command, no secrets."""
    opts = options or ProgramOptions()
    out_log, err_log = slot_logs(settings, project.name, slot)
    return render(
        "templates/program.conf.j2",
        program=program_name(project.name, slot),
        name=project.name,
        slot=slot,
        cli=list(cli) if cli is not None else cli_argv(),
        data_dir=settings.data_dir,
        out_log=out_log,
        err_log=err_log,
        autostart=opts.autostart,
        startsecs=opts.startsecs,
        startretries=opts.startretries,
        stopwaitsecs=opts.stopwaitsecs,
        log_maxbytes=opts.log_maxbytes or str(settings.app_logs.size),
        log_backups=settings.app_logs.backups if opts.log_backups is None else opts.log_backups,
    )


def check_program(text: str, program: str, here: Path) -> None:
    """Parse a program file as supervisord would; raise SupervisorError if it would fail."""
    from supervisor.options import ServerOptions, UnhosedConfigParser

    options = ServerOptions()
    options.here = str(here)
    parser = UnhosedConfigParser()
    parser.expansions = {f"ENV_{k}": v for k, v in os.environ.items()}
    try:
        parser.read_string(text)
        groups = options.process_groups_from_parser(parser)
    except Exception as exc:  # supervisor raises ValueError and configparser errors
        raise SupervisorError(
            tr(
                "program config for {program} is invalid: {reason}",
                program=program,
                reason=str(exc),
            )
        ) from exc
    names = [(g.name, [p.name for p in g.process_configs]) for g in groups]
    if names != [(program, [program])]:
        raise SupervisorError(
            tr(
                "program config for {program} defines {names}, not {program}",
                program=program,
                names=str(names),
            )
        )


def program_path(settings: Settings, name: str, slot: str) -> Path:
    return settings.layout.program_conf(program_name(name, slot))


def write_program(
    settings: Settings,
    project: Project,
    slot: str,
    *,
    options: ProgramOptions | None = None,
    cli: Sequence[str] | None = None,
) -> bool:
    """Render, check and write a slot's conf.d file; True when its content changed (an
    unchanged file is neither checked nor written)."""
    program = program_name(project.name, slot)
    try:
        text = render_program(settings, project, slot, options=options, cli=cli)
    except ValueError as exc:
        reason = exc.text if isinstance(exc, ControlPlaneError) else str(exc)
        raise SupervisorError(
            tr(
                "cannot write the program config for {program}: {reason}",
                program=program,
                reason=reason,
            )
        ) from exc
    path = program_path(settings, project.name, slot)
    try:  # the same text was checked when it was written: serve's start with 1,000
        if path.read_text(encoding="utf-8") == text:  # programs skips 1,000 parses
            return False
    except FileNotFoundError:
        pass
    ensure_dirs(settings)
    check_program(text, program, settings.confd)
    write_atomic(path, text, mode=0o600)
    logger.info("wrote %s", path)
    return True


def remove_program(settings: Settings, name: str, slot: str) -> bool:
    """Delete a slot's conf.d file; True when there was one. apply() then stops it."""
    path = program_path(settings, name, slot)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    logger.info("removed %s", path)
    return True


def stale_programs(present: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """Our program names with a conf.d file that the store no longer wants (pure)."""
    keep = set(wanted)
    return sorted(p for p in present if is_ours(p) and p not in keep)


def confd_programs(settings: Settings) -> list[str]:
    """Program names that have a file in conf.d."""
    if not settings.confd.is_dir():
        return []
    return sorted(p.stem for p in settings.confd.glob("*.conf"))


# -- the update plan (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class UpdatePlan:
    """What apply() does with reloadConfig's answer: only our groups, sorted."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def plan_update(added: Iterable[str], changed: Iterable[str], removed: Iterable[str]) -> UpdatePlan:
    """Keep the groups that are project slots; leave `controlplane` and listeners alone."""
    return UpdatePlan(
        added=sorted(g for g in added if is_ours(g)),
        changed=sorted(g for g in changed if is_ours(g)),
        removed=sorted(g for g in removed if is_ours(g)),
    )


def process_rows(text: str) -> list[ProcessInfo]:
    """controlplane.allProcessInfo's answer (rpcext.py) as plain data."""
    return [process_info(dict(zip(FIELDS, row, strict=True))) for row in json.loads(text)]


def process_info(data: dict[str, Any]) -> ProcessInfo:
    """getProcessInfo's answer as plain data."""
    return ProcessInfo(
        name=str(data["name"]),
        group=str(data["group"]),
        state=ProcessState(data["statename"]),
        pid=int(data["pid"]),
        start=float(data["start"]),
        stop=float(data["stop"]),
        now=float(data["now"]),
        exitstatus=int(data["exitstatus"]),
        description=str(data["description"]),
        spawnerr=str(data.get("spawnerr", "")),
    )


class Supervisor:
    """XML-RPC over the unix socket with auth; every failure is a SupervisorError.

    `with Supervisor(settings) as client:` closes the connection at the end. supervisor's
    own modules are imported when a client is made, not with this module (they take
    a tenth of a second, and the CLI's reading commands need only the names here).
    """

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        from supervisor.xmlrpc import SupervisorTransport

        self.settings = settings
        username, password = _read_auth(settings)
        self._transport = SupervisorTransport(
            username, password, f"unix://{settings.supervisor_sock}"
        )
        sock_path = str(settings.supervisor_sock)
        self._transport._get_connection = lambda: _UnixConnection(sock_path, timeout)
        self._proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=self._transport)
        self._compact = True  # until supervisord says it has no controlplane.allProcessInfo

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, method: str, *args: Any) -> Any:
        """supervisor.<method>(*args) (or system.<…> as named), with errors a person can
        act on."""
        target = self._proxy if method.startswith("system.") else self._proxy.supervisor
        try:
            return getattr(target, method)(*args)
        except xmlrpc.client.Fault as fault:
            raise RPCFault(method, args, fault.faultCode, fault.faultString) from None
        except (FileNotFoundError, ConnectionRefusedError):
            self._transport.close()
            raise SupervisorError(tr(NOT_RUNNING_MESSAGE)) from None
        except xmlrpc.client.ProtocolError as exc:
            self._transport.close()
            raise SupervisorError(
                tr(
                    "supervisord refused the request ({code} {reason}); the password in "
                    "{path} does not match its config: restart it with `controlplane up`",
                    code=exc.errcode,
                    reason=exc.errmsg,
                    path=str(self.settings.supervisor_auth),
                )
            ) from None
        except OSError as exc:
            self._transport.close()
            raise SupervisorError(
                tr("cannot talk to supervisord: {reason}", reason=str(exc))
            ) from None

    def apply(self) -> UpdatePlan:
        """Reread conf.d and add, restart or remove our changed groups (like `update`);
        once all is applied, conf.d counts as read from the reload's start (confread.py)."""
        started = time.time()
        added, changed, removed = self.call("reloadConfig")[0]
        plan = plan_update(added, changed, removed)
        failures: list[Text] = []
        for group in plan.removed + plan.changed:
            self._guard(failures, group, self._stop_and_remove, group)
        for group in plan.changed + plan.added:
            self._guard(failures, group, self.call, "addProcessGroup", group)
        if not plan.empty:
            logger.info(
                "applied: added %s changed %s removed %s", plan.added, plan.changed, plan.removed
            )
        if failures:
            raise SupervisorError(tr("update failed for {groups}", groups=join(failures, "; ")))
        mark_read(self.settings.supervisor_dir, started)
        return plan

    def _stop_and_remove(self, group: str) -> None:
        try:
            self.call("stopProcessGroup", group, True)
        finally:
            self.end_leftovers(group)
        self.call("removeProcessGroup", group)

    def end_leftovers(self, program: str) -> int:
        """End what a stopped slot's app left behind: processes that left its process
        group (setsid, a double fork) and so outlived supervisord's stop."""
        from controlplane.adapters.slotprocs import end

        slot = parse_program(program)
        return end(self.settings, *slot) if slot else 0

    @staticmethod
    def _guard(failures: list[Text], group: str, action: Any, *args: Any) -> None:
        from supervisor.xmlrpc import Faults

        try:
            action(*args)
        except RPCFault as fault:
            if fault.code not in (Faults.BAD_NAME, Faults.ALREADY_ADDED):
                failures.append(tr("{group}: {reason}", group=group, reason=fault.fault))

    def start(self, program: str, wait: bool = True) -> bool:
        """Start a program; False when it was running already."""
        from supervisor.xmlrpc import Faults

        try:
            return bool(self.call("startProcess", program, wait))
        except RPCFault as fault:
            if fault.code == Faults.ALREADY_STARTED:
                return False
            raise

    def stop(self, program: str, wait: bool = True) -> bool:
        """Stop a program and, when `wait`, every process it left behind; False when it
        was not running."""
        from supervisor.xmlrpc import Faults

        try:
            stopped = bool(self.call("stopProcess", program, wait))
        except RPCFault as fault:
            if fault.code != Faults.NOT_RUNNING:
                raise
            stopped = False
        if wait:
            self.end_leftovers(program)
        return stopped

    def restart(self, program: str) -> None:
        self.stop(program)
        self.start(program)

    def info(self, program: str) -> ProcessInfo:
        return process_info(self.call("getProcessInfo", program))

    def find(self, program: str) -> ProcessInfo | None:
        """A program's state; None when supervisord has no such program."""
        from supervisor.xmlrpc import Faults

        try:
            return self.info(program)
        except RPCFault as fault:
            if fault.code == Faults.BAD_NAME:
                return None
            raise

    def infos(self, programs: Sequence[str]) -> dict[str, ProcessInfo]:
        """Several programs' states in one round trip (system.multicall), by name; a
        program supervisord does not know is left out. With 1,000 programs each round
        trip costs supervisord a pass over all of them, and getAllProcessInfo's answer
        takes a third of a second to make and read."""
        calls = [{"methodName": "supervisor.getProcessInfo", "params": [p]} for p in programs]
        answers = self.call("system.multicall", calls) if calls else []
        return {
            p: process_info(a)
            for p, a in zip(programs, answers, strict=True)
            if isinstance(a, dict) and "faultCode" not in a
        }

    def all_info(self) -> list[ProcessInfo]:
        """Every program's state. Through our extension (rpcext.py: one JSON string, 35-50
        ms with 1,000 programs instead of 0.5-0.9 s) when supervisord has it; a supervisord
        without it (started from another environment) answers getAllProcessInfo."""
        if self._compact:
            try:
                return process_rows(str(self._proxy.controlplane.allProcessInfo()))
            except xmlrpc.client.Fault as fault:
                from supervisor.xmlrpc import Faults

                if fault.faultCode != Faults.UNKNOWN_METHOD:
                    code, text = fault.faultCode, fault.faultString
                    raise RPCFault("allProcessInfo", (), code, text) from None
                self._compact = False
            except (OSError, xmlrpc.client.ProtocolError):
                pass  # said as call() says it, below
        return [process_info(d) for d in self.call("getAllProcessInfo")]

    def tail(self, program: str, nbytes: int = 16384, stderr: bool = False) -> str:
        """The last `nbytes` of a program's stdout (or stderr) log."""
        method = "tailProcessStderrLog" if stderr else "tailProcessStdoutLog"
        text, _offset, _overflow = self.call(method, program, 0, nbytes)
        return str(text)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over supervisord's unix socket, with a timeout (supervisor's own has none)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class RPCFault(SupervisorError):
    """supervisord answered a request with a fault (bad name, not running, …)."""

    def __init__(self, method: str, args: tuple[Any, ...], code: int, text: str) -> None:
        call = "{}({})".format(method, ", ".join(str(a) for a in args))
        super().__init__(tr("supervisord: {call} failed: {reason}", call=call, reason=text))
        self.code = code
        self.fault = text  # supervisord's own words


def _read_auth(settings: Settings) -> tuple[str, str]:
    try:
        raw = settings.supervisor_auth.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SupervisorError(tr(NOT_RUNNING_MESSAGE)) from None
    except PermissionError:
        raise SupervisorError(
            tr("cannot read {path}: run as root", path=str(settings.supervisor_auth))
        ) from None
    user, _, password = raw.strip().partition(":")
    return user, password
