"""One message per operation, edited in place as it advances, within Telegram's limits.

The message shows the operation's recent steps and the last lines of command output; a
test run shows a live card (state, elapsed of total, restarts, memory, errors) that ends
as a verdict card with Promote, Discard. Edits are throttled, and "message is not
modified" is harmless. `start_op` hands an operation to the facade and opens its message.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from collections import deque
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from controlplane.bot import cards
from controlplane.bot.callbacks import Cb, cb
from controlplane.bot.context import Deps, Throttle, blocking, chat_of, deps
from controlplane.bot.render import fit, pre
from controlplane.bot.retry import retried
from controlplane.bot.texts import N_, Html, t, text, tn
from controlplane.domain.kinds import ProgressKind, op_name
from controlplane.domain.verdict import Verdict, verdict_lines
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, tr, verbatim
from controlplane.service.facade import CANCELLED, OK, RUNNING, Op, Operation

logger = logging.getLogger(__name__)

# an app's error line (controlplane.domain.verdict.error_lines): the app's words in <code>
CODE_LINES = {
    "{count}× {error} ({where})": N_("{count}× <code>{error}</code> ({where})"),
    "{count}× {error}": N_("{count}× <code>{error}</code>"),
    "what failed: {line}": N_("what failed: <code>{line}</code>"),  # a tool's words
}
EDIT_EVERY = 1.5
STEPS_SHOWN = 6
LINES_SHOWN = 30
throttle = Throttle(EDIT_EVERY)


# the live card's progress lines that the next of their kind replaces (one line of
# progress, not six near-identical ones): a build step running, the test's state line
RUNNING_STEP = "{step}: running…"
LIVE_STATE = (
    "{state} {elapsed} of {total} · restarts {restarts} · {memory} {kind} · errors {errors}"
)
CHECK_STEP = "check: {command}"
BUILD_STEP = "build #{n} {sha}"


def step_key(value: Text) -> str:
    """What kind of progress line a step is: its msgid (a joined line: its first part's)."""
    first = value.values.get("p0")
    if value.msgid.startswith("{p0}") and isinstance(first, Text):
        return first.msgid
    return value.msgid


class Card:
    """What an operation's message shows so far: its steps (Texts, shown in the chat's
    language; a running step and the test's state line replaced by the next of their
    kind) and the output of the last command that printed any: its last 30 lines (shown
    as they are) and how many above them were left out. A command's output starts with
    a build step, a check, or the app's run in a test; `output` False (the project's
    switch off) shows no line of output at all."""

    def __init__(self, op: Operation, output: bool = True) -> None:
        self.op = op
        self.output = output
        self.steps: deque[Text] = deque(maxlen=STEPS_SHOWN)
        self.lines: deque[str] = deque(maxlen=LINES_SHOWN)
        self.omitted = 0
        self.seq = 0
        self.title: Text | None = None  # whose output the lines are
        self.next_title: Text | None = None  # a command began: its first line starts anew
        self.built: int | None = None  # the commit this operation built, for its 📎

    def take(self, events: list[Any]) -> None:
        for event in events:
            if event.seq > self.seq + 1 and self.seq and self.lines:
                self.omitted += event.seq - self.seq - 1  # dropped while the card slept
            self.seq = event.seq
            if event.kind == ProgressKind.LOG and self.output:
                self.line(event.text)
            elif event.kind == ProgressKind.STEP:
                self.step(event.message)

    def line(self, row: str) -> None:
        if self.next_title is not None:
            self.lines.clear()
            self.omitted, self.title, self.next_title = 0, self.next_title, None
        if len(self.lines) == LINES_SHOWN:
            self.omitted += 1
        self.lines.append(row)

    def step(self, value: Text) -> None:
        key = step_key(value)
        last = step_key(self.steps[-1]) if self.steps else None
        if key == RUNNING_STEP:
            self.next_title = value.values.get("step")
        elif key == CHECK_STEP:
            self.next_title = verbatim(str(value.values.get("command", "")))
        elif key == LIVE_STATE and last != LIVE_STATE:
            self.next_title = tr(APP_OUTPUT)
        elif key == BUILD_STEP:
            self.built = int(value.values.get("n", 0)) or None
        if last == RUNNING_STEP or (last == LIVE_STATE and key == LIVE_STATE):
            self.steps.pop()
        self.steps.append(value)

    def body(self, lang: str, verdict: dict[str, Any] | None = None, n: int | None = None) -> str:
        op = self.op
        done = verdict is not None and op.done
        head = verdict_head(lang, op, verdict, n) if done and verdict else op_head(lang, op)
        steps = "\n".join(f"• {shown(lang, s)}" for s in self.steps)
        parts = [head, steps]
        if self.lines:
            title = "…" if self.title is None else shown(lang, self.title)
            if self.title is not None and self.title.verbatim:  # a command line
                title = f"<code>{title}</code>"
            block = pre(list(self.lines))  # long lines: fewer kept, counted as above
            above = self.omitted + len(self.lines) - (block.count("\n") + 1 if block else 0)
            if above:
                parts.append(
                    tn(
                        lang,
                        "{title}: … {n} line above",
                        "{title}: … {n} lines above",
                        above,
                        title=Html(title),
                    )
                )
            else:
                parts.append(t(lang, "{title}:", title=Html(title)))
            parts.append(block)
        return fit("\n".join(p for p in parts if p))


APP_OUTPUT = N_("the app")


def shown(lang: str, value: Text) -> str:
    """A Text from below in the chat's language, HTML-escaped; an app's error line in it
    (the live card's state, the verdict's evidence) keeps the app's own words in <code>,
    as they are no words of ours to translate."""
    if value.msgid in CODE_LINES:
        return t(lang, CODE_LINES[value.msgid], **value.values)
    inner = [v for v in value.values.values() if isinstance(v, Text)]
    if value.verbatim or not any(v.msgid in (*CODE_LINES, LIVE_STATE) for v in inner):
        return text(lang, value)
    values = {
        k: Html(shown(lang, v)) if isinstance(v, Text) else v for k, v in value.values.items()
    }
    return t(lang, value.msgid, **values)


def op_head(lang: str, op: Operation) -> str:
    """The card's first line: the operation, its project and how it stands."""
    name = op_name(op.op)
    if op.state == RUNNING:
        return t(lang, "⏳ <b>{op}</b> {name}", op=name, name=op.project)
    if op.state == CANCELLED:
        return t(lang, "✖️ <b>{op}</b> {name}: cancelled", op=name, name=op.project)
    key = (
        N_("✅ <b>{op}</b> {name}: {text}")
        if op.state == OK
        else N_("❌ <b>{op}</b> {name}: {text}")
    )
    said = text(lang, op.result_text)
    named = f"{html.escape(op.project, quote=False)}: "
    if said.startswith(named):  # "shop: deployed to #3": the head names the project already
        said = said[len(named) :]
    return t(lang, key, op=name, name=op.project, text=Html(said))


def verdict_head(lang: str, op: Operation, data: dict[str, Any], n: int | None) -> str:
    """A test's verdict: passed, failed or cancelled, why, and what it rests on."""
    verdict = Verdict.from_dict(data)
    key = {
        "passed": N_("✅ <b>Test of {name} #{n} passed</b>\n{reason}"),
        "failed": N_("❌ <b>Test of {name} #{n} failed</b>\n{reason}"),
        "cancelled": N_("✖️ <b>Test of {name} #{n} cancelled</b>\n{reason}"),
    }[verdict.outcome]
    head = t(lang, key, name=op.project, n=n, reason=verdict.reason_text)
    lines = [f"  {shown(lang, line)}" for line in verdict_lines(verdict)]
    return "\n".join([head, *lines])


def buttons(d: Deps, op: Operation, lang: str) -> InlineKeyboardMarkup | None:
    """Extend and cancel while a test runs; Discard once it has a verdict, and Promote
    for a pass that ran its whole time, unless the policy promotes it by itself or prod
    runs it already."""
    if op.op not in (Op.TEST, Op.NEW_COMMIT):
        return None
    if op.state == RUNNING:
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        t(lang, "⏳ Extend +{seconds}s", seconds=60),
                        callback_data=cb(Cb.EXTEND, op.project, 60),
                    ),
                    InlineKeyboardButton(
                        t(lang, "✖️ Cancel"), callback_data=cb(Cb.CANCEL, op.project)
                    ),
                ]
            ]
        )
    state = d.service.query.state(op.project)
    run = state.test_run or {}
    verdict = state.test_verdict
    if state.test is None or verdict is None:
        return None
    row = [InlineKeyboardButton(t(lang, "🗑 Discard"), callback_data=cb(Cb.DISCARD, op.project))]
    if verdict.promotable and not run.get("auto_promote") and state.prod != state.test:
        row.insert(
            0,
            InlineKeyboardButton(
                t(lang, "✅ Promote #{n}", n=state.test), callback_data=cb(Cb.PROMOTE, op.project)
            ),
        )
    return InlineKeyboardMarkup([row])


