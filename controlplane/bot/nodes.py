"""🖥 Nodes: the swarm's nodes, one block each, with ⏸ Drain / ▶️ Activate behind a
single-use confirmation (confirm.py), 🔄 Refresh and ⬅️ Back.

The button is on the main menu only while a swarm manager is reachable (service/nodes.py
`Nodes.shown`, asked at most every few minutes), so the admin of a one-box install never
sees it. Callback data: 'nn' (the list), 'nn|d|NODEID' / 'nn|a|NODEID' (the question),
'nn!|NODEID|d|TOKEN' (its Yes). Both routes are global (buttons.py GLOBAL): the press is
answered before they run, so what they have to say comes in the message, not a toast.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from controlplane.bot import confirm, screens
from controlplane.bot.callbacks import Cb, parts
from controlplane.bot.context import blocking, chat_of, deps
from controlplane.bot.texts import error, t, text
from controlplane.bot.views import ask, show
from controlplane.errors import ControlPlaneError
from controlplane.service.nodes import Node, describe, headline

Ctx = ContextTypes.DEFAULT_TYPE
BLOCKS_BUDGET = 3300  # the list in full blocks while it fits; one line a node beyond
BUTTON_ROWS = 40  # nodes with a Drain/Activate button (Telegram takes 100 buttons)
VERBS = {"d": "drain", "a": "active"}


def node_block(lang: str, node: Node, full: bool) -> str:
    head = t(lang, "<b>{node}</b> · {state}", node=node.hostname, state=headline(node))
    if not full:
        return head
    return "\n".join([head] + [text(lang, line) for line in describe(node)])


def nodes_screen(lang: str, nodes: list[Node], said: str = "") -> screens.Screen:
    """The list: a block per node (one line each when they would not fit a message)."""
    full = [node_block(lang, n, True) for n in nodes]
    if sum(len(b) for b in full) > BLOCKS_BUDGET:
        full = [node_block(lang, n, False) for n in nodes]
    title = t(lang, "🖥 <b>Nodes of the swarm</b> ({n})", n=len(nodes))
    body = "\n\n".join([*([said] if said else []), title, *full])
    rows: list[list[InlineKeyboardButton]] = []
    for node in nodes[:BUTTON_ROWS]:
        if node.availability == "drain":
            label, verb = t(lang, "▶️ Activate {node}", node=node.hostname), "a"
        else:
            label, verb = t(lang, "⏸ Drain {node}", node=node.hostname), "d"
        rows.append([screens.button(label, Cb.NODES, verb, node.id)])
    rows.append(
        [
            screens.button(t(lang, "🔄 Refresh"), Cb.NODES),
            screens.button(t(lang, "⬅️ Back"), Cb.MENU),
        ]
    )
    return body, InlineKeyboardMarkup(rows)


def back(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[screens.button(t(lang, "⬅️ Back"), Cb.NODES)]])


async def screen_nodes(update: Update, context: Ctx) -> None:
    """🖥 Nodes ('nn'), or the question before a drain or an activation ('nn|d|ID')."""
    d = deps(context)
    lang = d.lang(chat_of(update))
    query = update.callback_query
    values = parts(query.data)[1:] if query is not None and query.data else []
    try:
        nodes = await blocking(d.service.nodes.list)
    except ControlPlaneError as exc:
        await show(update, error(lang, exc), back_to_menu(lang))
        return
    if len(values) == 2 and values[0] in VERBS:
        await ask_change(update, context, lang, nodes, values[0], values[1])
        return
    await show(update, *nodes_screen(lang, nodes))


def back_to_menu(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[screens.button(t(lang, "⬅️ Back"), Cb.MENU)]])


async def ask_change(
    update: Update, context: Ctx, lang: str, nodes: list[Node], verb: str, node_id: str
) -> None:
    node = next((n for n in nodes if n.id == node_id), None)
    if node is None:
        said = t(lang, "⚠️ That node is no longer in the swarm.")
        await show(update, *nodes_screen(lang, nodes, said))
        return
    if verb == "d":
        question = t(
            lang,
            "Drain <b>{node}</b>? Swarm moves its tasks to the other nodes and starts "
            "nothing there until it is activated.",
            node=node.hostname,
        )
    else:
        question = t(
            lang,
            "Activate <b>{node}</b>? Swarm may start tasks there again (the running ones "
            "do not move back by themselves).",
            node=node.hostname,
        )
    await ask(update, context, question, (Cb.NODES_YES, node.id, verb), (Cb.NODES,))


async def nodes_yes(update: Update, context: Ctx) -> None:
    """The Yes of a drain or an activation: acts once (confirm.py), then the list again
    with what was done (or why not) above it."""
    d = deps(context)
    lang = d.lang(chat_of(update))
    query = update.callback_query
    assert query is not None and query.data is not None
    claim = await blocking(
        confirm.registry(context.application.bot_data).claim, chat_of(update), query.data
    )
    if not claim.ok or len(claim.parts) != 3 or claim.parts[2] not in VERBS:
        said = t(lang, "This confirmation was used already or has expired; nothing was done.")
        await show(update, said, back(lang))
        return
    node_id, verb = claim.parts[1], claim.parts[2]
    try:
        node = await blocking(d.service.nodes.set_availability, node_id, VERBS[verb])
        nodes = await blocking(d.service.nodes.list)
    except ControlPlaneError as exc:
        await show(update, error(lang, exc), back(lang))
        return
    await show(update, *nodes_screen(lang, nodes, done(lang, node)))


def done(lang: str, node: Node) -> str:
    if node.availability == "drain":
        return t(
            lang, "⏸ <b>{node}</b> drained: its tasks move to the other nodes.", node=node.hostname
        )
    return t(lang, "▶️ <b>{node}</b> is active again.", node=node.hostname)
