"""The environment an app runs with: a minimal base the control plane sets, under which the
slot's own variables are laid.

Pure: run-slot builds the app's environment with it, and a test run's check command gets
the very same one.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "CONTROLPLANE_SLOT_ID"  # the slot's mark, how its escaped processes are found
SAFE_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


class Account:
    """Who the app runs as. A plain class, not a dataclass: run-slot is on every app's start
    and `dataclasses` alone takes ~10 ms to import."""

    __slots__ = ("gid", "home", "name", "uid")

    def __init__(self, *, name: str, uid: int, gid: int, home: str) -> None:
        self.name, self.uid, self.gid, self.home = name, uid, gid, home

    def _key(self) -> tuple[str, int, int, str]:
        return (self.name, self.uid, self.gid, self.home)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Account) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Account(name={!r}, uid={}, gid={}, home={!r})".format(*self._key())


def base_env(
    account: Account, *, python: str, data_dir: Path, slot: str, mark: str = ""
) -> dict[str, str]:
    """The minimal environment every app gets before its own variables are laid over;
    `mark` is the slot's marker (slotcgroup.slot_id), how its escaped processes are found."""
    bin_dir = str(Path(python).parent)
    return {
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "PATH": ":".join(dict.fromkeys([bin_dir, *SAFE_PATH])),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "APP_DATA_DIR": str(data_dir),
        "CONTROLPLANE_SLOT": slot,
        **({MARKER: mark} if mark else {}),
    }


def app_env(base: dict[str, str], variables: dict[str, str]) -> dict[str, str]:
    """The slot's variables over the base; the names the control plane sets win."""
    env = dict(variables)
    env.update(base)
    return env
