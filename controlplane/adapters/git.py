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

import base64
import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from controlplane.adapters import runner, sshkeys
from controlplane.adapters.account import account_ids
from controlplane.adapters.files import chown_tree
from controlplane.adapters.secrets import MASK, Redactor
from controlplane.domain.models import split_credentials
from controlplane.errors import CommandFailed, ControlPlaneError
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

KEEP_PREFIX = "refs/controlplane/keep/"
SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
USERINFO_RE = re.compile(r"(?<=://)[^/@\s]+@")
NETWORK_TIMEOUT = 120.0
LOCAL_TIMEOUT = 60.0
# The only variables git is given beyond its fixed environment: how to reach a remote
# (proxies, certificates, slow-link limits). They come from the control plane's own
# environment (the operator's) and, only when git runs as an unprivileged user, from the
# project's variables. Nothing that loads or runs code (LD_PRELOAD, PYTHONPATH,
# GIT_SSH_COMMAND, GIT_CONFIG_*, BASH_ENV …) ever reaches git, whoever sets it.
NETWORK_VARS = frozenset(
    {
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_SSL_NO_VERIFY",
        "GIT_PROXY_SSL_CAINFO",
        "GIT_HTTP_LOW_SPEED_LIMIT",
        "GIT_HTTP_LOW_SPEED_TIME",
    }
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Access:
    """Who git runs as, and the per-project ssh settings it is given.

    `user` is the unprivileged account git switches to (we are root); None keeps this
    process's user. `deploy_key` (an OpenSSH private key) reaches ssh through an
    in-memory file, never a file on disk or a command line.
    """

    user: str | None = None
    known_hosts: Path | None = None
    deploy_key: str | None = field(default=None, repr=False)

    @property
    def privileged(self) -> bool:
        """Whether git would run as root (then no project value may reach it)."""
        if self.user is not None:
            return account_ids(self.user)[0] == 0
        return os.geteuid() == 0


def git_user(settings: Settings) -> str | None:
    """The account git runs as when we are root: CONTROLPLANE_GIT_USER, else the run-as
    user. None when we are not root (git runs as us) or no unprivileged user is set."""
    if os.geteuid() != 0:
        return None
    for name in (settings.git_user, settings.run_as):
        if name and name != "root":
            return name
    return None


class GitError(ControlPlaneError):
    """A git command failed; carries the credential-free URL and the tail of git's output."""

    def __init__(self, message: str, *, url: str, tail: str) -> None:
        super().__init__(message)
        self.url = url
        self.tail = tail


class AuthFailed(GitError):
    """The remote refused the credentials (or asked for some and none were given)."""


class RepoNotFound(GitError):
    """There is no repository at the URL (or it is private and no credentials were given)."""


class BranchMissing(GitError):
    """The repository exists but has no such branch; `branches` lists the ones it has."""

    def __init__(self, message: str, *, url: str, tail: str, branches: list[str]) -> None:
        super().__init__(message, url=url, tail=tail)
        self.branches = branches


class HostUnreachable(GitError):
    """The host did not answer: DNS, refused connection, proxy, TLS or a timeout."""


class HostKeyChanged(GitError):
    """The ssh host's key is not the one pinned on first use (a new key, or someone between)."""


class CommitMissing(GitError):
    """The commit is neither in the mirror nor fetchable from the remote."""


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
        return [self.auth, _basic(self.auth), user, password]


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


def _basic(auth: str) -> str:
    """The Basic credential git would send for 'user:password' (a lone token is the user)."""
    pair = auth if ":" in auth else auth + ":"
    return base64.b64encode(pair.encode()).decode()


def redactor(secrets: Iterable[str], min_len: int = 4) -> runner.Redact:
    """A redact callable hiding each secret (longest first) and any URL user-info."""
    hide = Redactor(secrets, min_len=min_len, mask=MASK)

    def redact(text: str) -> str:
        return USERINFO_RE.sub(MASK + "@", hide(text))

    return redact


def git_env(
    env: Mapping[str, str] | None = None,
    auth: str | None = None,
    *,
    privileged: bool | None = None,
    ssh: str | None = None,
) -> dict[str, str]:
    """The whole environment of a git call: a fixed base, the network settings (ours, then
    the project's when git is unprivileged), then our safety settings, which win."""
    if privileged is None:
        privileged = os.geteuid() == 0
    merged = {
        "PATH": os.environ.get("PATH") or DEFAULT_PATH,
        "HOME": os.environ.get("HOME", "/"),
        "LC_ALL": "C",
        "LANG": "C",
    }
    merged.update({k: v for k, v in os.environ.items() if k in NETWORK_VARS})
    if not privileged:
        merged.update({k: v for k, v in (env or {}).items() if k in NETWORK_VARS})
    config = [
        ("protocol.ext.allow", "never"),
        ("credential.helper", ""),
        ("core.hooksPath", "/dev/null"),
    ]
    if auth:
        config.append(("http.extraHeader", f"Authorization: Basic {_basic(auth)}"))
    merged.update(
        GIT_SSH_COMMAND=ssh or ssh_command(None, None),
        GIT_SSH_VARIANT="ssh",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ALLOW_PROTOCOL="https:http:ssh:git:file",
        GIT_CONFIG_COUNT=str(len(config)),
    )
    for i, (key, value) in enumerate(config):
        merged[f"GIT_CONFIG_KEY_{i}"] = key
        merged[f"GIT_CONFIG_VALUE_{i}"] = value
    return merged


def ssh_command(known_hosts: Path | None, agent: Agent | None) -> str:
    """The one ssh command git uses: no config files, no prompts; the project's deploy key
    only (held by a private agent for this one call); host keys pinned on first use in the
    project's own known_hosts."""
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
    argv += ["-o", "StrictHostKeyChecking=accept-new"]
    if known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
    if agent is not None:
        argv += ["-o", f"IdentityAgent={agent.socket}", "-i", str(agent.public)]
    else:
        argv += ["-o", "IdentityAgent=none"]
    return shlex.join(argv)


AUTH_MARKS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "error: 401",
    "error: 403",
    "permission denied (publickey",
    "invalid credentials",
)
NOT_FOUND_MARKS = (
    "repository not found",
    "does not appear to be a git repository",
    "error: 404",
    "not found",
    "no such file or directory",
)
HOST_MARKS = (
    "could not resolve",
    "failed to connect",
    "connection refused",
    "timed out",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "ssl",
    "proxy",
    "empty reply",
    "recv failure",
    "couldn't connect",
)


