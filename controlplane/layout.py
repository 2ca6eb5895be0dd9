"""The data directory's layout: every path under $DATA is named here, and nowhere else.

```
$DATA/store.json, store.d/, store.lock   the store (store.d: the outbox's log, one file per project)
$DATA/secret.key                         the generated key, when CONTROLPLANE_KEY is unset
$DATA/supervisord.conf                   rendered at every start
$DATA/supervisor/                        conf.d/NAME-SLOT.conf, supervisor.sock, auth, pid file
$DATA/controlplane.sock                  serve's local socket for the CLI
$DATA/logs/                              the logs of supervisord, serve and each slot;
                                         events.jsonl, load.json, builds/NAME-N.log
                                         (a second build of #N: NAME-N.2.log, …)
$DATA/cache/                             pip's and uv's caches for builds
$DATA/projects/NAME/releases/N-SHA7/     one built release (N-SHA7.ready beside it when whole)
$DATA/projects/NAME/mirror.git           the bare mirror of the project's repository
$DATA/projects/NAME/test                 link: the test slot's release
$DATA/projects/NAME/shared/SLOT/         the slot's APP_DATA_DIR, kept across deploys
$DATA/projects/NAME/ssh/known_hosts      the project's pinned ssh host keys
$DATA/apps/NAME                          a launched project's prod folder, by default
```

The layout is the one an existing install has on disk: a name changed here is a
migration. Pure path arithmetic, nothing touches the disk; it imports only the standard
library, so every layer (and run-slot's start) may use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing's Protocol costs run-slot's start; only mypy needs it
    from typing import Protocol

    class Placed(Protocol):
        """A project as far as paths go: its name and the prod folder the admin gave."""

        @property
        def name(self) -> str: ...

        @property
        def path(self) -> str: ...


READY_SUFFIX = ".ready"
EVENTS_LOG = "events.jsonl"


def release_in(releases: Path, n: int, sha: str) -> Path:
    """releases/N-SHA7: where commit #n's release lives in a releases folder."""
    return releases / f"{n}-{sha[:7]}"


def ready_marker(release: Path) -> Path:
    """N-SHA7.ready beside a release folder: written last, so its presence means complete."""
    return release.with_name(release.name + READY_SUFFIX)


def venv_python(code: Path) -> Path:
    """The interpreter of the venv a build made inside a release."""
    return code / ".venv" / "bin" / "python"


def build_log_of(filename: str) -> tuple[str, int, int] | None:
    """'shop-7.2.log' → ('shop', 7, 2), 'shop-7.log' → ('shop', 7, 1); None for a file
    that is no build log (the inverse of `Layout.build_log`)."""
    stem = filename.removesuffix(".log")
    if stem == filename:
        return None
    stem, dot, attempt = stem.partition(".")
    name, dash, n = stem.rpartition("-")
    if not (name and dash and n.isdecimal() and (not dot or attempt.isdecimal())):
        return None
    return name, int(n), int(attempt) if dot else 1


def rotated(path: Path) -> Path:
    """The previous generation of a log rotated once (NAME → NAME.1)."""
    return path.with_name(path.name + ".1")


