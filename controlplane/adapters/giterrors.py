"""What a failed git command means: a small hierarchy of errors a person can act on,
and the classification of git's own words into them."""

from __future__ import annotations

import re

from controlplane.errors import CommandFailed, ControlPlaneError


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
    if any(m in low for m in AUTH_MARKS) and is_ssh(url):
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


def is_ssh(url: str) -> bool:
    return url.startswith("ssh://") or (
        "://" not in url and re.match(r"[^/]+@[^/]+:", url) is not None
    )
