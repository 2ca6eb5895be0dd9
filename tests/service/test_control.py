"""The CLI ↔ serve socket: protocol functions, and a real server with real clients."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, tr
from controlplane.service.control import (
    MAX_REQUEST,
    SERVE_DOWN,
    ControlServer,
    ProtocolError,
    ServeDown,
    decode_reply,
    decode_request,
    encode,
    error_message,
    event_message,
    peer_allowed,
    request,
    started_message,
)
from controlplane.service.executor import Executor, Operation, Progress

WAIT = 10.0


# --- protocol ------------------------------------------------------------------------------


def test_encode_is_one_json_line_and_decodes_back() -> None:
    line = encode({"op": "deploy", "project": "мой", "args": {"commit": 7}})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == {
        "op": "deploy",
        "project": "мой",
        "args": {"commit": 7},
        "follow": True,
    }


def test_a_request_gets_defaults_for_what_it_leaves_out() -> None:
    assert decode_request(b'{"op": "status"}') == {
        "op": "status",
        "project": None,
        "args": {},
        "follow": True,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"deploy alpha\n", "bad request: not a JSON line"),
        (b"\xff\xfe\n", "bad request: not a JSON line"),
        (b"[1, 2]\n", "bad request: expected a JSON object"),
        (b'{"op": "x", "user": "root", "sudo": 1}', "bad request: unknown field sudo, user"),
        (b'{"project": "a"}', "bad request: op must be a non-empty string"),
        (b'{"op": ""}', "bad request: op must be a non-empty string"),
        (b'{"op": "x", "project": 3}', "bad request: project must be a string"),
        (b'{"op": "x", "args": [1]}', "bad request: args must be an object"),
        (b'{"op": "x", "follow": 1}', "bad request: follow must be true or false"),
        (b" " * MAX_REQUEST + b"{}", f"request too large: more than {MAX_REQUEST} bytes"),
    ],
)
def test_bad_requests_are_named(line: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(line)
    assert str(caught.value) == message


def test_replies_must_be_an_event_or_a_result() -> None:
    assert decode_reply(b'{"result": {"ok": true}}') == {"result": {"ok": True}}
    assert decode_reply(b'{"event": {"seq": 1}}') == {"event": {"seq": 1}}
    for bad in (b'{"result": 1}', b'{"other": {}}', b'{"event": {}, "result": {}}', b"x"):
        with pytest.raises(ProtocolError):
            decode_reply(bad)


def test_messages_have_the_documented_shape() -> None:
    op = Operation("alpha", "deploy")
    started = started_message(op)
    msg = started["result"].pop("msg")
    assert started == {
        "result": {"ok": True, "state": "running", "id": op.id, "text": "started deploy for alpha"}
    }
    assert Text.from_dict(msg).render("en") == "started deploy for alpha"
    assert "alpha" in Text.from_dict(msg).render("ru")
    assert "started" not in Text.from_dict(msg).render("ru")
    step = {"id": "fetch"}
    assert event_message(Progress(3, 1.5, "fetch", "step", step)) == {
        "event": {"seq": 3, "at": 1.5, "text": "fetch", "kind": "step", "msg": step}
    }
    assert error_message("busy: deploy since 12:03:04") == {
        "result": {
            "ok": False,
            "text": "busy: deploy since 12:03:04",
            "msg": {"id": "busy: deploy since 12:03:04", "raw": True},
        }
    }


def test_an_error_goes_over_the_socket_as_its_text_and_renders_in_either_language() -> None:
    text = tr("bad request: unknown field {fields}", fields="as")
    result = error_message(text)["result"]
    assert result["text"] == "bad request: unknown field as"
    shown = Text.from_dict(json.loads(encode(result))["msg"]).render("ru")
    assert shown == "неверный запрос: неизвестное поле as"


def test_only_root_and_serves_own_user_are_peers() -> None:
    assert peer_allowed(0, 1000) and peer_allowed(1000, 1000)
    assert not peer_allowed(65534, 1000)
    assert not peer_allowed(65534, 0)


# --- a real server -------------------------------------------------------------------------


class App:
    """What serve would do with requests: a few operations on a real executor."""

    def __init__(self) -> None:
        self.executor = Executor()
        self.gate = threading.Event()
        self.requests: list[dict[str, Any]] = []

    def handle(self, req: dict[str, Any]) -> Operation | dict[str, Any]:
        self.requests.append(req)
        op, project = req["op"], req["project"] or "-"
        if op == "status":
            return {"ok": True, "text": f"{len(self.executor.running())} running"}
        if op == "missing":
            raise ControlPlaneError(f"no project named {project}")
        if op == "crash":
            raise KeyError(project)
        return self.executor.submit(project, op, getattr(self, op))

    def quick(self, op: Operation) -> str:
        op.step("fetch")
        op.log("Already up to date.")
        return "deployed 4"

    def broken(self, op: Operation) -> str:
        op.step("install")
        raise ControlPlaneError("pip install exited with status 1")

    def gated(self, op: Operation) -> str:
        op.step("waiting for the gate")
        self.gate.wait(WAIT)
        for n in range(50):
            op.log(f"line {n}")
        return "gate passed"


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short folder: Unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def app() -> Iterator[App]:
    application = App()
    yield application
    application.gate.set()
    application.executor.shutdown(wait=WAIT)


@pytest.fixture
def server(sock_dir: Path, app: App) -> Iterator[ControlServer]:
    with ControlServer(sock_dir / "controlplane.sock", app.handle) as srv:
        yield srv


def raw_exchange(path: Path, data: bytes) -> dict[str, Any]:
    """Send raw bytes and read the first reply line, as a misbehaving client would."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(str(path))
        sock.sendall(data)
        with sock.makefile("rb") as reader:
            return decode_reply(reader.readline())


