"""What a failed git command means: a small hierarchy of errors a person can act on,
and the classification of git's own words into them.

Each error keeps its data (the credential-free `url`, the `tail` of git's output, a
missing branch's `branches`); its message is a Text made from that data, and git's own
words in it stay as git wrote them.
"""

from __future__ import annotations

import re

from controlplane.errors import CommandFailed, ControlPlaneError
from controlplane.i18n import Text, tr

MIRROR = "the mirror"  # the url of errors about the local mirror (no remote involved)


class GitError(ControlPlaneError):
    """A git command failed; carries the credential-free URL and the tail of git's output."""

    def __init__(self, message: Text | str, *, url: str, tail: str) -> None:
        super().__init__(message)
        self.url = url
        self.tail = tail


class AuthFailed(GitError):
    """The remote refused the credentials (or asked for some and none were given)."""


class RepoNotFound(GitError):
    """There is no repository at the URL (or it is private and no credentials were given)."""


class BranchMissing(GitError):
    """The repository exists but has no such branch; `branches` lists the ones it has."""

    def __init__(
        self,
        message: Text | str,
        *,
        url: str,
        tail: str,
        branches: list[str],
        branch: str = "",
    ) -> None:
        super().__init__(message, url=url, tail=tail)
        self.branches = branches
        self.branch = branch


class HostUnreachable(GitError):
    """The host did not answer: DNS, refused connection, proxy, TLS or a timeout."""


class HostKeyChanged(GitError):
    """The ssh host's key is not the one pinned on first use (a new key, or someone between)."""


class CommitMissing(GitError):
    """The commit is neither in the mirror nor fetchable from the remote."""


def place(url: str) -> Text | str:
    """The url as a person reads it: the mirror is named in their language."""
    return tr("the mirror") if url == MIRROR else url


def branch_missing(url: str, branch: str, branches: list[str] | None) -> BranchMissing:
    """The branch is not on the remote; the message lists (up to 20 of) the ones that are
    (`branches` None: they are not known, a fetch found no such ref)."""
    if branches is None:
        message = tr("branch {branch} does not exist on {url}", branch=branch, url=place(url))
    elif branches:
        shown = ", ".join(branches[:20]) + (", …" if len(branches) > 20 else "")
        message = tr(
            "branch {branch} does not exist on {url}; branches: {branches}",
            branch=branch,
            url=place(url),
            branches=shown,
        )
    else:
        message = tr(
            "branch {branch} does not exist on {url}; branches: none (empty repository)",
            branch=branch,
            url=place(url),
        )
    return BranchMissing(message, url=url, tail="", branches=branches or [], branch=branch)


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


def classify(exc: CommandFailed, url: str, what: Text | str) -> GitError:
    """Turn git's failure into an error a person can act on (url is credential-free;
    `what` names the step, e.g. tr("reading history"))."""
    tail = "\n".join(exc.output.strip().splitlines()[-10:])
    low = tail.lower()
    kind, message = _meaning(exc.timed_out, low, url, tail, what)
    return kind(message, url=url, tail=tail)


def _meaning(
    timed_out: bool, low: str, url: str, tail: str, what: Text | str
) -> tuple[type[GitError], Text]:
    where = place(url)
    if timed_out:
        return HostUnreachable, tr(
            "{what}: {url} did not answer in time; check the network, the proxy variables "
            "(HTTPS_PROXY, NO_PROXY) or try again later",
            what=what,
            url=where,
        )
    if "host key verification failed" in low or "host identification has changed" in low:
        return HostKeyChanged, tr(
            "{what}: the ssh host key of {url} is not the one pinned at the first fetch; if "
            "the host really changed its key, forget the pinned key (`controlplane project "
            "key NAME --forget-hosts`) and compare the new fingerprint with the one the host "
            "publishes",
            what=what,
            url=where,
        )
    if any(m in low for m in AUTH_MARKS) and is_ssh(url):
        return AuthFailed, tr(
            "{what}: {url} did not accept the project's deploy key: add it to the repository "
            "as a deploy key (`controlplane project key NAME` prints it; 🔑 in the bot)",
            what=what,
            url=where,
        )
    if any(m in low for m in AUTH_MARKS):
        return AuthFailed, tr(
            "{what}: authentication failed for {url}: check the token or password in the "
            "repository URL (and that it may read this repository)",
            what=what,
            url=where,
        )
    if any(m in low for m in NOT_FOUND_MARKS):
        return RepoNotFound, tr(
            "{what}: no repository at {url}: check the URL (a private repository also "
            "needs credentials)",
            what=what,
            url=where,
        )
    if any(m in low for m in HOST_MARKS):
        reason = tail.splitlines()[-1] if tail else tr("no answer")
        return HostUnreachable, tr(
            "{what}: cannot reach {url}: {reason}", what=what, url=where, reason=reason
        )
    return GitError, tr("{what} failed for {url}:\n{output}", what=what, url=where, output=tail)


def is_ssh(url: str) -> bool:
    return url.startswith("ssh://") or (
        "://" not in url and re.match(r"[^/]+@[^/]+:", url) is not None
    )
