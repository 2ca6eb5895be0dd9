"""The CLI's edges: a reader that leaves early, a launch URL that is no repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_cli import ENGLISH, ROOT, run
from tests.conftest import cli_env


def test_a_reader_that_leaves_early_gets_no_traceback(data_dir: Path) -> None:
    """`controlplane status | head`: the pipe closes before we write; no BrokenPipeError."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "controlplane", "status"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(data_dir, **ENGLISH),
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_a_launch_url_that_is_no_repository_is_refused_in_one_line(data_dir: Path) -> None:
    done = run(data_dir, "launch", "javascript:alert(1)")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad repository URL 'javascript:alert(1)'" in lines[0], lines
    assert "https://" in lines[0] and "git@host:owner/repo" in lines[0]
    long = run(data_dir, "launch", "https://example.com/" + "x" * 4000)
    assert long.returncode == 2 and "at most 2048 characters" in long.stderr
    assert len(long.stderr) < 300