def classify(exc: CommandFailed, url: str, what: str) -> GitError:
    """Turn git's failure into an error a person can act on (url is credential-free)."""
    tail = "\n".join(exc.output.strip().splitlines()[-10:])
    low = tail.lower()
    if exc.timed_out:
        return HostUnreachable(
            f"{what}: {url} did not answer in time; check the network, the proxy variables "
            "(HTTPS_PROXY, NO_PROXY) or try again later",
            url=url,
            tail=tail,
        )
    if "host key verification failed" in low or "host identification has changed" in low:
        return HostKeyChanged(
            f"{what}: the ssh host key of {url} is not the one pinned at the first fetch; if the "
            "host really changed its key, forget the pinned key (`controlplane project key NAME "
            "--forget-hosts`) and compare the new fingerprint with the one the host publishes",
            url=url,
            tail=tail,
        )
    if any(m in low for m in AUTH_MARKS) and _is_ssh(url):
        return AuthFailed(
            f"{what}: {url} did not accept the project's deploy key: add it to the repository "
            "as a deploy key (`controlplane project key NAME` prints it; 🔑 in the bot)",
            url=url,
            tail=tail,
        )
    if any(m in low for m in AUTH_MARKS):
        return AuthFailed(
            f"{what}: authentication failed for {url}: check the token or password in the "
            "repository URL (and that it may read this repository)",
            url=url,
            tail=tail,
        )
    if any(m in low for m in NOT_FOUND_MARKS):
        return RepoNotFound(
            f"{what}: no repository at {url}: check the URL (a private repository also "
            "needs credentials)",
            url=url,
            tail=tail,
        )
    if any(m in low for m in HOST_MARKS):
        return HostUnreachable(
            f"{what}: cannot reach {url}: {tail.splitlines()[-1] if tail else 'no answer'}",
            url=url,
            tail=tail,
        )
    return GitError(f"{what} failed for {url}:\n{tail}", url=url, tail=tail)


