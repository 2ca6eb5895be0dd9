"""The local socket between the CLI and `serve`: JSON lines over a Unix stream socket.

A client sends one request line `{"op", "project", "args", "follow"}`. The server answers
with progress lines `{"event": {...}}` while it follows an operation, and always ends with
one `{"result": {...}}` line. The socket is mode 0600 and the server also checks the
peer's uid (root or its own), so only the admin's own accounts can hand over operations.
The protocol functions (encode, decode, the shape of messages) are pure; the server and
the client are thin adapters around them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from controlplane.domain.kinds import op_name
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Duration, Text, as_text, tr, verbatim
from controlplane.service.executor import OK, Operation, Progress
from controlplane.service.requests import SERVE_DOWN as SERVE_DOWN
from controlplane.service.requests import ServeDown as ServeDown

logger = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024  # bytes of one request line, newline included
MAX_REPLY_LINE = 1024 * 1024
READ_TIMEOUT = 10.0  # a client must send its request line within this
WRITE_TIMEOUT = 60.0  # a follower that reads nothing for this long is dropped
POLL_INTERVAL = 0.1  # how soon stop() takes effect
REQUEST_FIELDS = frozenset({"op", "project", "args", "follow"})

Message = dict[str, Any]
Handle = Callable[[dict[str, Any]], Operation | dict[str, Any]]


class ProtocolError(ControlPlaneError):
    """A line on the socket is not what the protocol allows."""


# --- protocol: pure functions -------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """One JSON line."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _load_object(line: bytes, what: Text) -> dict[str, Any]:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError(tr("bad {what}: not a JSON line", what=what)) from None
    if not isinstance(value, dict):
        raise ProtocolError(tr("bad {what}: expected a JSON object", what=what))
    return value


def decode_request(line: bytes) -> dict[str, Any]:
    """A request line checked and completed: op, project (or None), args, follow."""
    if len(line) > MAX_REQUEST:
        raise ProtocolError(tr("request too large: more than {limit} bytes", limit=MAX_REQUEST))
    raw = _load_object(line, tr("request"))
    unknown = sorted(set(raw) - REQUEST_FIELDS)
    if unknown:
        raise ProtocolError(tr("bad request: unknown field {fields}", fields=", ".join(unknown)))
    op, project = raw.get("op"), raw.get("project")
    args, follow = raw.get("args", {}), raw.get("follow", True)
    if not isinstance(op, str) or not op:
        raise ProtocolError(tr("bad request: op must be a non-empty string"))
    if project is not None and not isinstance(project, str):
        raise ProtocolError(tr("bad request: project must be a string"))
    if not isinstance(args, dict):
        raise ProtocolError(tr("bad request: args must be an object"))
    if not isinstance(follow, bool):
        raise ProtocolError(tr("bad request: follow must be true or false"))
    return {"op": op, "project": project, "args": args, "follow": follow}


def decode_reply(line: bytes) -> dict[str, Any]:
    """A line from the server: exactly one of "event" or "result", holding an object."""
    message = _load_object(line, tr("answer from controlplane serve"))
    if len(message) != 1 or not isinstance(message.get("event", message.get("result")), dict):
        raise ProtocolError(tr("bad answer from controlplane serve: expected an event or a result"))
    return message


def event_message(event: Progress) -> Message:
    return {"event": asdict(event)}


def result_message(op: Operation) -> Message:
    """The last line for a followed operation: `text` in English, `msg` the Text as data
    (the CLI renders it in its locale's language)."""
    return {
        "result": {
            "ok": op.state == OK,
            "state": op.state,
            "id": op.id,
            "text": op.result,
            "msg": op.result_text.to_dict(),
        }
    }


def started_message(op: Operation) -> Message:
    """The answer for an operation handed over without following it."""
    text = tr("started {op} for {project}", op=op_name(op.op), project=op.project)
    return {
        "result": {
            "ok": True,
            "state": "running",
            "id": op.id,
            "text": str(text),
            "msg": text.to_dict(),
        }
    }


def error_message(text: Text | str) -> Message:
    message = as_text(text)
    return {"result": {"ok": False, "text": str(message), "msg": message.to_dict()}}


def answer_message(answer: Mapping[str, Any]) -> Message:
    """A request answered at once; its `msg` is the Text of its `text` (verbatim when the
    handler gave none)."""
    result = dict(answer)
    if "text" in result and "msg" not in result:
        result["msg"] = verbatim(str(result["text"])).to_dict()
    return {"result": result}


def peer_allowed(uid: int, own_uid: int) -> bool:
    """Root and the user serve runs as may talk to serve; nobody else."""
    return uid in (0, own_uid)


