"""Files: the one atomic write (with the last good copy kept) and the one folder size."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from controlplane.adapters.files import folder_size, write_atomic


def test_write_atomic_replaces_the_file_and_keeps_the_last_good_copy(tmp_path: Path) -> None:
    path, backup = tmp_path / "deep" / "store.json", tmp_path / "deep" / "store.json.bak"
    write_atomic(path, "first", backup=backup)
    assert path.read_text() == "first" and not backup.exists()  # nothing to keep yet
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_atomic(path, b"second", backup=backup)
    write_atomic(path, "third", 0o644, backup=backup)
    assert (path.read_text(), backup.read_text()) == ("third", "second")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["store.json", "store.json.bak"]


def test_folder_size_counts_files_once_and_follows_no_link(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_bytes(b"x" * 1000)
    (tree / "sub" / "b").write_bytes(b"y" * 3000)
    os.link(tree / "a", tree / "sub" / "a-again")  # a hard link counts once
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"z" * 50_000)
    (tree / "link").symlink_to(outside, target_is_directory=True)
    assert folder_size(tree) == 4000
    assert folder_size(tmp_path / "missing") == 0


def test_folder_size_on_disk_is_what_du_counts_across_folders(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "f").write_bytes(b"x" * 10_000)
    os.link(one / "f", two / "f")
    seen: set[tuple[int, int]] = set()
    first = folder_size(one, seen, on_disk=True)
    assert first >= (one / "f").stat().st_blocks * 512 >= 10_000
    assert folder_size(two, seen, on_disk=True) < first  # the shared file was counted already
    assert folder_size(two, on_disk=True) == first  # without `seen`, it counts here