def _is_ssh(url: str) -> bool:
    return url.startswith("ssh://") or (
        "://" not in url and re.match(r"[^/]+@[^/]+:", url) is not None
    )


def _git(
    argv: list[str],
    *,
    remote: Remote | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = LOCAL_TIMEOUT,
    log: IO[str] | None = None,
    cancel: threading.Event | None = None,
    what: str = "git",
    extra_env: Mapping[str, str] | None = None,
    access: Access | None = None,
) -> str:
    """Run one git command; failures become GitError subclasses (Cancelled passes through)."""
    access = access or Access()
    auth = remote.auth if remote else None
    redact = redactor(remote.secrets() if remote else [])
    if access.user is not None and "-C" in argv:
        _own(Path(argv[argv.index("-C") + 1]), access.user)
    if access.known_hosts is not None:
        if access.user is not None:
            _own(access.known_hosts.parent, access.user)
        else:
            access.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _agent(access) as agent, _local_trust(remote, access) as trust:
        ssh = ssh_command(access.known_hosts, agent)
        full_env = {
            **git_env(env, auth, privileged=access.privileged, ssh=ssh),
            **(extra_env or {}),
            **trust,
        }
        if access.user is not None:
            full_env["HOME"] = _home(access.user)
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
            url = remote.url if remote else "the mirror"
            raise classify(exc, redact(url), what) from None


@dataclass(frozen=True)
class Agent:
    """A private ssh-agent holding one deploy key: its socket and the key's public half
    (ssh's `-i` names the public file; the private half stays in the agent's memory)."""

    socket: Path
    public: Path