def test_the_socket_is_0600_and_nothing_is_left_beside_it(
    server: ControlServer, sock_dir: Path
) -> None:
    mode = os.stat(server.path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert os.listdir(sock_dir) == ["controlplane.sock"]


def test_request_streams_events_and_returns_the_result(server: ControlServer) -> None:
    events: list[dict[str, Any]] = []
    result = request(server.path, {"op": "quick", "project": "alpha"}, on_event=events.append)
    assert result["ok"] is True and result["state"] == "ok" and result["text"] == "deployed 4"
    assert [(e["seq"], e["kind"], e["text"]) for e in events] == [
        (1, "step", "fetch"),
        (2, "log", "Already up to date."),
        (3, "done", "deployed 4"),
    ]


def test_a_failed_operation_is_a_failed_result(server: ControlServer) -> None:
    result = request(server.path, {"op": "broken", "project": "alpha"}, timeout=WAIT)
    assert (result["ok"], result["state"]) == (False, "failed")
    assert result["text"] == "pip install exited with status 1"


def test_plain_answers_and_refusals_come_back_as_results(server: ControlServer) -> None:
    answered = request(server.path, {"op": "status"})
    assert answered == {"ok": True, "text": "0 running", "msg": {"id": "0 running", "raw": True}}
    missing = request(server.path, {"op": "missing", "project": "zeta"})
    assert (missing["ok"], missing["text"]) == (False, "no project named zeta")
    assert Text.from_dict(missing["msg"]).render("ru") == "no project named zeta"  # not ours
    crashed = request(server.path, {"op": "crash", "project": "zeta"})
    assert (crashed["ok"], crashed["text"]) == (False, "internal error: KeyError: 'zeta'")
    shown = Text.from_dict(crashed["msg"]).render("ru")
    assert shown == "внутренняя ошибка: KeyError: 'zeta'"


def test_follow_false_returns_at_once_and_a_second_op_is_busy(
    server: ControlServer, app: App
) -> None:
    result = request(server.path, {"op": "gated", "project": "alpha", "follow": False})
    assert result["ok"] is True and result["state"] == "running"
    assert result["text"] == "started gated for alpha"
    op = app.executor.get(result["id"])
    assert op is not None and not op.done

    busy = request(server.path, {"op": "quick", "project": "alpha"}, timeout=WAIT)
    assert busy["ok"] is False and busy["text"].startswith("busy: gated since ")

    app.gate.set()
    assert op.wait(WAIT) and op.state == "ok"


def test_a_client_leaving_mid_stream_leaves_the_operation_running(
    server: ControlServer, app: App
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(str(server.path))
        sock.sendall(encode({"op": "gated", "project": "alpha"}))
        with sock.makefile("rb") as reader:
            first = decode_reply(reader.readline())
    assert first["event"]["text"] == "waiting for the gate"
    op = app.executor.busy("alpha")
    assert op is not None

    app.gate.set()  # the server now writes 50 lines to a closed connection
    assert op.wait(WAIT)
    assert (op.state, op.result) == ("ok", "gate passed")
    assert request(server.path, {"op": "quick", "project": "alpha"})["ok"] is True


def test_serve_down_when_nothing_listens(sock_dir: Path) -> None:
    with pytest.raises(ServeDown) as caught:
        request(sock_dir / "controlplane.sock", {"op": "status"})
    assert str(caught.value) == SERVE_DOWN
    assert "\n" not in SERVE_DOWN and "controlplane up" in SERVE_DOWN

    stale = sock_dir / "controlplane.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))  # a socket file left behind by a killed serve
    with pytest.raises(ServeDown):
        request(stale, {"op": "status"})


def test_a_stale_socket_is_replaced_but_a_live_server_is_not(sock_dir: Path, app: App) -> None:
    path = sock_dir / "controlplane.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    with ControlServer(path, app.handle):
        assert request(path, {"op": "status"})["ok"] is True
        second = ControlServer(path, app.handle)
        with pytest.raises(ControlPlaneError, match="another controlplane serve is running"):
            second.start()
        assert request(path, {"op": "status"})["ok"] is True
    assert not path.exists()

    path.write_text("not a socket")
    with pytest.raises(ControlPlaneError, match="is not a socket"):
        ControlServer(path, app.handle).start()


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"hello\n", "bad request: not a JSON line"),
        (b'{"op": "status", "as": "root"}\n', "bad request: unknown field as"),
        (b'{"op": "status"' + b" " * (MAX_REQUEST + 10) + b"}\n", "request too large"),
    ],
)
def test_garbage_gets_an_error_and_the_server_answers_the_next_client(
    server: ControlServer, app: App, data: bytes, text: str
) -> None:
    reply = raw_exchange(server.path, data)
    assert reply["result"]["ok"] is False and reply["result"]["text"].startswith(text)
    assert app.requests == []
    assert request(server.path, {"op": "status"}, timeout=WAIT)["ok"] is True


