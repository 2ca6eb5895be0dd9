"""What each button does, routed by its prefix (callbacks.Cb) through the tables at the end.

A project's button gets the project's name and the values after it, and returns a toast
text (or None). An operation is handed to the facade: one that cannot start (busy, a bad
value) or that fails raises, and on_button (handlers.py) shows why in the toast.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from controlplane.bot import follows, nodes, screens, variables
from controlplane.bot.callbacks import Cb
from controlplane.bot.context import blocking, chat_of, deps
from controlplane.bot.follows import FOLLOW_SECONDS
from controlplane.bot.progress import start_op
from controlplane.bot.render import number
from controlplane.bot.texts import N_, t, text
from controlplane.bot.views import (
    ask,
    screen_confirm_deploy,
    screen_confirm_deploy_of,
    screen_confirm_promote,
    screen_help,
    screen_lang,
    screen_load,
    screen_logs,
    screen_menu,
    screen_project,
    screen_projects,
    screen_status,
    send_buildlog,
    send_logfile,
    show,
)
from controlplane.domain.kinds import slot_name
from controlplane.errors import NotFound
from controlplane.service.facade import Op

Ctx = ContextTypes.DEFAULT_TYPE


def started(context: Ctx, update: Update, op: Op, name: str, args: dict[str, Any]) -> str:
    """Start an operation for a button: the toast when it started; a refusal (busy, a bad
    argument) is raised for on_button to show."""
    start_op(context, update, op, name, args)
    return t(deps(context).lang(chat_of(update)), "Started")


def slot_of(rest: list[str]) -> str:
    return "test" if rest and rest[0] == "test" else "prod"


async def b_project(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_project(update, context, name)
    return None


async def b_status(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_status(update, context, name)
    return None


async def b_logs(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_logs(update, context, name, slot_of(rest))
    return None


async def b_follow(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """A live view of the slot's log (a task, see follows.py); a second press extends it."""
    seconds = (number(rest[1]) if len(rest) > 1 else None) or FOLLOW_SECONDS
    seconds = min(max(seconds, 2), 600)
    d, chat, slot = deps(context), chat_of(update), slot_of(rest)
    views = follows.registry(context.application.bot_data)
    if views.start(context.application, d, chat, name, slot, seconds):
        return None
    return t(
        d.lang(chat),
        "Already following {name} {slot} in the message above: extended to {seconds} s from now.",
        name=name,
        slot=slot_name(slot),
        seconds=seconds,
    )