@contextmanager
def _agent(access: Access) -> Iterator[Agent | None]:
    """An ssh-agent, as git's user, holding the deploy key for the length of one git call.

    ssh closes every inherited file descriptor at start, so the key cannot be handed over
    as an open file; an agent fed through ssh-add's standard input keeps it off the disk
    and off every command line."""
    if access.deploy_key is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="cp-agent-"))
    try:
        if access.user is not None:
            os.chown(folder, *account_ids(access.user))
        agent = Agent(socket=folder / "agent.sock", public=folder / "key.pub")
        public = sshkeys.public_of(access.deploy_key, "deploy-key")
        agent.public.write_text(public + "\n")
        proc = subprocess.Popen(
            ["ssh-agent", "-D", "-a", str(agent.socket)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH") or DEFAULT_PATH},
            start_new_session=True,
            user=access.user,
            group=runner.primary_group(access.user) if access.user else None,
            extra_groups=[] if access.user else None,
        )
        try:
            _wait_for(agent.socket, proc)
            runner.run(
                ["ssh-add", "-q", "-"],
                env={
                    "PATH": os.environ.get("PATH") or DEFAULT_PATH,
                    "SSH_AUTH_SOCK": str(agent.socket),
                },
                stdin_text=access.deploy_key
                if access.deploy_key.endswith("\n")
                else access.deploy_key + "\n",
                timeout=30,
                user=access.user,
                cwd="/",
            )
            yield agent
        finally:
            proc.kill()
            proc.wait(timeout=10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(socket: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while not socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ControlPlaneError("ssh-agent did not start (is openssh-client installed?)")
        time.sleep(0.005)


@contextmanager
def _local_trust(remote: Remote | None, access: Access) -> Iterator[dict[str, str]]:
    """A local repository (file:// or a path; tests and local mirrors) owned by another
    user than git's: git refuses it as "dubious ownership" unless a global config names
    it as safe, so git gets a throw-away global config naming that one repository."""
    path = _local_path(remote.url) if remote is not None and access.user is not None else None
    if path is None:
        yield {}
        return
    with tempfile.NamedTemporaryFile("w", prefix="cp-gitconfig-", suffix=".cfg") as cfg:
        cfg.write(f"[safe]\n\tdirectory = {path}\n")
        cfg.flush()
        os.chmod(cfg.name, 0o644)
        yield {"GIT_CONFIG_GLOBAL": cfg.name}


def _local_path(url: str) -> str | None:
    if url.startswith("file://"):
        return url.removeprefix("file://")
    return url if url.startswith("/") else None


_OWNED: set[tuple[str, str]] = set()


def _own(path: Path, user: str) -> None:
    """A folder git works in belongs to git's user: made so, or handed over (a mirror
    from before git ran unprivileged); checked once per folder and process."""
    if (str(path), user) in _OWNED:
        return
    uid, _ = account_ids(user)
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid != uid:
        chown_tree(path, user)
    os.chmod(path, 0o700)
    _OWNED.add((str(path), user))


def _home(user: str) -> str:
    try:
        return pwd.getpwnam(user).pw_dir or "/"
    except KeyError:
        return "/"


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
        what="ls-remote",
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
        raise _branch_missing(remote.url, branch, sorted(heads))
    return heads[branch]


def _branch_missing(url: str, branch: str, branches: list[str]) -> BranchMissing:
    shown = ", ".join(branches[:20]) + (", …" if len(branches) > 20 else "")
    return BranchMissing(
        f"branch {branch} does not exist on {url}; branches: {shown or 'none (empty repository)'}",
        url=url,
        tail="",
        branches=branches,
    )


def ensure_mirror(url: str | Remote, path: Path, *, access: Access | None = None) -> Path:
    """Create the bare mirror at `path` if missing; its origin is the credential-free URL.

    The mirror (and the project's known_hosts folder) belong to git's user."""
    remote = Remote.parse(url)
    access = access or Access()
    if access.user is not None:
        _own(path, access.user)
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git(
            ["init", "--quiet", "--bare", "--", str(path)],
            what="creating the mirror",
            access=access,
        )
    _git(
        ["-C", str(path), "config", "remote.origin.url", remote.url],
        what="mirror config",
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
            what="fetch",
            access=access,
        )
    except GitError as exc:
        if "couldn't find remote ref" not in exc.tail.lower():
            raise
        raise _branch_missing(remote.url, branch, []) from None
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
            what="fetch commit",
            access=access,
        )
    except GitError as exc:
        if type(exc) is not GitError:
            raise  # auth, host, repository: say that, not "commit missing"
        raise CommitMissing(
            f"commit {sha[:7]} is not on {remote.url} any more (force-pushed away and cleaned up?)",
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
            what="keeping a commit",
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
        what=f"finding {rev}",
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
    limit: int = 20,
    *,
    since: str | None = None,
    access: Access | None = None,
) -> list[Commit]:
    """The last `limit` commits on the first-parent line of `ref`, oldest first.

    With `since` (a sha already numbered), only the commits after it: `since..ref`.
    """
    rev = f"{since}..{ref}" if since else ref
    out = _git(
        [
            "-C",
            str(mirror),
            "log",
            "--first-parent",
            f"--max-count={limit}",
            f"--format={LOG_FORMAT}",
            "--end-of-options",
            rev,
            "--",
        ],
        what="reading history",
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
        what=f"reading commit {sha}",
        access=access,
    )
    commits = _parse_log(out)
    if not commits:
        raise CommitMissing(f"commit {sha} is not in the mirror", url="the mirror", tail="")
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
            what=f"exporting {sha[:7]}",
            timeout=timeout,
            log=log,
            cancel=cancel,
            extra_env={"GIT_INDEX_FILE": str(Path(tmp) / "index")},
            access=access,
        )
    if access.user != owner:
        chown_tree(dest, owner)
    return dest
