"""The one exception hierarchy: every failure a person may see is a ControlPlaneError.

An error carries its message as a `Text` (`.text`): a msgid and the data it names, which
each face renders in its reader's language; `str()` is the English text, for the logs.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.i18n import Text, as_text, tr


class ControlPlaneError(Exception):
    """Root of every error the control plane raises on purpose; str() is for people."""

    def __init__(self, message: Text | str) -> None:
        self.text = as_text(message)
        self.message = str(self.text)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ValidationError(ControlPlaneError, ValueError):
    """A value a person typed is not accepted; the message says what is."""

    def __init__(self, field: Text | str, value: object, accepted: Text | str) -> None:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        super().__init__(
            tr("bad {field} {value}: {accepted}", field=field, value=shown, accepted=accepted)
        )
        self.field = field
        self.value = value
        self.accepted = accepted


class SettingsError(ControlPlaneError):
    """An environment variable holds a malformed value: `variable` names it, `value` is
    what it holds; the message says what is accepted."""

    def __init__(self, message: Text | str, *, variable: str = "", value: str = "") -> None:
        super().__init__(message)
        self.variable = variable
        self.value = value


class NotFound(ControlPlaneError):
    """A named thing (project, variable, release) does not exist."""


class AlreadyExists(ControlPlaneError):
    """A named thing exists already."""


class StoreError(ControlPlaneError):
    """The store cannot be read or written."""


class StoreCorrupt(StoreError):
    """A store file does not parse; `backup` is its last good copy (None: there is none),
    and the message names it."""

    def __init__(
        self, message: Text | str, *, path: Path | None = None, backup: Path | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.backup = backup


class StoreTooNew(StoreError):
    """The store was written by a newer version (`schema` above the one this reads):
    nothing is read or written."""

    def __init__(self, message: Text | str, *, schema: int = 0) -> None:
        super().__init__(message)
        self.schema = schema


class KeyringError(ControlPlaneError):
    """The master key is missing, malformed or does not decrypt the store."""


class KeyMissing(KeyringError):
    """The store exists but its key does not (no $DATA/secret.key, no CONTROLPLANE_KEY):
    no new key is made, since it could never open the store."""


class SupervisorError(ControlPlaneError):
    """supervisord refused a request or cannot be reached."""


class CommandFailed(ControlPlaneError):
    """A subprocess exited non-zero or timed out; carries what a person needs to act."""

    def __init__(
        self,
        *,
        argv: list[str],
        cwd: str | None,
        returncode: int | None,
        output: str,
        timed_out: bool = False,
    ) -> None:
        self.argv = argv
        self.cwd = cwd
        self.returncode = returncode
        self.output = output
        self.timed_out = timed_out
        command, tail = " ".join(argv), "\n".join(output.splitlines()[-5:])
        if timed_out:
            message = tr("{command} timed out", command=command)
        else:
            message = tr(
                "{command} exited with status {status}", command=command, status=returncode
            )
        if cwd:
            message = tr("{what} in {folder}", what=message, folder=cwd)
        if tail:
            message = tr("{what}:\n{output}", what=message, output=tail)
        super().__init__(message)
