"""A real OpenSSH server on loopback for ssh repositories: git over ssh as a given user,
keys accepted from a file the test writes, a host key that can be changed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    """One sshd: `url(repo)` is the ssh:// URL of a repository path on this machine."""

    folder: Path
    port: int
    user: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def authorized_keys(self) -> Path:
        return self.folder / "authorized_keys"

    @property
    def host_key(self) -> Path:
        return self.folder / "host_ed25519"

    def url(self, repo: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo}"

    def host_fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-l", "-f", f"{self.host_key}.pub"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()[1]

    def new_host_key(self) -> None:
        for path in (self.host_key, Path(f"{self.host_key}.pub")):
            path.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True
        )

    def start(self) -> None:
        config = self.folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.folder}/sshd.pid\nAuthorizedKeysFile {self.authorized_keys}\n"
            "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"UsePAM yes\nAllowUsers {self.user}\n"
            # git-upload-pack runs as the ssh user on repositories root made: trust them
            f"SetEnv GIT_CONFIG_GLOBAL={self.folder}/gitconfig\n"
        )
        (self.folder / "gitconfig").write_text("[safe]\n\tdirectory = *\n")
        os.chmod(self.folder / "gitconfig", 0o644)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with open(self.folder / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"sshd did not listen; see {self.folder}/sshd.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@contextmanager
def ssh_server(user: str) -> Iterator[SshServer]:
    """An sshd on a free loopback port letting `user` in with the keys the test writes."""
    if not os.access(SSHD, os.X_OK) or os.geteuid() != 0:
        reason = f"needs root and {SSHD} (Debian: openssh-server)"
        print(reason)
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="cp-sshd-", dir="/tmp"))
    os.chmod(folder, 0o755)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = SshServer(folder=folder, port=port, user=user)
    server.authorized_keys.write_text("")
    os.chmod(server.authorized_keys, 0o644)
    server.new_host_key()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        print((folder / "sshd.log").read_text(errors="replace")[-3000:])
        shutil.rmtree(folder, ignore_errors=True)
