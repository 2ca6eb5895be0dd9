"""Factory fixtures for real git repositories and hand-made wheels (import them in tests).

`origin` makes a bare repository with a work clone that commits and pushes to it;
`wheelhouse` writes tiny pure-Python wheels into a folder for `--find-links` installs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Author",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Author",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
}


def sh_git(*args: str, cwd: Path | None = None) -> str:
    """Run git for a test's own setup; raise with its output on failure."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {args} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip()


@dataclass
class Origin:
    """A bare repository (`bare`) and a clone (`work`) that commits and pushes to it."""

    bare: Path
    work: Path
    branch: str = "main"

    @property
    def url(self) -> str:
        return str(self.bare)

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        """Write files (path → text), commit them, return the new sha (not pushed)."""
        default = {message.replace(" ", "_") + ".txt": message}
        for name, text in (default if files is None else files).items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        sh_git("add", "-A", cwd=self.work)
        sh_git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        return sh_git("rev-parse", "HEAD", cwd=self.work)

    def push(self, *, force: bool = False, branch: str | None = None) -> None:
        ref = f"HEAD:refs/heads/{branch or self.branch}"
        sh_git("push", "-q", *(["--force"] if force else []), "origin", ref, cwd=self.work)

    def commits(self, n: int, prefix: str = "change") -> list[str]:
        """Make n commits, push them, return their shas oldest first."""
        shas = [self.commit(f"{prefix} {i}") for i in range(1, n + 1)]
        self.push()
        return shas

    def bulk(self, n: int, prefix: str = "old") -> list[str]:
        """Make n commits at once (git fast-import: 10,000 in a second or two), each
        changing history.txt, push them, return their shas oldest first."""
        parent = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=self.work,
            env=GIT_ENV,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        parts = []
        for i in range(1, n + 1):
            msg, body = f"{prefix} {i}".encode(), f"{prefix} {i}\n".encode()
            start = f"from :{i - 1}\n" if i > 1 else (f"from {parent}\n" if parent else "")
            parts.append(
                f"commit refs/heads/{self.branch}\nmark :{i}\n"
                f"committer Bulk <bulk@example.org> {1_600_000_000 + i} +0000\n".encode()
                + f"data {len(msg)}\n".encode()
                + msg
                + f"\n{start}M 644 inline history.txt\ndata {len(body)}\n".encode()
                + body
                + b"\n"
            )
        subprocess.run(
            ["git", "fast-import", "--quiet", "--force"],
            cwd=self.work,
            env=GIT_ENV,
            input=b"".join(parts),
            check=True,
            capture_output=True,
        )
        sh_git("reset", "-q", "--hard", self.branch, cwd=self.work)
        self.push()
        shas = sh_git("rev-list", "--first-parent", f"--max-count={n}", "HEAD", cwd=self.work)
        return list(reversed(shas.split()))

    def reset_hard(self, sha: str) -> None:
        sh_git("reset", "-q", "--hard", sha, cwd=self.work)


@pytest.fixture(name="origin")
def origin_fixture(tmp_path: Path) -> Iterator[Callable[..., Origin]]:
    """Factory: origin(name='app', branch='main') → Origin with no commits yet.

    The bare repositories live in a folder every user can read, as a local mirror must:
    git runs as an unprivileged user (pytest's own folders are 0700)."""
    remotes = Path(tempfile.mkdtemp(prefix="cporigin-", dir="/tmp"))
    os.chmod(remotes, 0o755)

    def make(name: str = "app", branch: str = "main") -> Origin:
        bare = remotes / f"{name}.git"
        sh_git("init", "-q", "--bare", "--shared=0644", f"--initial-branch={branch}", str(bare))
        # --shared also refuses force-pushes; the tests force-push on purpose
        sh_git("config", "receive.denyNonFastForwards", "false", cwd=bare)
        work = tmp_path / "work" / name
        sh_git("clone", "-q", str(bare), str(work))
        sh_git("checkout", "-q", "-b", branch, cwd=work)
        return Origin(bare=bare, work=work, branch=branch)

    yield make
    shutil.rmtree(remotes, ignore_errors=True)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


WHEEL_TEXT = "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def make_wheel(folder: Path, name: str, version: str = "1.0", body: str = "") -> Path:
    """Write a valid pure-Python wheel `name` whose module has `VERSION` and `body`."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n{body}",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": WHEEL_TEXT,
    }
    record_name = f"{info}/RECORD"
    lines = [_record_line(path, text.encode()) for path, text in files.items()]
    files[record_name] = "\n".join([*lines, f"{record_name},,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture(name="wheelhouse")
def wheelhouse_fixture(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Factory: wheelhouse('tinylib', '1.0') → the folder holding that wheel."""
    folder = tmp_path / "wheels"

    def make(name: str = "tinylib", version: str = "1.0", body: str = "") -> Path:
        make_wheel(folder, name, version, body)
        return folder

    yield make