# --- server -------------------------------------------------------------------------------


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end, where the OS tells (Linux: SO_PEERCRED)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def clear_stale(path: Path) -> None:
    """Remove a socket nobody answers on; refuse when a live server or a file is there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlPlaneError(
            tr("{path} exists and is not a socket; move it away", path=str(path))
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        logger.info("removed stale socket %s", path)
        return
    except OSError as exc:
        raise ControlPlaneError(
            tr("cannot check the socket {path}: {error}", path=str(path), error=verbatim(str(exc)))
        ) from exc
    finally:
        probe.close()
    raise ControlPlaneError(
        tr("another controlplane serve is running: it answers on {path}", path=str(path))
    )


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: str, control: ControlServer) -> None:
        super().__init__(address, _Handler, bind_and_activate=False)
        self.control = control


class _Handler(socketserver.StreamRequestHandler):
    """One connection: one request, then events and one result."""

    timeout = READ_TIMEOUT
    server: _Server

    def handle(self) -> None:
        try:
            self._serve()
        except OSError as exc:  # the client left or stalled; operations go on regardless
            logger.debug("control client dropped: %s", exc)

    def _send(self, message: Mapping[str, Any]) -> None:
        self.wfile.write(encode(message))

    def _serve(self) -> None:
        # the line is read before a refusal, so the client's send never meets a closed socket
        line = self.rfile.readline(MAX_REQUEST + 1)
        uid = peer_uid(self.connection)
        if uid is not None and not peer_allowed(uid, os.geteuid()):
            logger.warning("refused a control client with uid %d", uid)
            self._send(error_message(tr("permission denied: only root or serve's own user")))
            return
        if not line:
            return
        try:
            request = decode_request(line)
        except ProtocolError as exc:
            self._send(error_message(exc.text))
            return
        self.connection.settimeout(WRITE_TIMEOUT)
        answer = self.server.control.answer(request)
        if not isinstance(answer, Operation):
            self._send(answer)
        elif request["follow"]:
            self._stream(answer)
        else:
            self._send(started_message(answer))

    def _stream(self, op: Operation) -> None:
        for event in op.follow():
            self._send(event_message(event))
        self._send(result_message(op))


class ControlServer:
    """serve's end of the socket: hands each request to `handle`, answers on the socket."""

    def __init__(self, path: Path, handle: Handle) -> None:
        self.path = path
        self.handle = handle
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._inode: tuple[int, int] | None = None

    def answer(self, request: dict[str, Any]) -> Operation | Message:
        """An operation to report on, or the result message; never raises."""
        try:
            answer = self.handle(request)
        except ControlPlaneError as exc:
            return error_message(exc.text)
        except Exception as exc:
            logger.exception("control request %s failed", request.get("op"))
            error = verbatim(f"{type(exc).__name__}: {exc}")
            return error_message(tr("internal error: {error}", error=error))
        if isinstance(answer, Operation):
            return answer
        return answer_message(answer)

    def start(self) -> None:
        """Listen on path (mode 0600) and serve connections in a daemon thread."""
        clear_stale(self.path)
        server = self._listen()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="control-socket",
            daemon=True,
        )
        self._thread.start()
        logger.info("listening on %s", self.path)

    def _listen(self) -> _Server:
        """Bind in a private 0700 folder, chmod 0600, then rename into place.

        The umask is process-wide and other threads create files, so the socket is made
        where nobody else can reach it and appears at its path already 0600.
        """
        folder = Path(tempfile.mkdtemp(prefix=".sock-", dir=self.path.parent))
        temp = folder / "s"
        server = _Server(str(temp), self)
        try:
            server.server_bind()
            os.chmod(temp, 0o600)
            server.server_activate()
            os.rename(temp, self.path)
            st = os.lstat(self.path)
        except OSError as exc:
            server.server_close()
            raise ControlPlaneError(
                tr(
                    "cannot listen on {path}: {error}",
                    path=str(self.path),
                    error=verbatim(str(exc)),
                )
            ) from exc
        finally:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
                folder.rmdir()
        self._inode = (st.st_dev, st.st_ino)
        return server

    def stop(self) -> None:
        """Stop answering and remove the socket file, unless another server replaced it."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                self.path.unlink()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- client -------------------------------------------------------------------------------


def _connect(path: Path, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise ServeDown() from None
    except PermissionError:
        sock.close()
        raise ControlPlaneError(
            tr(
                "permission denied on {path}: run this as root or as the user serve runs as",
                path=str(path),
            )
        ) from None
    except OSError as exc:
        sock.close()
        error = verbatim(str(exc))
        raise ControlPlaneError(
            tr("cannot reach controlplane serve at {path}: {error}", path=str(path), error=error)
        ) from exc
    return sock


def request(
    path: Path,
    payload: dict[str, Any],
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Send one request to serve and return its result object, passing events to on_event.

    `timeout` bounds the whole exchange (None: wait as long as the operation runs).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with _connect(path, timeout) as sock, sock.makefile("rb") as reader:
        try:
            with contextlib.suppress(BrokenPipeError):  # serve may have answered already
                sock.sendall(encode(payload))
            while True:
                if deadline is not None:
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                line = reader.readline(MAX_REPLY_LINE)
                if not line:
                    raise ControlPlaneError(
                        tr("controlplane serve closed the connection before answering")
                    )
                message = decode_reply(line)
                if "result" in message:
                    return dict(message["result"])
                if on_event is not None:
                    on_event(message["event"])
        except TimeoutError:
            raise ControlPlaneError(
                tr(
                    "no answer from controlplane serve in {duration}",
                    duration=Duration(timeout or 0),
                )
            ) from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ControlPlaneError(
                tr("controlplane serve dropped the connection: {error}", error=verbatim(str(exc)))
            ) from exc
