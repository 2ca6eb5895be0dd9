"""The one exception hierarchy: every failure a person may see is a ControlPlaneError."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Root of every error the control plane raises on purpose; str() is for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ValidationError(ControlPlaneError, ValueError):
    """A value a person typed is not accepted; the message says what is."""

    def __init__(self, field: str, value: object, accepted: str) -> None:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        super().__init__(f"bad {field} {shown}: {accepted}")
        self.field = field
        self.value = value
        self.accepted = accepted


class SettingsError(ControlPlaneError):
    """An environment variable holds a malformed value."""


class NotFound(ControlPlaneError):
    """A named thing (project, variable, release) does not exist."""


class AlreadyExists(ControlPlaneError):
    """A named thing exists already."""


class StoreError(ControlPlaneError):
    """The store cannot be read or written."""


class StoreCorrupt(StoreError):
    """The store file does not parse; the message names the last good copy."""


class KeyringError(ControlPlaneError):
    """The master key is missing, malformed or does not decrypt the store."""


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
        what = "timed out" if timed_out else f"exited with status {returncode}"
        tail = "\n".join(output.splitlines()[-5:])
        message = f"{' '.join(argv)} {what}" + (f" in {cwd}" if cwd else "")
        if tail:
            message += f":\n{tail}"
        super().__init__(message)
