"""Builds take the box's network settings: proxies, certificates, index settings.

A local forward proxy that wants credentials serves a small package index for a host that
does not exist (`pypi.internal`): a build reaches it only through the proxy the control
plane's environment names. The proxy's password is never shown or written.
"""

from __future__ import annotations

import base64
import hashlib
import html
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from controlplane.engine import build
from controlplane.engine.buildenv import build_env, url_secrets
from controlplane.layout import release_in
from tests.engine.test_build import Project
from tests.support.fixtures_repos import Origin

PASSWORD = "pr0xy-s3cret"
INDEX = "http://pypi.internal/simple"


class Proxy:
    """A forward proxy that is also the index: it answers absolute-URI GETs itself."""

    def __init__(self, wheels: Path) -> None:
        self.wheels = wheels
        self.seen: list[tuple[str, str]] = []  # (url, Proxy-Authorization)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.do_GET(body=False)

            def do_GET(self, body: bool = True) -> None:
                proxy.seen.append((self.path, self.headers.get("Proxy-Authorization", "")))
                if self.headers.get("Proxy-Authorization") != proxy.auth:
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="p"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, data, kind = proxy.answer(urlsplit(self.path).path)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.auth = "Basic " + base64.b64encode(f"builder:{PASSWORD}".encode()).decode()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://builder:{PASSWORD}@127.0.0.1:{self.port}"

    def answer(self, path: str) -> tuple[int, bytes, str]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["files"] and (self.wheels / parts[-1]).is_file():
            return 200, (self.wheels / parts[-1]).read_bytes(), "application/octet-stream"
        if parts[:1] == ["simple"] and len(parts) == 2:
            links = [
                f'<a href="http://pypi.internal/files/{w.name}#sha256='
                f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{html.escape(w.name)}</a>'
                for w in sorted(self.wheels.glob(f"{parts[1].replace('-', '_')}-*.whl"))
            ]
            if links:
                return (
                    200,
                    ("<html><body>" + "".join(links) + "</body></html>").encode(),
                    ("text/html"),
                )
        return 404, b"not here", "text/plain"


@pytest.fixture
def proxy(wheelhouse: Callable[..., Path]) -> Iterator[Proxy]:
    running = Proxy(wheelhouse("tinylib", "1.0"))
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_a_build_inherits_the_boxs_network_settings_unless_the_project_overrides() -> None:
    base = {
        "PATH": "/usr/bin",
        "HTTPS_PROXY": "http://proxy:3128",
        "no_proxy": "localhost",
        "SSL_CERT_FILE": "/etc/corp-ca.pem",
        "REQUESTS_CA_BUNDLE": "/etc/corp-ca.pem",
        "PIP_INDEX_URL": "https://mirror/simple",
        "UV_DEFAULT_INDEX": "https://mirror/simple",
        "AWS_SECRET_ACCESS_KEY": "not for builds",
        "TELEGRAM_BOT_TOKEN": "not for builds",
    }
    env = build_env({"PIP_INDEX_URL": "https://own/simple"}, Path("/c"), base=base)
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["no_proxy"] == "localhost"
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == "/etc/corp-ca.pem"
    assert env["UV_DEFAULT_INDEX"] == "https://mirror/simple"
    assert env["PIP_INDEX_URL"] == "https://own/simple"  # the project's own wins
    assert "AWS_SECRET_ACCESS_KEY" not in env and "TELEGRAM_BOT_TOKEN" not in env
    assert env["UV_SYSTEM_CERTS"] == env["UV_NATIVE_TLS"] == "1"  # the system's CAs
    own = build_env({"UV_SYSTEM_CERTS": "0"}, Path("/c"), base={"UV_SYSTEM_CERTS": "1"})
    assert own["UV_SYSTEM_CERTS"] == "0"
    assert url_secrets({"P": "http://u:p%40ss@h:1", "Q": "https://h/simple"}) == ["p%40ss", "p@ss"]


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_build_goes_through_the_boxs_proxy_and_never_shows_its_password(
    origin: Callable[..., Origin], tmp_path: Path, proxy: Proxy, installer: build.Installer
) -> None:
    project = Project(origin(), tmp_path)
    sha = project.commit({"requirements.txt": "tinylib==1.0\n"})
    base = {
        "PATH": "/usr/bin:/bin",
        "HTTP_PROXY": proxy.url,
        "http_proxy": proxy.url,
        "UV_INDEX_URL": INDEX,
        "PIP_INDEX_URL": INDEX,
        "PIP_TRUSTED_HOST": "pypi.internal",
    }
    result = build.build_release(
        dest=release_in(project.releases, 1, sha),
        mirror=project.mirror,
        sha=sha,
        python="/usr/bin/python3",
        env={},
        log_path=tmp_path / "build.log",
        cache_dir=tmp_path / "cache",
        installer=installer,
        base_env=base,
    )
    assert result.state == "ready", (result.error, result.steps[-1].tail_lines)
    fetched = [url for url, auth in proxy.seen if auth == proxy.auth]
    assert any(url.endswith("/files/tinylib-1.0-py3-none-any.whl") for url in fetched)
    shown = [str(d) for s in result.steps for d in s.details]
    shown += [line for s in result.steps for line in s.tail_lines]
    settings = next(line for line in shown if line.startswith("network settings from"))
    assert f"HTTP_PROXY=http://***@127.0.0.1:{proxy.port}" in settings
    assert "PIP_TRUSTED_HOST=pypi.internal" in settings
    assert all(PASSWORD not in line for line in shown)
    assert PASSWORD not in (tmp_path / "build.log").read_text()
