"""PM2 for baselines: installed with npm into a temporary folder (its own PM2_HOME), or
the reason it could not be."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTALL_LIMIT = 60


class PM2:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "node_modules" / ".bin" / "pm2"
        self.env = {**os.environ, "PM2_HOME": str(root / "home")}

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [str(self.bin), *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"pm2 {args}: {done.stdout}{done.stderr}")
        return done.stdout

    def daemon_pid(self) -> int:
        return int((self.root / "home" / "pm2.pid").read_text().strip())


@contextlib.contextmanager
def pm2() -> Iterator[PM2 | str]:
    """Yields a PM2 (daemon killed and folder removed afterwards) or why there is none."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        yield "node/npm not installed"
        return
    root = Path(tempfile.mkdtemp(prefix="cpbench-pm2-"))
    try:
        try:
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    "--prefix",
                    str(root),
                    "pm2",
                ],
                capture_output=True,
                text=True,
                timeout=INSTALL_LIMIT,
            )
        except subprocess.TimeoutExpired:
            yield f"`npm install pm2` took longer than {INSTALL_LIMIT} s"
            return
        tool = PM2(root)
        if done.returncode != 0 or not tool.bin.exists():
            yield f"`npm install pm2` failed: {(done.stderr or done.stdout).strip()[-200:]}"
            return
        try:
            yield tool
        finally:
            tool("kill", check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
