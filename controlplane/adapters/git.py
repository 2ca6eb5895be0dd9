"""Git: ask a remote for a branch head, keep a bare mirror per project, export a commit.

Every git call is the git CLI through `controlplane.runner`, not GitPython: each call
needs a timeout, a process-group kill on cancel, redacted output, and an environment we
control (proxies, no prompts, no user/system config), and GitPython's long-lived
`cat-file` helpers would escape all of that. Reading the mirror (`log`, `show`) is one
short `git` call whose output is parsed here, which is simpler than GitPython's objects.

Credentials never reach a command line (argv is visible in `ps`): the credential-free URL
goes into argv, and the credential travels as an `Authorization` header through
`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` environment variables
(git >= 2.31), which only the same user can read. Everything shown is redacted.

The mirror keeps every numbered commit under `refs/controlplane/keep/<sha>`, so a
force-push on the remote never takes away a commit that has a number.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from controlplane.adapters import runner
from controlplane.adapters.account import account_ids
from controlplane.adapters.files import chown_tree
from controlplane.adapters.gitaccess import (
    NETWORK_VARS,
    Access,
    access_for,
    agent_for,
    basic_credential,
    git_env,
    git_user,
    home_of,
    local_trust,
    own,
    ssh_command,
)
from controlplane.adapters.giterrors import (
    MIRROR,
    AuthFailed,
    BranchMissing,
    CommitMissing,
    GitError,
    HostKeyChanged,
    HostUnreachable,
    RepoNotFound,
    branch_missing,
    classify,
)
from controlplane.adapters.secrets import MASK, Redactor
from controlplane.domain.models import split_credentials
from controlplane.errors import CommandFailed
from controlplane.i18n import Text, tr

__all__ = [
    "NETWORK_VARS",
    "Access",
    "AuthFailed",
    "BranchMissing",
    "CommitMissing",
    "GitError",
    "HostKeyChanged",
    "HostUnreachable",
    "RepoNotFound",
    "access_for",
    "classify",
    "git_env",
    "git_user",
    "ssh_command",
]

logger = logging.getLogger(__name__)

KEEP_PREFIX = "refs/controlplane/keep/"
SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
USERINFO_RE = re.compile(r"(?<=://)[^/@\s]+@")
NETWORK_TIMEOUT = 120.0
LOCAL_TIMEOUT = 60.0


@dataclass(frozen=True)
class Remote:
    """A repository URL with its credential kept apart (never in repr, argv or logs)."""

    url: str
    auth: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str | Remote) -> Remote:
        """'https://user:tok@host/x.git' → Remote('https://host/x.git', auth='user:tok')."""
        if isinstance(url, Remote):
            return url
        clean, auth = split_credentials(url)
        return cls(clean, auth)

    def secrets(self) -> list[str]:
        """Every form in which the credential could show up in text."""
        if not self.auth:
            return []
        user, _, password = self.auth.partition(":")
        return [self.auth, basic_credential(self.auth), user, password]


@dataclass(frozen=True)
class Commit:
    """One commit as the numbering and the chat show it."""

    sha: str
    date: datetime
    author: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:7]


def redactor(secrets: Iterable[str], min_len: int = 4) -> runner.Redact:
    """A redact callable hiding each secret (longest first) and any URL user-info."""
    hide = Redactor(secrets, min_len=min_len, mask=MASK)

    def redact(text: str) -> str:
        return USERINFO_RE.sub(MASK + "@", hide(text))

    return redact


def _git(
    argv: list[str],
    *,
    remote: Remote | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = LOCAL_TIMEOUT,
    log: IO[str] | None = None,
    cancel: threading.Event | None = None,
    what: Text | str = "git",
    extra_env: Mapping[str, str] | None = None,
    access: Access | None = None,
) -> str:
    """Run one git command; failures become GitError subclasses (Cancelled passes through)."""
    access = access or Access()
    auth = remote.auth if remote else None
    redact = redactor(remote.secrets() if remote else [])
    if access.user is not None and "-C" in argv:
        own(Path(argv[argv.index("-C") + 1]), access.user)
    if access.known_hosts is not None:
        if access.user is not None:
            own(access.known_hosts.parent, access.user)
        else:
            access.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with agent_for(access) as agent, local_trust(remote.url if remote else None, access) as trust:
        ssh = ssh_command(access.known_hosts, agent)
        full_env = {
            **git_env(env, auth, privileged=access.privileged, ssh=ssh),
            **(extra_env or {}),
            **trust,
        }
        if access.user is not None:
            full_env["HOME"] = home_of(access.user)
        try:
            return runner.run(
                ["git", *argv],
                cwd="/",
                env=full_env,
                timeout=timeout,
                redact=redact,
                log=log,
                cancel=cancel,
                user=access.user,
            ).output
        except runner.Cancelled:
            raise
        except CommandFailed as exc:
            url = remote.url if remote else MIRROR
            raise classify(exc, redact(url), what) from None


def ls_remote_heads(
    url: str | Remote,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = NETWORK_TIMEOUT,
    cancel: threading.Event | None = None,
    access: Access | None = None,
) -> dict[str, str]:
    """Every branch of the remote and its head: {'main': sha, ...}."""
    remote = Remote.parse(url)
    out = _git(
        ["ls-remote", "--heads", "--", remote.url],
        remote=remote,
        env=env,
        timeout=timeout,
        cancel=cancel,
        what=tr("ls-remote"),
        access=access,
    )
    heads: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/") and SHA_RE.fullmatch(sha):
            heads[ref.removeprefix("refs/heads/")] = sha
    return heads


def ls_remote(
    url: str | Remote,
    branch: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = NETWORK_TIMEOUT,
    cancel: threading.Event | None = None,
    access: Access | None = None,
) -> str:
    """The sha of the branch head on the remote (one `git ls-remote` per call)."""
    remote = Remote.parse(url)
    heads = ls_remote_heads(remote, env=env, timeout=timeout, cancel=cancel, access=access)
    if branch not in heads:
        raise branch_missing(remote.url, branch, sorted(heads))
    return heads[branch]


def ensure_mirror(url: str | Remote, path: Path, *, access: Access | None = None) -> Path:
    """Create the bare mirror at `path` if missing; its origin is the credential-free URL.

    The mirror (and the project's known_hosts folder) belong to git's user."""
    remote = Remote.parse(url)
    access = access or Access()
    if access.user is not None:
        own(path, access.user)
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git(
            ["init", "--quiet", "--bare", "--", str(path)],
            what=tr("creating the mirror"),
            access=access,
        )
    _git(
        ["-C", str(path), "config", "remote.origin.url", remote.url],
        what=tr("mirror config"),
        access=access,
    )
    return path


def fetch(
    mirror: Path,
    url: str | Remote,
    branch: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = NETWORK_TIMEOUT,
    log: IO[str] | None = None,
    cancel: threading.Event | None = None,
    access: Access | None = None,
) -> str:
    """Fetch the branch into refs/heads/<branch> (forced, so a force-push is followed)."""
    remote = Remote.parse(url)
    refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
    try:
        _git(
            [
                "-C",
                str(mirror),
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                remote.url,
                refspec,
            ],
            remote=remote,
            env=env,
            timeout=timeout,
            log=log,
            cancel=cancel,
            what=tr("fetch"),
            access=access,
        )
    except GitError as exc:
        if "couldn't find remote ref" not in exc.tail.lower():
            raise
        raise branch_missing(remote.url, branch, None) from None
    head = resolve(mirror, f"refs/heads/{branch}", access=access)
    logger.info("fetched %s %s: head %s", remote.url, branch, head[:7])
    return head


def has_commit(mirror: Path, sha: str, *, access: Access | None = None) -> bool:
    """Whether the mirror holds the commit object."""
    try:
        _git(
            ["-C", str(mirror), "cat-file", "-e", "--end-of-options", f"{sha}^{{commit}}"],
            access=access,
        )
    except GitError:
        return False
    return True


def fetch_commit(
    mirror: Path,
    url: str | Remote,
    sha: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = NETWORK_TIMEOUT,
    log: IO[str] | None = None,
    cancel: threading.Event | None = None,
    access: Access | None = None,
) -> str:
    """Make sure the mirror has `sha` (a full sha); fetch it by id when it does not.

    Fetching by id works with protocol v2 servers (GitHub, git >= 2.26 upload-pack) even
    for a commit no branch points at any more. The fetched commit is kept under a keep ref.
    No `--depth`: a shallow mirror would cut the first-parent history used for numbering.
    """
    if not SHA_RE.fullmatch(sha):
        raise ValueError(f"fetch_commit needs a full sha, not {sha!r}")
    if not has_commit(mirror, sha, access=access):
        _fetch_by_id(
            mirror,
            Remote.parse(url),
            sha,
            env=env,
            timeout=timeout,
            log=log,
            cancel=cancel,
            access=access,
        )
    keep(mirror, [sha], access=access)
    return sha


def _fetch_by_id(
    mirror: Path,
    remote: Remote,
    sha: str,
    *,
    env: Mapping[str, str] | None,
    timeout: float,
    log: IO[str] | None,
    cancel: threading.Event | None,
    access: Access | None,
) -> None:
    argv = [
        "-C",
        str(mirror),
        "-c",
        "protocol.version=2",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--",
        remote.url,
        f"+{sha}:{KEEP_PREFIX}{sha}",
    ]
    try:
        _git(
            argv,
            remote=remote,
            env=env,
            timeout=timeout,
            log=log,
            cancel=cancel,
            what=tr("fetch commit"),
            access=access,
        )
    except GitError as exc:
        if type(exc) is not GitError:
            raise  # auth, host, repository: say that, not "commit missing"
        raise CommitMissing(
            tr(
                "commit {sha} is not on {url} any more (force-pushed away and cleaned up?)",
                sha=sha[:7],
                url=remote.url,
            ),
            url=remote.url,
            tail=exc.tail,
        ) from None
    logger.info("fetched commit %s from %s", sha[:7], remote.url)


def keep(mirror: Path, shas: Iterable[str], *, access: Access | None = None) -> None:
    """Pin commits in the mirror (refs/controlplane/keep/<sha>) so no fetch loses them."""
    for sha in shas:
        if not SHA_RE.fullmatch(sha):
            raise ValueError(f"keep needs full shas, not {sha!r}")
        # One call per sha: the runner gives children no stdin for `update-ref --stdin`.
        _git(
            ["-C", str(mirror), "update-ref", f"{KEEP_PREFIX}{sha}", sha],
            what=tr("keeping a commit"),
            access=access,
        )


def resolve(mirror: Path, rev: str, *, access: Access | None = None) -> str:
    """The full sha of a ref, a sha or a sha prefix in the mirror."""
    out = _git(
        [
            "-C",
            str(mirror),
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{rev}^{{commit}}",
        ],
        what=tr("finding {rev}", rev=rev),
        access=access,
    )
    return out.strip()


LOG_FORMAT = "%H%x1f%ct%x1f%an%x1f%s"


def _parse_log(out: str) -> list[Commit]:
    commits = []
    for line in out.splitlines():
        parts = line.split("\x1f")
        if len(parts) != 4:
            continue
        sha, stamp, author, subject = parts
        date = datetime.fromtimestamp(int(stamp), tz=UTC)
        commits.append(Commit(sha=sha, date=date, author=author, subject=subject))
    return commits


def first_parent_log(
    mirror: Path,
    ref: str,
    limit: int | None = None,
    *,
    since: str | None = None,
    access: Access | None = None,
) -> list[Commit]:
    """The commits on the first-parent line of `ref`, oldest first: all of them (the
    branch's first commit first), or the last `limit`.

    With `since` (a sha already numbered), only the commits after it: `since..ref`.
    One `git log` reads 10,000 commits in a fraction of a second.
    """
    rev = f"{since}..{ref}" if since else ref
    count = [f"--max-count={limit}"] if limit is not None else []
    out = _git(
        [
            "-C",
            str(mirror),
            "log",
            "--first-parent",
            *count,
            f"--format={LOG_FORMAT}",
            "--end-of-options",
            rev,
            "--",
        ],
        what=tr("reading history"),
        access=access,
    )
    return list(reversed(_parse_log(out)))


def commit_info(mirror: Path, sha: str, *, access: Access | None = None) -> Commit:
    """One commit's sha, date, author and subject."""
    out = _git(
        [
            "-C",
            str(mirror),
            "log",
            "--max-count=1",
            f"--format={LOG_FORMAT}",
            "--end-of-options",
            f"{sha}^{{commit}}",
            "--",
        ],
        what=tr("reading commit {sha}", sha=sha),
        access=access,
    )
    commits = _parse_log(out)
    if not commits:
        raise CommitMissing(tr("commit {sha} is not in the mirror", sha=sha), url=MIRROR, tail="")
    return commits[0]


def export(
    mirror: Path,
    sha: str,
    dest: Path,
    *,
    timeout: float = LOCAL_TIMEOUT,
    log: IO[str] | None = None,
    cancel: threading.Event | None = None,
    access: Access | None = None,
    owner: str | None = None,
) -> Path:
    """Write the commit's files into `dest` (created; must not exist), with no `.git`;
    the tree ends up owned by `owner` (None: this process's user).

    `read-tree -u` into a throw-away index checks the tree out the way a clone would: file
    modes kept, symlinks stay symlinks (git never writes through one), submodules left
    empty. The mirror's own (empty) index is never touched. git writes as its own user.
    """
    access = access or Access()
    dest.mkdir(parents=True, exist_ok=False)
    with tempfile.TemporaryDirectory(prefix="cp-index-") as tmp:
        if access.user is not None:
            uid, gid = account_ids(access.user)
            os.chown(tmp, uid, gid)
            os.chown(dest, uid, gid)
        _git(
            [
                "-C",
                str(mirror),
                f"--work-tree={dest}",
                "read-tree",
                "--reset",
                "-u",
                "--end-of-options",
                f"{sha}^{{tree}}",
            ],
            what=tr("exporting {sha}", sha=sha[:7]),
            timeout=timeout,
            log=log,
            cancel=cancel,
            extra_env={"GIT_INDEX_FILE": str(Path(tmp) / "index")},
            access=access,
        )
    if access.user != owner:
        chown_tree(dest, owner)
    return dest
