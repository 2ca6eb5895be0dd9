"""Who git runs as and what it is given: the unprivileged account, a fixed environment
with only network settings added, the one ssh command (deploy key held by a private
ssh-agent for one call, host keys pinned per project), and trust for a local repository
owned by another user. See docs/security.md, "The trust boundary".
"""

from __future__ import annotations

import base64
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.adapters import runner, sshkeys
from controlplane.adapters.account import account_ids
from controlplane.adapters.files import chown_tree
from controlplane.errors import ControlPlaneError
from controlplane.i18n import tr
from controlplane.settings import Settings

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


def access_for(settings: Settings, name: str, deploy_key: str | None) -> Access:
    """git for project `name`: as its unprivileged user, with the project's pinned host
    keys and its deploy key (which the caller reads from the store)."""
    return Access(
        user=git_user(settings),
        known_hosts=settings.layout.known_hosts(name),
        deploy_key=deploy_key,
    )


def git_user(settings: Settings) -> str | None:
    """The account git runs as when we are root: CONTROLPLANE_GIT_USER, else the run-as
    user. None when we are not root (git runs as us) or no unprivileged user is set."""
    if os.geteuid() != 0:
        return None
    for name in (settings.git_user, settings.run_as):
        if name and name != "root":
            return name
    return None


def basic_credential(auth: str) -> str:
    """The Basic credential git would send for 'user:password' (a lone token is the user)."""
    pair = auth if ":" in auth else auth + ":"
    return base64.b64encode(pair.encode()).decode()


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
        config.append(("http.extraHeader", f"Authorization: Basic {basic_credential(auth)}"))
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


@dataclass(frozen=True)
class Agent:
    """A private ssh-agent holding one deploy key: its socket and the key's public half
    (ssh's `-i` names the public file; the private half stays in the agent's memory)."""

    socket: Path
    public: Path


@contextmanager
def agent_for(access: Access) -> Iterator[Agent | None]:
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
            raise ControlPlaneError(tr("ssh-agent did not start (is openssh-client installed?)"))
        time.sleep(0.005)


@contextmanager
def local_trust(url: str | None, access: Access) -> Iterator[dict[str, str]]:
    """A local repository (file:// or a path; tests and local mirrors) owned by another
    user than git's: git refuses it as "dubious ownership" unless a global config names
    it as safe, so git gets a throw-away global config naming that one repository."""
    path = _local_path(url) if url is not None and access.user is not None else None
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


def own(path: Path, user: str) -> None:
    """A folder git works in belongs to git's user: made so, or handed over (a mirror
    from before git ran unprivileged); checked once per folder and process, and again
    when the folder is gone (a project removed and added again under its name)."""
    if (str(path), user) in _OWNED and path.is_dir():
        return
    uid, _ = account_ids(user)
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid != uid:
        chown_tree(path, user)
    os.chmod(path, 0o700)
    _OWNED.add((str(path), user))


def home_of(user: str) -> str:
    try:
        return pwd.getpwnam(user).pw_dir or "/"
    except KeyError:
        return "/"
