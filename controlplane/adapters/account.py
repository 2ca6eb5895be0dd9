"""Accounts from the password database: who an app, a build or git runs as.

On the restart path (run-slot): it imports only the standard library, the domain and the
errors (with the translation core they carry their messages in).
"""

from __future__ import annotations

import os
import pwd

from controlplane.domain.appenv import Account
from controlplane.errors import ControlPlaneError
from controlplane.i18n import tr


class UnknownUser(ControlPlaneError):
    """The configured run-as user does not exist."""

    def __init__(self, user: str) -> None:
        super().__init__(
            tr(
                "user {user} (CONTROLPLANE_RUN_AS) does not exist; create it or unset it",
                user=repr(user),
            )
        )
        self.user = user


def lookup_account(run_as: str | None) -> Account:
    """The run-as user, or the current one when none is set."""
    try:
        pw = pwd.getpwnam(run_as) if run_as else pwd.getpwuid(os.getuid())
    except KeyError:
        raise UnknownUser(run_as or str(os.getuid())) from None
    return Account(name=pw.pw_name, uid=pw.pw_uid, gid=pw.pw_gid, home=pw.pw_dir)


def account_ids(user: str | None) -> tuple[int, int]:
    """(uid, gid) of `user`, or of this process for None."""
    if user is None:
        return os.getuid(), os.getgid()
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid
