"""A tiny smart-HTTP git server for tests: `git http-backend` as CGI on 127.0.0.1.

Serves every repository under `root`; optionally requires Basic auth with one
user:password pair, and can sleep before each answer so a test can watch a slow fetch.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BACKEND = "/usr/lib/git-core/git-http-backend"


class GitServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the backend's settings for its handler."""

    daemon_threads = True

    def __init__(self, root: Path, auth: str | None, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.root = root
        self.auth = auth
        self.delay = delay
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    """Runs git http-backend for each request, streaming the body both ways."""

    server: GitServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _authorized(self) -> bool:
        if self.server.auth is None:
            return True
        expected = "Basic " + base64.b64encode(self.server.auth.encode()).decode()
        return self.headers.get("Authorization") == expected

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return data
                data += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _env(self, body: bytes) -> dict[str, str]:
        parts = urlsplit(self.path)
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        }
        if self.server.auth is not None:
            env["REMOTE_USER"] = self.server.auth.partition(":")[0]
        for header, name in (
            ("Git-Protocol", "GIT_PROTOCOL"),
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ):
            if self.headers.get(header):
                env[name] = self.headers[header]
        return env

    def _cgi(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        time.sleep(self.server.delay)
        body = self._body()
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with subprocess.Popen(
            [BACKEND],
            env=self._env(body),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as proc:  # closes the pipes and reaps the backend also when the client goes away
            assert proc.stdin is not None and proc.stdout is not None
            feeder = threading.Thread(target=self._feed, args=(proc.stdin, body), daemon=True)
            feeder.start()
            try:
                status, headers = self._cgi_headers(proc.stdout)
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Connection", "close")
                self.end_headers()
                shutil.copyfileobj(proc.stdout, self.wfile)
            finally:
                feeder.join()
        self.close_connection = True

    @staticmethod
    def _feed(stdin: object, body: bytes) -> None:
        try:
            stdin.write(body)  # type: ignore[attr-defined]
        finally:
            stdin.close()  # type: ignore[attr-defined]

    @staticmethod
    def _cgi_headers(stdout: object) -> tuple[int, list[tuple[str, str]]]:
        status, headers = 200, []
        while True:
            line = stdout.readline().decode("latin-1").rstrip("\r\n")  # type: ignore[attr-defined]
            if not line:
                return status, headers
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((key, value.strip()))


@contextmanager
def serve(root: Path, *, auth: str | None = None, delay: float = 0.0) -> Iterator[GitServer]:
    """Serve the repositories under `root` until the block ends."""
    server = GitServer(root, auth, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