def test_a_client_that_connects_and_says_nothing_does_not_block_others(
    server: ControlServer,
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.connect(str(server.path))
        assert request(server.path, {"op": "status"}, timeout=WAIT)["ok"] is True


CHILD = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES")
    sys.exit(0)
s.sendall(b'{"op": "status"}\\n')
print(s.makefile("rb").readline().decode().strip())
"""


def run_as_nobody(path: Path) -> str:
    """Run a stdlib-only client as nobody and return what it printed."""
    if os.geteuid() != 0:
        reason = "needs root to run a client as another user"
        print(f"skipped: {reason}")
        pytest.skip(reason)
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        print("skipped: no user nobody")
        pytest.skip("no user nobody")
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        print("skipped: no python3 that nobody can run")
        pytest.skip("no system python3")
    done = subprocess.run(
        [python, "-I", "-c", CHILD, str(path)],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
        check=False,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_another_user_is_refused(server: ControlServer, sock_dir: Path, app: App) -> None:
    os.chmod(sock_dir, 0o755)
    assert run_as_nobody(server.path) == "EACCES"  # the 0600 mode keeps nobody out

    os.chmod(server.path, 0o666)  # even with a loosened mode, the peer's uid is checked
    reply = json.loads(run_as_nobody(server.path))
    assert reply["result"]["ok"] is False
    assert reply["result"]["text"] == "permission denied: only root or serve's own user"
    assert Text.from_dict(reply["result"]["msg"]).render("ru").startswith("доступ запрещён")
    assert app.requests == []
    assert request(server.path, {"op": "status"})["ok"] is True
