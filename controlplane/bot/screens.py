"""The screens: text and keyboard of each menu, built from plain data (no I/O here)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from controlplane.bot.callbacks import Cb, cb
from controlplane.bot.texts import t
from controlplane.domain.history import CommitRow, Release, SlotState
from controlplane.domain.models import Project, format_interval

if TYPE_CHECKING:
    from controlplane.service.facade import HostKey

Screen = tuple[str, InlineKeyboardMarkup]
POLL_CHOICES = (0, 60, 300, 900, 3600, 21600, 86400)
TEST_CHOICES = (30, 60, 300, 900)
PAGE = 8


def button(text: str, *data: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=cb(*data))


def main_menu(lang: str) -> Screen:
    rows = [
        [button(t(lang, "menu.projects"), Cb.PROJECTS)],
        [button(t(lang, "menu.add"), Cb.ADD), button(t(lang, "menu.launch"), Cb.LAUNCH)],
        [button(t(lang, "menu.load"), Cb.LOAD), button(t(lang, "menu.help"), Cb.HELP)],
    ]
    return t(lang, "menu.title"), InlineKeyboardMarkup(rows)


def icon(state: SlotState, prod_state: str | None) -> str:
    if prod_state == "RUNNING":
        return "🟢"
    if prod_state in ("BACKOFF", "FATAL", "EXITED"):
        return "🔴"
    if state.op:
        return "⏳"
    return "⚪️"


def projects_list(lang: str, rows: list[tuple[Project, SlotState, str | None]]) -> Screen:
    if not rows:
        return t(lang, "projects.none"), InlineKeyboardMarkup(
            [[button(t(lang, "menu.add"), Cb.ADD)], [button(t(lang, "back"), Cb.MENU)]]
        )
    keys = [[button(f"{icon(s, ps)} {p.name}", Cb.PROJECT, p.name)] for p, s, ps in rows]
    keys.append([button(t(lang, "back"), Cb.MENU)])
    return t(lang, "projects.title"), InlineKeyboardMarkup(keys)


def project_menu(lang: str, p: Project, s: SlotState) -> Screen:
    n = p.name
    title = t(
        lang,
        "project.title",
        name=n,
        branch=p.branch,
        poll=format_interval(p.poll),
        policy=p.policy,
    )
    live = t(
        lang,
        "project.live",
        prod=f"#{s.prod}" if s.prod else "—",
        test=f"#{s.test}" if s.test else "—",
    )
    output = "btn.output_on" if p.output else "btn.output_off"
    rows = [
        [
            button(t(lang, "btn.status"), Cb.STATUS, n),
            button(t(lang, "btn.logs"), Cb.LOGS, n, "prod"),
        ],
        [button(t(lang, "btn.test"), Cb.TEST_MENU, n), button(t(lang, "btn.deploy"), Cb.DEPLOY, n)],
        [
            button(t(lang, "btn.rollback"), Cb.ROLLBACK_LIST, n, 0),
            button(t(lang, "btn.config"), Cb.CONFIG, n, "prod"),
        ],
        [
            button(t(lang, "btn.start"), Cb.SLOT, n, "prod", "start"),
            button(t(lang, "btn.stop"), Cb.SLOT, n, "prod", "stop"),
            button(t(lang, "btn.restart"), Cb.SLOT, n, "prod", "restart"),
        ],
        [
            button(t(lang, "btn.poll"), Cb.POLL_MENU, n),
            button(t(lang, "btn.policy"), Cb.POLICY_MENU, n),
            button(t(lang, "btn.deploy_key"), Cb.DEPLOY_KEY, n),
        ],
        [
            button(t(lang, "btn.logs_test"), Cb.LOGS, n, "test"),
            button(t(lang, output), Cb.OUTPUT, n),
        ],
        [button(t(lang, "btn.remove"), Cb.REMOVE, n), button(t(lang, "back"), Cb.PROJECTS)],
    ]
    return f"{title}\n{live}", InlineKeyboardMarkup(rows)


def config(lang: str, name: str, slot: str, shown: list[tuple[str, str]]) -> Screen:
    other = "test" if slot == "prod" else "prod"
    text = t(lang, "config.title" if shown else "config.none", name=name, slot=slot)
    if shown:
        text += "\n" + "\n".join(
            f"<code>{html.escape(k)}</code> = {html.escape(v, quote=False)}" for k, v in shown
        )
    rows = [
        [button(t(lang, "btn.delete_var", var=k), Cb.DELETE_VAR, name, slot, k)]
        for k, _ in shown
        if len(cb(Cb.DELETE_VAR, name, slot, k).encode()) <= 64
    ]
    rows.append([button(t(lang, "btn.add_vars"), Cb.ADD_VARS, name, slot)])
    rows.append(
        [
            button(t(lang, f"btn.{other}_vars"), Cb.CONFIG, name, other),
            button(t(lang, "back"), Cb.PROJECT, name),
        ]
    )
    return text, InlineKeyboardMarkup(rows)


def poll_menu(lang: str, p: Project) -> Screen:
    keys = [
        button(("• " if s == p.poll else "") + format_interval(s), Cb.POLL_SET, p.name, s)
        for s in POLL_CHOICES
    ]
    rows = [keys[:4], keys[4:], [button(t(lang, "back"), Cb.PROJECT, p.name)]]
    return t(lang, "poll.title", name=p.name, poll=format_interval(p.poll)), InlineKeyboardMarkup(
        rows
    )


def policy_menu(lang: str, p: Project) -> Screen:
    rows = [
        [
            button(
                ("• " if pol == p.policy else "") + t(lang, f"policy.{pol}"),
                Cb.POLICY_SET,
                p.name,
                pol,
            )
        ]
        for pol in ("notify", "test", "promote")
    ]
    rows.append([button(t(lang, "back"), Cb.PROJECT, p.name)])
    return t(lang, "policy.title", name=p.name, policy=p.policy), InlineKeyboardMarkup(rows)


def test_menu(lang: str, name: str) -> Screen:
    keys = [
        button(format_interval(s, zero="0s") if s >= 60 else f"{s}s", Cb.TEST_RUN, name, s)
        for s in TEST_CHOICES
    ]
    rows = [
        keys,
        [button(t(lang, "btn.typed"), Cb.TYPED_DURATION, name)],
        [button(t(lang, "back"), Cb.PROJECT, name)],
    ]
    return t(lang, "test.title", name=name), InlineKeyboardMarkup(rows)


def commit_label(c: CommitRow, release: Release | None, s: SlotState) -> str:
    marks = []
    if s.prod == c.n:
        marks.append("prod")
    if s.test == c.n:
        marks.append("test")
    if release is not None:
        marks.append(
            {"ready": "✓", "failed": "✗", "pruned": "·", "building": "…"}.get(release.state, "")
        )
    # a cut is marked with '…', so a secret cut short on a button is still found and hidden
    subject = c.subject if len(c.subject) <= 24 else c.subject[:23] + "…"
    return f"#{c.n} {c.short} {subject} {' '.join(marks)}".strip()


def rollback_menu(
    lang: str,
    name: str,
    commits: list[CommitRow],
    releases: dict[int, Release],
    s: SlotState,
    page: int,
) -> Screen:
    if not commits:
        return t(lang, "rollback.none"), InlineKeyboardMarkup(
            [[button(t(lang, "back"), Cb.PROJECT, name)]]
        )
    newest = list(reversed(commits))
    chunk = newest[page * PAGE : (page + 1) * PAGE]
    rows = [
        [button(commit_label(c, releases.get(c.n), s), Cb.ROLLBACK_CONFIRM, name, c.n)]
        for c in chunk
    ]
    nav = [button(t(lang, "back"), Cb.PROJECT, name)]
    if (page + 1) * PAGE < len(newest):
        nav.append(button(t(lang, "btn.more"), Cb.ROLLBACK_LIST, name, page + 1))
    rows.append(nav)
    return t(lang, "rollback.title", name=name), InlineKeyboardMarkup(rows)


def deploy_key(lang: str, name: str, public: str, hosts: list[HostKey]) -> Screen:
    """The project's deploy key (public half) and the host keys pinned for it."""
    text = t(lang, "key.title", name=name, public=html.escape(public))
    if hosts:
        text += "\n\n" + t(lang, "key.hosts") + "\n"
        text += "\n".join(
            f"<code>{html.escape(h.host)} {html.escape(h.kind)} {html.escape(h.fingerprint)}</code>"
            for h in hosts
        )
    else:
        text += "\n\n" + t(lang, "key.no_hosts")
    rows = [
        [
            button(t(lang, "btn.new_key"), Cb.NEW_KEY, name),
            button(t(lang, "btn.forget_hosts"), Cb.FORGET_HOSTS, name),
        ],
        [button(t(lang, "back"), Cb.PROJECT, name)],
    ]
    return text, InlineKeyboardMarkup(rows)


def confirm(lang: str, text: str, yes: tuple[object, ...], no: tuple[object, ...]) -> Screen:
    rows = [[button(t(lang, "yes"), *yes), button(t(lang, "no"), *no)]]
    return text, InlineKeyboardMarkup(rows)


def back_to(lang: str, name: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[button(t(lang, "back"), Cb.PROJECT, name)]])
