"""Taking over a project folder that holds someone's files: refused unless asked, then
moved (never deleted) to a dated backup under $DATA/backups, and put back by hand with the
commands docs/operations.md gives."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.cli.test_cli import run
from tests.support.fixtures_repos import Origin


def theirs(folder: Path) -> dict[str, bytes]:
    """Someone's files in `folder`: a file, a hidden one, a subfolder and a symlink."""
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine\n")
    (folder / ".env").write_text("TOKEN=x\n")
    (folder / "sub" / "data.bin").write_bytes(b"\0" * 3000)
    (folder / "link").symlink_to("notes.txt")
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            found[rel] = b"-> " + str(path.readlink()).encode()
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def test_a_folder_is_taken_over_only_when_asked_and_put_back_by_hand(
    data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]
) -> None:
    repo = origin("shop")
    repo.commits(2)
    folder = tmp_path / "srv" / "shop"
    before = theirs(folder)
    args = ["project", "add", "shop", "--repo", repo.url, "--path", str(folder)]

    refused = run(data_dir, *args)
    assert refused.returncode != 0
    assert "holds files the control plane did not put there" in refused.stderr
    assert "--take-over" in refused.stderr and str(data_dir / "backups") in refused.stderr
    assert snapshot(folder) == before and not (data_dir / "backups").exists()

    done = run(data_dir, *args, "--take-over")
    assert done.returncode == 0, done.stderr
    moved = re.search(r"moved 4 files \(([^)]*)\) from (\S+) to (\S+)", done.stderr)
    assert moved, done.stderr
    backup = Path(moved[3])
    assert moved[1] == "2.9 KiB" and moved[2] == str(folder)
    assert re.fullmatch(r"shop-\d{8}-\d{6}", backup.name) and backup.parent == data_dir / "backups"
    assert snapshot(backup) == before  # every file, hidden ones and links as they were
    assert folder.is_dir() and not any(folder.iterdir())  # ours now: empty until a deploy
    assert "numbered 2 commits" in done.stderr

    # the restore docs/operations.md gives, command by command
    assert run(data_dir, "project", "remove", "shop").returncode == 0
    restore = f'rmdir {folder} && mv "$DATA/backups/{backup.name}" {folder}'
    subprocess.run(["sh", "-c", restore], env={"DATA": str(data_dir)}, check=True)
    assert snapshot(folder) == before and not backup.exists()
