"""Loaded by supervisord itself, not by the control plane: `[rpcinterface:controlplane]`
in supervisord.conf (rendered only when supervisord runs from this package's environment,
so the import cannot fail there).

One method, `controlplane.allProcessInfo`: what `supervisor.getAllProcessInfo` answers,
as one compact JSON string. With 1,000 programs getAllProcessInfo's answer is 1.2 MB of
XML-RPC structs, and supervisord sends it 4 kB at a time, one pass of its main loop (which
visits every program) per piece: 0.5-0.9 s here. The same rows as one JSON string are
about 70 kB, 35-50 ms. The values are supervisord's own (its getAllProcessInfo is called
in-process); only the encoding differs. Nothing here writes or changes anything.

Only the standard library and supervisor are imported: this runs inside supervisord.
"""

from __future__ import annotations

import json
from typing import Any

# the order of a row (client.process_rows reads it back)
FIELDS = (
    "name",
    "group",
    "statename",
    "pid",
    "start",
    "stop",
    "now",
    "exitstatus",
    "description",
    "spawnerr",
)


class ControlPlaneRPC:
    """The `controlplane` namespace of supervisord's XML-RPC interface."""

    def __init__(self, supervisord: Any) -> None:
        from supervisor.rpcinterface import SupervisorNamespaceRPCInterface

        self._main = SupervisorNamespaceRPCInterface(supervisord)

    def allProcessInfo(self) -> str:  # an XML-RPC method's name: camelCase, as supervisor's
        """Every program's getProcessInfo row as a JSON array of arrays (FIELDS order)."""
        rows = self._main.getAllProcessInfo()
        return json.dumps([[row.get(f, "") for f in FIELDS] for row in rows], separators=(",", ":"))


def make(supervisord: Any, **config: Any) -> ControlPlaneRPC:
    """supervisord's rpcinterface factory."""
    return ControlPlaneRPC(supervisord)