async def edit(
    bot: Any, at: tuple[int, int], text: str, markup: InlineKeyboardMarkup | None
) -> bool:
    """Edit the card at (chat, message), retried on network errors; False when it failed."""
    chat_id, message_id = at
    try:
        await retried(
            lambda: bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode="HTML", reply_markup=markup
            ),
            "editing a card",
        )
    except BadRequest as exc:
        if "not modified" not in str(exc):
            logger.warning("could not edit the progress message: %s", exc)
            return False
    except TelegramError as exc:
        logger.warning("could not edit the progress message: %s", exc)
        return False
    return True


async def follow(
    bot: Any, d: Deps, chat_id: int, op: Operation, message_id: int | None = None
) -> None:
    """Post the operation's message (or take up `message_id`) and keep it current until the
    operation ends. The card is kept in the store while it is live (cards.py), so a card
    cut short by a restart is ended at the next start."""
    lang = d.lang(chat_id)
    card = Card(op, await blocking(output_on, d, op.project))
    if message_id is None:
        message = await retried(
            lambda: bot.send_message(
                chat_id, card.body(lang), parse_mode="HTML", reply_markup=buttons(d, op, lang)
            ),
            "sending a card",
        )
        message_id = message.message_id
    at = (chat_id, message_id)
    await blocking(cards.live, d, op, at)
    shown = card.body(lang)
    while not op.done:
        events = await asyncio.to_thread(op.wait_events, card.seq, EDIT_EVERY)
        card.take(events)
        text = card.body(lang)
        if text != shown and throttle.ready(message_id) and not op.done:
            await edit(bot, at, text, buttons(d, op, lang))
            shown = text
    await finish(bot, d, card, at)


