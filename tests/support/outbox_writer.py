"""A process that publishes and delivers events in a loop (run by tests/service/test_outbox,
killed at random): after each publish it prints `P seq`, after each acknowledgement
`A seq`, each once the call has returned."""

from __future__ import annotations

import sys

from controlplane.adapters.store import Store
from controlplane.domain.kinds import EventKind
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings


def main() -> None:
    data_dir, keep = sys.argv[1], int(sys.argv[2])
    outbox = Outbox(Store.open(Settings.from_env({"CONTROLPLANE_DATA_DIR": data_dir})), keep)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        event = outbox.publish(EventKind.DEPLOYED, "p", f"event {i}", i=i)
        print(f"P {event.seq}", flush=True)
        if i % 3:  # leave some events pending for the next run to deliver
            continue
        for pending in outbox.pending("bot"):
            outbox.ack("bot", pending.seq)
            print(f"A {pending.seq}", flush=True)


if __name__ == "__main__":
    main()