async def b_logfile(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    context.application.create_task(send_logfile(update, context, name, slot_of(rest)))
    return None


async def b_buildlog(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    n = number(rest[0]) if rest else None
    if n is None:
        lang = deps(context).lang(chat_of(update))
        return t(lang, "That button is out of date; open the menu again.")
    context.application.create_task(send_buildlog(update, context, name, n))
    return None


async def b_poll_menu(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    project = await blocking(d.service.query.project, name)
    await show(update, *screens.poll_menu(d.lang(chat_of(update)), project))
    return None


async def b_poll_set(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    seconds = number(rest[0]) if rest else None
    if seconds is None or seconds not in screens.POLL_CHOICES:
        return t(d.lang(chat_of(update)), "That button is out of date; open the menu again.")
    project = await blocking(d.service.config.set_poll, name, str(seconds))
    await show(update, *screens.poll_menu(d.lang(chat_of(update)), project))
    return t(
        d.lang(chat_of(update)),
        "<b>{name}</b> now polls every {poll}.",
        name=name,
        poll=screens.interval(d.lang(chat_of(update)), seconds),
    )


async def b_policy_menu(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    project = await blocking(d.service.query.project, name)
    await show(update, *screens.policy_menu(d.lang(chat_of(update)), project))
    return None


async def b_policy_set(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    policy = rest[0] if rest else ""
    project = await blocking(d.service.config.set_setting, name, "policy", policy)
    await show(update, *screens.policy_menu(d.lang(chat_of(update)), project))
    return None


async def b_test_menu(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await show(update, *screens.test_menu(deps(context).lang(chat_of(update)), name))
    return None


async def b_test_run(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """A duration button (tr|shop|300: the head), or a new-commit notice's Test (tr|shop||7:
    commit #7 for the project's test duration)."""
    args = {"duration": rest[0] if rest else None, "commit": rest[1] if len(rest) > 1 else None}
    return started(context, update, Op.TEST, name, args)


async def b_extend(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    seconds = (number(rest[0]) if rest else None) or 60
    try:
        extended = await blocking(d.service.extend, name, seconds)
    except NotFound:
        return t(d.lang(chat_of(update)), "That test has finished.")
    return text(d.lang(chat_of(update)), extended)


async def b_cancel(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    try:
        d.service.cancel(name)
    except NotFound:
        return t(d.lang(chat_of(update)), "That test has finished.")
    return t(d.lang(chat_of(update)), "Cancelled.")


async def b_discard(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return started(context, update, Op.DISCARD, name, {})


async def b_confirm(
    update: Update, context: Ctx, name: str, rest: list[str], *, key: str, yes: tuple[object, ...]
) -> str | None:
    lang = deps(context).lang(chat_of(update))
    await ask(update, context, t(lang, key, name=name), yes, (Cb.PROJECT, name))
    return None


async def b_deploy(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """The menu's Deploy (the head, fetched now) or a notice's Deploy #N (that commit)."""
    n = number(rest[0]) if rest else None
    if n is None:
        await screen_confirm_deploy(update, context, name)
    elif not await screen_confirm_deploy_of(update, context, name, n):
        lang = deps(context).lang(chat_of(update))
        out_of_date = t(lang, "That button is out of date; open the menu again.")
        await show(update, out_of_date, screens.back_to(lang, name))
    return None


async def b_deploy_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """Deploy the commit the confirmation named (the head as it was then, not as it is)."""
    return started(context, update, Op.DEPLOY, name, {"commit": rest[0] if rest else None})


async def b_promote(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_confirm_promote(update, context, name)
    return None


async def b_promote_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """Promote the release the confirmation named, if the test slot still holds it."""
    d = deps(context)
    state = await blocking(d.service.query.state, name)
    named = number(rest[0]) if rest else None
    if named is not None and state.test != named:
        return t(
            d.lang(chat_of(update)),
            "The test slot no longer holds #{n}: nothing promoted. Open Promote again.",
            n=named,
        )
    return started(context, update, Op.PROMOTE, name, {})


async def b_rollback_list(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    page = (number(rest[0]) if rest else None) or 0

    def gather() -> Any:
        query = d.service.query
        return query.commits(name), query.releases(name), query.state(name)

    commits, releases, state = await blocking(gather)
    await show(
        update,
        *screens.rollback_menu(d.lang(chat_of(update)), name, commits, releases, state, page),
    )
    return None


async def b_rollback_confirm(
    update: Update, context: Ctx, name: str, rest: list[str]
) -> str | None:
    lang = deps(context).lang(chat_of(update))
    n = rest[0] if rest and number(rest[0]) is not None else ""
    if not n:
        return t(lang, "That button is out of date; open the menu again.")
    text = t(lang, "Roll <b>{name}</b> prod back to #{n}?", name=name, n=n)
    await ask(update, context, text, (Cb.ROLLBACK_YES, name, n), (Cb.PROJECT, name))
    return None


async def b_rollback_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return started(context, update, Op.ROLLBACK, name, {"commit": rest[0] if rest else ""})


async def b_slot(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    slot, verb = slot_of(rest), rest[1] if len(rest) > 1 else ""
    if verb not in (Op.START, Op.STOP, Op.RESTART):
        return t(
            deps(context).lang(chat_of(update)), "That button is out of date; open the menu again."
        )
    if slot == "prod" and verb == Op.STOP:
        yes = (Cb.STOP_YES, name)
        return await b_confirm(
            update, context, name, rest, key=N_("Stop <b>{name}</b> <b>prod</b>?"), yes=yes
        )
    return started(context, update, Op(verb), name, {"slot": slot})


async def b_stop_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return started(context, update, Op.STOP, name, {"slot": "prod"})


async def b_runner(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """🖥 Runner: asks to move the project to the other runner."""
    project = await blocking(deps(context).service.query.project, name)
    if project.runner == "swarm":
        key = N_("Move <b>{name}</b> back to this box? Its slots run under supervisord here.")
        return await b_confirm(
            update, context, name, rest, key=key, yes=(Cb.RUNNER_YES, name, "local")
        )
    key = N_(
        "Move <b>{name}</b> to the swarm? Its slots run as services there, on the release "
        "they run now; it stays here if that fails."
    )
    return await b_confirm(update, context, name, rest, key=key, yes=(Cb.RUNNER_YES, name, "swarm"))


async def b_runner_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """Move the project to the runner the confirmation named."""
    return started(context, update, Op.MOVE, name, {"runner": rest[0] if rest else ""})


async def b_output(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    project = await blocking(d.service.query.project, name)
    value = "off" if project.output else "on"
    await blocking(d.service.config.set_setting, name, "output", value)
    await screen_project(update, context, name)
    lang = d.lang(chat_of(update))
    state = t(lang, "off") if project.output else t(lang, "on")
    return t(lang, "Output of <b>{name}</b>'s commands to chat: {state}.", name=name, state=state)


async def b_installer(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """uv ↔ pip for the project's next builds (the running release is left as it is)."""
    d = deps(context)
    project = await blocking(d.service.query.project, name)
    value = "pip" if project.installer == "uv" else "uv"
    await blocking(d.service.config.set_setting, name, "installer", value)
    await screen_project(update, context, name)
    lang = d.lang(chat_of(update))
    return t(lang, "Builds of {name} now use {installer}.", name=name, installer=value)


async def b_deploy_key(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """The project's deploy key, made on first view, and its pinned host keys."""
    await show_deploy_key(update, context, name, new=False)
    return None


async def show_deploy_key(update: Update, context: Ctx, name: str, *, new: bool) -> None:
    d = deps(context)
    key = await blocking(lambda: d.service.config.deploy_key(name, new=new))
    await show(update, *screens.deploy_key(d.lang(chat_of(update)), name, key.public, key.hosts))


async def b_new_key(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    yes = (Cb.NEW_KEY_YES, name)
    return await b_confirm(
        update,
        context,
        name,
        rest,
        key=N_(
            "Make a new deploy key for <b>{name}</b>? The current one stops working: "
            "add the new one to the repository and remove the old one there."
        ),
        yes=yes,
    )


async def b_new_key_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await show_deploy_key(update, context, name, new=True)
    return None


async def b_forget_hosts(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    await blocking(d.service.config.forget_hosts, name)
    await b_deploy_key(update, context, name, rest)
    lang = d.lang(chat_of(update))
    return t(lang, "Pinned host keys forgotten: the next fetch pins and reports them.")


async def b_remove(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    yes = (Cb.REMOVE_YES, name)
    return await b_confirm(
        update,
        context,
        name,
        rest,
        key=N_(
            "Remove <b>{name}</b>? Its slots stop; its releases, history and data folders "
            "(APP_DATA_DIR) are deleted; files you put in its folder stay."
        ),
        yes=yes,
    )


async def b_remove_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """Remove through the executor: refused at once (Busy) while an operation runs for the
    project; the toast says why, and a failure of the removal too."""
    d = deps(context)
    operation = d.service.remove(name)
    await blocking(operation.join)
    lang = d.lang(chat_of(update))
    await show(
        update,
        t(lang, "<b>{name}</b> removed.", name=name),
        InlineKeyboardMarkup([[screens.button(t(lang, "⬅️ Back"), Cb.PROJECTS)]]),
    )
    return None


GLOBAL: dict[str, Callable[[Update, Ctx], Awaitable[None]]] = {
    Cb.MENU: screen_menu,
    Cb.PROJECTS: screen_projects,
    Cb.HELP: screen_help,
    Cb.LOAD: screen_load,
    Cb.LANG: screen_lang,
    Cb.NODES: nodes.screen_nodes,
    Cb.NODES_YES: nodes.nodes_yes,
}


PROJECT: dict[str, Callable[[Update, Ctx, str, list[str]], Awaitable[str | None]]] = {
    Cb.PROJECT: b_project,
    Cb.STATUS: b_status,
    Cb.LOGS: b_logs,
    Cb.LOG_FILE: b_logfile,
    Cb.BUILD_LOG: b_buildlog,
    Cb.FOLLOW: b_follow,
    Cb.CONFIG: variables.b_config,
    Cb.VAR: variables.b_var,
    Cb.VAR_MARK: variables.b_var_mark,
    Cb.VAR_DELETE: variables.b_var_delete,
    Cb.VAR_DELETE_YES: variables.b_var_delete_yes,
    Cb.VAR_RESTART_YES: variables.b_var_restart_yes,
    Cb.VAR_LATER: variables.b_var_later,
    Cb.POLL_MENU: b_poll_menu,
    Cb.POLL_SET: b_poll_set,
    Cb.POLICY_MENU: b_policy_menu,
    Cb.POLICY_SET: b_policy_set,
    Cb.TEST_MENU: b_test_menu,
    Cb.TEST_RUN: b_test_run,
    Cb.EXTEND: b_extend,
    Cb.CANCEL: b_cancel,
    Cb.DISCARD: b_discard,
    Cb.DEPLOY: b_deploy,
    Cb.DEPLOY_YES: b_deploy_yes,
    Cb.PROMOTE: b_promote,
    Cb.PROMOTE_YES: b_promote_yes,
    Cb.ROLLBACK_LIST: b_rollback_list,
    Cb.ROLLBACK_CONFIRM: b_rollback_confirm,
    Cb.ROLLBACK_YES: b_rollback_yes,
    Cb.SLOT: b_slot,
    Cb.STOP_YES: b_stop_yes,
    Cb.OUTPUT: b_output,
    Cb.INSTALLER: b_installer,
    Cb.RUNNER: b_runner,
    Cb.RUNNER_YES: b_runner_yes,
    Cb.REMOVE: b_remove,
    Cb.REMOVE_YES: b_remove_yes,
    Cb.DEPLOY_KEY: b_deploy_key,
    Cb.NEW_KEY: b_new_key,
    Cb.NEW_KEY_YES: b_new_key_yes,
    Cb.FORGET_HOSTS: b_forget_hosts,
}

# Buttons that only show a screen (or start a task that sends its own message) and never
# toast: on_button answers their query before running them.


SCREENS = frozenset(
    {
        Cb.PROJECT,
        Cb.STATUS,
        Cb.LOGS,
        Cb.LOG_FILE,
        Cb.BUILD_LOG,
        Cb.CONFIG,
        Cb.VAR,
        Cb.VAR_DELETE,
        Cb.VAR_LATER,
        Cb.POLL_MENU,
        Cb.POLICY_MENU,
        Cb.TEST_MENU,
        Cb.DEPLOY,
        Cb.PROMOTE,
        Cb.ROLLBACK_LIST,
        Cb.REMOVE,
        Cb.RUNNER,
    }
)
# The Yes of a confirmation: single-use (see claim_yes); these two replace the message.


YES = frozenset(
    {
        Cb.DEPLOY_YES,
        Cb.PROMOTE_YES,
        Cb.ROLLBACK_YES,
        Cb.STOP_YES,
        Cb.REMOVE_YES,
        Cb.NEW_KEY_YES,
        Cb.VAR_DELETE_YES,
        Cb.VAR_RESTART_YES,
        Cb.RUNNER_YES,
    }
)


YES_SHOWS = frozenset({Cb.REMOVE_YES, Cb.NEW_KEY_YES, Cb.VAR_DELETE_YES})
