"""`python -m controlplane` and the `controlplane` command: `run-slot` straight to
controlplane.runslot, everything else to the CLI.

supervisord starts every app through `run-slot` (on each start, restart and rollback), so
it skips the CLI's parser and imports: a slot starts sooner. This module sits outside the
layers; it only picks the way in.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

RUN_SLOT = "run-slot"
SLOTS = ("prod", "test")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `controlplane` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 3 and args[0] == RUN_SLOT and args[2] in SLOTS and args[1][:1] != "-":
        return run_slot(args[1], args[2])
    # anything else, a malformed run-slot and its --help included, is the CLI's to parse
    from controlplane.cli.main import main as cli

    return cli(args)


def run_slot(name: str, slot: str) -> int:
    """Exec a slot's app with its variables (supervisord calls this); a failure is one
    line on stderr (in the locale's language) and exit status 1. Nothing but
    controlplane.runslot is imported (its lean way reads the environment itself)."""
    from controlplane.runslot import main as run

    return run(name, slot)


if __name__ == "__main__":
    raise SystemExit(main())