async def finish(bot: Any, d: Deps, card: Card, at: tuple[int, int]) -> None:
    """The card's last state; if the edit fails for good, the same as a new message. The
    card leaves the store once it shows how the operation ended."""
    op, lang = card.op, d.lang(at[0])
    card.take(op.events_after(card.seq))
    markup = await blocking(buttons, d, op, lang)
    verdict, n = None, None
    if op.op == Op.TEST:
        state = await blocking(d.service.query.state, op.project)
        verdict, n = (state.test_run or {}).get("verdict"), state.test
    body = card.body(lang, verdict, n)
    markup = with_log(markup, card, lang)
    if not await edit(bot, at, body, markup):
        try:
            await retried(
                lambda: bot.send_message(at[0], body, parse_mode="HTML", reply_markup=markup),
                "sending a card",
            )
        except TelegramError as exc:
            logger.warning("could not send the end of a card: %s", exc)
            return  # kept in the store: ended at the next start
    await blocking(cards.ended, d, op.id)


def output_on(d: Deps, name: str) -> bool:
    """The project's command-output switch (on for a project that is gone or unreadable:
    the card then shows what the operation reported)."""
    try:
        return d.service.query.project(name).output
    except ControlPlaneError:
        return True


def with_log(
    markup: InlineKeyboardMarkup | None, card: Card, lang: str
) -> InlineKeyboardMarkup | None:
    """The ended card's keyboard with 📎 for the full build log of the commit it built,
    when the project's output is on (off: no output at all, not even on request here)."""
    if card.built is None or not card.output:
        return markup
    clip = InlineKeyboardButton(
        t(lang, "📎 Build log #{n}", n=card.built),
        callback_data=cb(Cb.BUILD_LOG, card.op.project, card.built),
    )
    rows = list(markup.inline_keyboard) if markup is not None else []
    return InlineKeyboardMarkup([*rows, [clip]])


def start_op(
    context: ContextTypes.DEFAULT_TYPE, update: Update, op: Op, name: str, args: dict[str, Any]
) -> Operation:
    """Submit an operation and follow it in its own message; Busy (or a refusal of its
    arguments) is raised at once."""
    d = deps(context)
    operation = d.service.submit(op, name, args)
    context.application.create_task(
        follow(context.bot, d, chat_of(update), operation), name=f"follow-{operation.id}"
    )
    return operation


CUT_SHORT = N_(
    "⚠️ <b>{op}</b> {name}: cut short by a restart of the control plane. "
    "/status {name} shows where it stands."
)


async def take_up_cards(app: Any, d: Deps) -> int:
    """At the bot's start: every card left live by the one before. Its operation still
    running in this process (the bot alone restarted) is followed again in the same
    message; one that ended meanwhile shows its end; any other (serve restarted) ends with
    CUT_SHORT. Returns how many cards were ended or taken up; never raises."""
    try:
        rows = await blocking(cards.take_all, d)
    except Exception:
        logger.exception("the live cards could not be read")
        return 0
    for op_id, row in rows.items():
        at = (int(row["chat"]), int(row["message"]))
        op = running_here(d, op_id, row)
        if op is not None:
            app.create_task(follow(app.bot, d, at[0], op, at[1]), name=f"follow-{op.id}")
            continue
        lang = d.lang(at[0])
        note = t(lang, CUT_SHORT, op=op_name(str(row.get("op", ""))), name=str(row["project"]))
        if not await edit(app.bot, at, note, None):
            logger.warning("could not end the card of %s %s", row.get("op"), row.get("project"))
    return len(rows)


def running_here(d: Deps, op_id: str, row: dict[str, Any]) -> Operation | None:
    """The card's operation, if this process runs (or just ran) it."""
    if row.get("pid") != os.getpid():
        return None
    try:
        return d.service.executor.get(op_id)
    except ControlPlaneError:  # no engine in this process
        return None