class Layout:
    """The paths of one data directory (a plain class, not a dataclass: run-slot builds
    one on every start, and a dataclass costs its import a millisecond)."""

    __slots__ = ("data_dir",)

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and other.data_dir == self.data_dir

    def __hash__(self) -> int:
        return hash(self.data_dir)

    def __repr__(self) -> str:
        return f"Layout({str(self.data_dir)!r})"

    # -- the store and the key ------------------------------------------------------------

    @property
    def store(self) -> Path:
        return self.data_dir / "store.json"

    @property
    def store_shards(self) -> Path:
        return self.data_dir / "store.d"

    @property
    def outbox_store(self) -> Path:  # an older version's outbox table (taken over once)
        return self.store_shards / "outbox.json"

    @property
    def outbox_log(self) -> Path:
        return self.store_shards / "outbox.log"

    def project_store(self, name: str) -> Path:
        return self.store_shards / "projects" / f"{name}.json"

    def commit_store(self, name: str) -> Path:  # its numbered commits (adapters/commitfile)
        return self.store_shards / "commits" / f"{name}.json"

    @property
    def store_lock(self) -> Path:
        return self.data_dir / "store.lock"

    @property
    def key(self) -> Path:
        return self.data_dir / "secret.key"

    # -- supervisord and serve ------------------------------------------------------------

    @property
    def supervisord_conf(self) -> Path:
        return self.data_dir / "supervisord.conf"

    @property
    def supervisor_dir(self) -> Path:
        return self.data_dir / "supervisor"

    @property
    def confd(self) -> Path:
        return self.supervisor_dir / "conf.d"

    def program_conf(self, program: str) -> Path:
        """conf.d/NAME-SLOT.conf, one per slot."""
        return self.confd / f"{program}.conf"

    @property
    def supervisor_sock(self) -> Path:
        return self.supervisor_dir / "supervisor.sock"

    @property
    def supervisor_auth(self) -> Path:
        return self.supervisor_dir / "auth"

    @property
    def supervisord_pid(self) -> Path:
        return self.supervisor_dir / "supervisord.pid"

    @property
    def control_sock(self) -> Path:
        return self.data_dir / "controlplane.sock"

    # -- logs -------------------------------------------------------------------------------

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def supervisord_log(self) -> Path:
        return self.logs_dir / "supervisord.log"

    @property
    def serve_log(self) -> Path:
        """serve's output, as supervisord keeps it."""
        return self.logs_dir / "controlplane.log"

    @property
    def events_log(self) -> Path:
        """The state changes the event listener appends (rotated once, see `rotated`)."""
        return self.logs_dir / EVENTS_LOG

    @property
    def events_err_log(self) -> Path:
        """The event listener's own log (its stdout is the protocol channel)."""
        return self.logs_dir / "events.err.log"

    def program_logs(self, program: str) -> tuple[Path, Path]:
        """A slot's stdout and stderr logs: logs/NAME-SLOT.out.log and .err.log."""
        return self.logs_dir / f"{program}.out.log", self.logs_dir / f"{program}.err.log"

    @property
    def builds_dir(self) -> Path:
        return self.logs_dir / "builds"

    def build_log(self, name: str, n: int, attempt: int = 1) -> Path:
        """One build attempt's log: builds/NAME-N.log, then NAME-N.2.log, NAME-N.3.log …
        for the next builds of the same commit (see `build_log_of`)."""
        suffix = "" if attempt <= 1 else f".{attempt}"
        return self.builds_dir / f"{name}-{n}{suffix}.log"

    @property
    def load_samples(self) -> Path:
        """The last hour of load samples serve keeps."""
        return self.logs_dir / "load.json"

    # -- builds ---------------------------------------------------------------------------

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    # -- projects -------------------------------------------------------------------------

    @property
    def projects_dir(self) -> Path:
        return self.data_dir / "projects"

    @property
    def apps_dir(self) -> Path:
        return self.data_dir / "apps"

    @property
    def backups_dir(self) -> Path:  # folders taken over: their former contents (takeover.py)
        return self.data_dir / "backups"

    def app_folder(self, name: str) -> Path:
        """The prod folder a project gets when the admin names none."""
        return self.apps_dir / name

    def project_dir(self, name: str) -> Path:
        return self.projects_dir / name

    def releases_dir(self, name: str) -> Path:
        return self.project_dir(name) / "releases"

    def release_dir(self, name: str, n: int, sha: str) -> Path:
        return release_in(self.releases_dir(name), n, sha)

    def mirror(self, name: str) -> Path:
        return self.project_dir(name) / "mirror.git"

    def test_link(self, name: str) -> Path:
        return self.project_dir(name) / "test"

    def slot_code(self, project: Placed, slot: str) -> Path:
        """Where a slot's code is: prod is the admin's folder (a link to a release), test
        is projects/NAME/test."""
        return Path(project.path) if slot == "prod" else self.test_link(project.name)

    def shared_dir(self, name: str) -> Path:
        return self.project_dir(name) / "shared"

    def slot_data(self, name: str, slot: str) -> Path:
        """The slot's persistent folder, its APP_DATA_DIR; it survives deploys."""
        return self.shared_dir(name) / slot

    def known_hosts(self, name: str) -> Path:
        """The project's pinned ssh host keys (in a folder git's user owns)."""
        return self.project_dir(name) / "ssh" / "known_hosts"
