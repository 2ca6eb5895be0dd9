"""`controlplane nodes`: the swarm's nodes (`--json`), `nodes drain NODE`, `nodes activate
NODE`, `nodes label NODE KEY=VALUE|KEY-`.

The swarm is the one DOCKER_HOST (or the local Docker socket) reaches; without one, a
single line says so and where the docs tell how to set one up (exit status 1). Neither
the store nor serve is needed.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from controlplane.errors import ValidationError
from controlplane.i18n import DEFAULT, N_, t, tr
from controlplane.settings import Settings


def _nodes() -> Any:
    from controlplane.service.nodes import Nodes  # the docker SDK only when asked

    return Nodes()


def cmd_nodes(settings: Settings, args: argparse.Namespace) -> int:
    """nodes: every node, a block each (or JSON)."""
    from controlplane.service.nodes import describe, headline

    nodes = _nodes().list()
    if args.json:
        print(json.dumps([n.to_dict() for n in nodes], indent=2, sort_keys=True))
        return 0
    blocks = []
    for node in nodes:
        lines = [f"{node.hostname}  {headline(node).render(args.lang)}  ({node.id[:12]})"]
        lines += ["  " + line.render(args.lang) for line in describe(node)]
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))
    return 0


def _said(args: argparse.Namespace, msgid: str, node: Any) -> int:
    from controlplane.service.nodes import headline

    print(t(args.lang, msgid, node=node.hostname, state=headline(node)))
    return 0


def cmd_drain(settings: Settings, args: argparse.Namespace) -> int:
    node = _nodes().drain(args.node)
    return _said(args, N_("{node} drained ({state}): its tasks move to the other nodes"), node)


def cmd_activate(settings: Settings, args: argparse.Namespace) -> int:
    node = _nodes().activate(args.node)
    return _said(args, N_("{node} is active again ({state}): new tasks may run there"), node)


def cmd_label(settings: Settings, args: argparse.Namespace) -> int:
    """label NODE KEY=VALUE (set) or KEY- (remove)."""
    change: str = args.change
    if "=" in change and change.index("=") > 0:
        key, value = change.split("=", 1)
        node = _nodes().label(args.node, key, value)
    elif change.endswith("-") and len(change) > 1 and "=" not in change:
        node = _nodes().label(args.node, change[:-1], None)
    else:
        raise ValidationError(tr("label"), change, tr("KEY=VALUE to set it, KEY- to remove it"))
    labels = ", ".join(f"{k}={v}" for k, v in sorted(node.labels.items())) or "—"
    print(t(args.lang, "{node}'s labels: {labels}", node=node.hostname, labels=labels))
    return 0


def add_node_commands(sub: Any, add: Any, lang: str = DEFAULT) -> None:
    """Register `nodes` and its actions on the main parser (`add` is main._adder's)."""
    nodes = add(
        sub,
        "nodes",
        cmd_nodes,
        N_("the swarm's nodes: state, availability, labels, load; drain and activate"),
        json_flag=True,
    )
    actions = nodes.add_subparsers(dest="action", metavar="ACTION")
    for name, handler, msgid in (
        ("drain", cmd_drain, N_("move a node's tasks to the other nodes and keep it empty")),
        ("activate", cmd_activate, N_("let a drained or paused node run tasks again")),
    ):
        action = add(actions, name, handler, msgid)
        action.add_argument("node", help=t(lang, "the node's hostname or id"))
    label = add(
        actions, "label", cmd_label, N_("set a node's label (KEY=VALUE) or remove it (KEY-)")
    )
    label.add_argument("node", help=t(lang, "the node's hostname or id"))
    label.add_argument("change", metavar="KEY=VALUE|KEY-")
