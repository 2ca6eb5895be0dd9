"""The CLI's ways into the service layer besides the facade: the long-running processes
(`up`, `serve`, `events`), the master key and the store file, and handing a request to
serve (or, while serve is down, running one that may run here).

Each function imports what it needs when called: `controlplane status` must not pay for
supervisord's or the engine's imports (a CLI command starts in a fraction of a second).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from controlplane.service.control import ServeDown, request, result_message
from controlplane.service.requests import Op
from controlplane.settings import Settings

OnEvent = Callable[[dict[str, Any]], None]
# what may run in the CLI's own process while serve is down (design: configuration works on
# the store directly); every other operation needs serve
HERE_WHEN_DOWN = frozenset({Op.ADD, Op.LAUNCH, Op.REMOVE})


def up(settings: Settings) -> NoReturn:
    """Render $DATA/supervisord.conf and exec supervisord (the container's entrypoint).

    supervisord takes this process's place, so the signals sent to `up` (SIGTERM from
    `docker stop` or from make, SIGINT from Ctrl-C) reach supervisord itself, which stops
    every program before it exits. When a supervisord of this data dir answers already,
    nothing is touched: the error says so and how to stop it. The slot links are marked
    pending first: run-slot waits for serve to put them back (links.py).
    """
    from controlplane.adapters.supervisor.client import (
        already_running,
        exec_supervisord,
        running_supervisord,
        write_supervisord_conf,
    )
    from controlplane.adapters.supervisor.links import mark_links_pending
    from controlplane.errors import ControlPlaneError

    pid = running_supervisord(settings)
    if pid is not None:
        raise ControlPlaneError(already_running(settings, pid))
    write_supervisord_conf(settings)
    mark_links_pending(settings.supervisor_dir)
    exec_supervisord(settings)


def serve(settings: Settings) -> int:
    """The long-running control plane (supervisord runs it)."""
    from controlplane.service.serve import main

    return main(settings)


def events(settings: Settings) -> int:
    """supervisord's event listener (supervisord runs it)."""
    from controlplane.adapters.supervisor.events import main

    return main(settings)


def generate_key() -> str:
    """A new master key, for CONTROLPLANE_KEY."""
    from controlplane.adapters.secrets import generate_key as generate

    return generate()


@dataclass(frozen=True)
class Rotated:
    """Secrets re-encrypted under a new key; `from_file`: the key is $DATA/secret.key."""

    count: int
    from_file: bool


def rotate_key(settings: Settings) -> Rotated:
    """Re-encrypt every secret under a new key."""
    from controlplane.adapters.store import Store

    store = Store.open(settings)
    count = store.rotate_key()
    return Rotated(count, store.keyring.from_file)


def restore_store(settings: Settings) -> Path:
    """Put the last good copy of the store back; returns the copy's path. The store is not
    opened first (opening checks it, and it may be the damaged file), and no key is needed
    (a restore decrypts nothing): a missing or wrong key is `store check`'s to report."""
    from controlplane.adapters.secrets import KeyRing, generate_key
    from controlplane.adapters.store import Store
    from controlplane.errors import KeyringError

    try:
        keyring = KeyRing.load(settings)
    except KeyringError:
        keyring = KeyRing([generate_key()], "none")  # in memory only, never used
    return Store(settings, keyring).restore_backup()


def ask(
    settings: Settings,
    op: str,
    project: str | None,
    args: dict[str, Any],
    *,
    follow: bool = True,
    on_event: OnEvent | None = None,
) -> dict[str, Any]:
    """Hand a request to serve over its socket and return its result object (ok; text in
    English; msg, the Text as data), passing progress events to on_event. While serve is
    down, an add, launch or remove runs here, through the same facade and executor;
    anything else raises ServeDown."""
    payload = {"op": op, "project": project, "args": args, "follow": follow}
    try:
        return request(settings.control_sock, payload, on_event=on_event)
    except ServeDown:
        if op not in HERE_WHEN_DOWN:
            raise
    return here(settings, payload, on_event)


def here(settings: Settings, payload: dict[str, Any], on_event: OnEvent | None) -> dict[str, Any]:
    """Run a request in this process, followed to its end (what serve does for it)."""
    from controlplane.service.serve import local_service

    answer = local_service(settings).handle(payload)
    if isinstance(answer, dict):
        return answer
    for event in answer.follow():
        if on_event is not None:
            on_event(asdict(event))
    return dict(result_message(answer)["result"])
