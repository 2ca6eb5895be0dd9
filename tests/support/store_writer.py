"""A process that writes to the store in a loop (run by test_store, killed at random)."""

from __future__ import annotations

import sys

from controlplane.adapters.store import Store
from controlplane.settings import Settings


def main() -> None:
    data_dir, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store.open(Settings.from_env({"CONTROLPLANE_DATA_DIR": data_dir}))
    print("ready", flush=True)
    for i in range(count):
        store.set_env("p", "prod", {f"{prefix}_{i}": f"value-{prefix}-{i}-" + "x" * (i % 50)})
        store.update_project("p", keep=1 + i % 40)


if __name__ == "__main__":
    main()
