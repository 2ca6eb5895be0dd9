"""The screens: text and keyboard of each menu, built from plain data (no I/O here)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from controlplane.bot.callbacks import Cb, cb
from controlplane.bot.texts import N_, t, text
from controlplane.domain.history import CommitRow, Release, SlotState, paged
from controlplane.domain.kinds import slot_name
from controlplane.domain.models import Project, interval_text
from controlplane.i18n import LANGS

if TYPE_CHECKING:
    from controlplane.service.facade import HostKey

Screen = tuple[str, InlineKeyboardMarkup]
POLL_CHOICES = (0, 60, 300, 900, 3600, 21600, 86400)
TEST_CHOICES = (30, 60, 300, 900)
PAGE = 8
POLICIES = ("notify", "test", "promote")
POLICY_NAMES = {"notify": N_("notify"), "test": N_("test"), "promote": N_("promote")}
POLICY_CHOICES = {  # the policy menu's buttons
    "notify": N_("Notify me"),
    "test": N_("Test it"),
    "promote": N_("Test, then promote if it passed"),
}
LANG_NAMES = {"en": "English", "ru": "Русский"}  # each language in its own words


def interval(lang: str, seconds: int) -> str:
    """A poll interval or a duration as a button shows it: '15m' / '15 мин', 'off'."""
    return text(lang, interval_text(seconds))


def policy_name(lang: str, policy: str) -> str:
    return t(lang, POLICY_NAMES[policy]) if policy in POLICY_NAMES else text(lang, policy)


def button(text: str, *data: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=cb(*data))


def main_menu(lang: str, *, switch: bool = True, nodes: bool = False) -> Screen:
    """The main menu; `switch`: with the 🌐 button (not when CONTROLPLANE_LANG fixes it);
    `nodes`: with 🖥 Nodes (a swarm manager is reachable)."""
    rows = [
        [button(t(lang, "📦 Projects"), Cb.PROJECTS)],
        [
            button(t(lang, "➕ Add project"), Cb.ADD),
            button(t(lang, "🚀 Run a third-party repository"), Cb.LAUNCH),
        ],
        [button(t(lang, "📊 System load"), Cb.LOAD), button(t(lang, "❓ Help"), Cb.HELP)],
    ]
    if nodes:
        rows.append([button(t(lang, "🖥 Nodes"), Cb.NODES)])
    if switch:
        rows.append([button(t(lang, "🌐 Language"), Cb.LANG)])
    return t(lang, "<b>controlplane</b>: choose what to do"), InlineKeyboardMarkup(rows)


def lang_menu(lang: str) -> Screen:
    """The languages, each named in its own words; the chat's marked."""
    keys = [
        button(("• " if code == lang else "") + LANG_NAMES.get(code, code), Cb.LANG, code)
        for code in LANGS
    ]
    rows = [keys, [button(t(lang, "⬅️ Back"), Cb.MENU)]]
    return t(lang, "🌐 The language of this chat:"), InlineKeyboardMarkup(rows)


def icon(state: SlotState, prod_state: str | None) -> str:
    if prod_state == "RUNNING":
        return "🟢"
    if prod_state in ("BACKOFF", "FATAL", "EXITED"):
        return "🔴"
    if state.op:
        return "⏳"
    return "⚪️"


def listed(p: Project, state: SlotState, prod_state: str | None) -> str:
    """A project's button in the list: its state, its name, 🌍 for a third-party one."""
    return f"{icon(state, prod_state)} {p.name}" + (" 🌍" if p.third_party else "")


LIST_PAGE = 10  # projects on a page of the list
SEARCH_MAX = 32  # a search is for part of a name: names have at most 32 characters


@dataclass(frozen=True)
class Listing:
    """One page of the projects list: the projects on it, the page, and how many there are
    (all of them, and those whose name holds `query` when it is set)."""

    rows: list[tuple[Project, SlotState, str | None]]
    page: int
    pages: int
    found: int
    total: int
    query: str = ""


Row = tuple[Project, SlotState, str | None]


def list_page(
    projects: Sequence[Project],
    page: int,
    query: str = "",
    rows: Callable[[list[Project]], list[Row]] | None = None,
) -> Listing:
    """The page `page` (clamped) of the projects whose name holds `query` (any case);
    `rows` gives the page's projects their states (read for that page only)."""
    query = query.strip().lower()[:SEARCH_MAX]
    found = [p for p in projects if query in p.name] if query else list(projects)
    pages = max(1, -(-len(found) // LIST_PAGE))
    page = min(max(page, 0), pages - 1)
    chunk = found[page * LIST_PAGE : (page + 1) * LIST_PAGE]
    shown: list[Row] = rows(chunk) if rows is not None else [(p, SlotState(), None) for p in chunk]
    return Listing(shown, page, pages, len(found), len(projects), query)


def projects_list(lang: str, listing: Listing) -> Screen:
    """A page of projects, one button each, with ◀️ ▶️ between pages and 🔎 to search;
    the title says which of how many are shown."""
    if not listing.total:
        return t(lang, "No projects yet. Add one with ➕ Add project."), InlineKeyboardMarkup(
            [[button(t(lang, "➕ Add project"), Cb.ADD)], [button(t(lang, "⬅️ Back"), Cb.MENU)]]
        )
    keys = [[button(listed(p, s, ps), Cb.PROJECT, p.name)] for p, s, ps in listing.rows]
    query = listing.query if _searchable(listing.query) else ""
    nav = []
    if listing.page > 0:
        nav.append(button("◀️", Cb.PROJECTS, listing.page - 1, *([query] if query else [])))
    if listing.page + 1 < listing.pages:
        nav.append(button("▶️", Cb.PROJECTS, listing.page + 1, *([query] if query else [])))
    if nav:
        keys.append(nav)
    tools = [button(t(lang, "🔎 Search"), Cb.SEARCH)]
    if listing.query:
        tools.append(button(t(lang, "📦 All projects"), Cb.PROJECTS))
    keys.append(tools)
    keys.append([button(t(lang, "⬅️ Back"), Cb.MENU)])
    return listing_title(lang, listing), InlineKeyboardMarkup(keys)


def _searchable(query: str) -> bool:
    """A search that can ride on a ◀️ ▶️ button: a name's characters only, so it never
    holds the separator and stays within the 64 bytes of callback data."""
    return bool(query) and all(c.isascii() and (c.isalnum() or c in "-_") for c in query)


def listing_title(lang: str, listing: Listing) -> str:
    first = listing.page * LIST_PAGE + 1
    last = listing.page * LIST_PAGE + len(listing.rows)
    if listing.query and not listing.found:
        return t(
            lang,
            N_("No project's name contains <code>{query}</code>; there are {total} in all."),
            query=listing.query,
            total=listing.total,
        )
    if listing.query:
        head = t(
            lang,
            N_(
                "<b>Projects</b> whose name contains <code>{query}</code>: "
                "{first}–{last} of {found} ({total} in all)"
            ),
            query=listing.query,
            first=first,
            last=last,
            found=listing.found,
            total=listing.total,
        )
    else:
        head = t(
            lang,
            N_("<b>Projects</b>: {first}–{last} of {total}"),
            first=first,
            last=last,
            total=listing.total,
        )
    if listing.pages > 1:
        page = t(lang, N_("page {page} of {pages}"), page=listing.page + 1, pages=listing.pages)
        head += "\n" + page
    return head


RUNNER_LABELS = {"local": N_("🖥 Runner: this box"), "swarm": N_("🖥 Runner: swarm")}


def project_menu(lang: str, p: Project, s: SlotState) -> Screen:
    n = p.name
    title = t(
        lang,
        N_("<b>{name}</b> · {branch} · poll {poll} · policy {policy}"),
        name=n,
        branch=p.branch,
        poll=interval(lang, p.poll),
        policy=policy_name(lang, p.policy),
    )
    live = t(
        lang,
        N_("prod: {prod} · test: {test}"),
        prod=f"#{s.prod}" if s.prod else "—",
        test=f"#{s.test}" if s.test else "—",
    )
    output = N_("🗒 Output to chat: on") if p.output else N_("🗒 Output to chat: off")
    rows = [
        [
            button(t(lang, "ℹ️ Status"), Cb.STATUS, n),
            button(t(lang, "📜 Logs"), Cb.LOGS, n, "prod"),
        ],
        [
            button(t(lang, "🧪 Test deploy"), Cb.TEST_MENU, n),
            button(t(lang, "🚢 Deploy to prod"), Cb.DEPLOY, n),
        ],
        [
            button(t(lang, "⏪ Rollback"), Cb.ROLLBACK_LIST, n, 0),
            button(t(lang, "🔐 Config"), Cb.CONFIG, n, "prod"),
        ],
        [
            button(t(lang, "▶️ Start"), Cb.SLOT, n, "prod", "start"),
            button(t(lang, "⏹ Stop"), Cb.SLOT, n, "prod", "stop"),
            button(t(lang, "🔄 Restart"), Cb.SLOT, n, "prod", "restart"),
        ],
        [
            button(t(lang, "⏱ Poll interval"), Cb.POLL_MENU, n),
            button(t(lang, "🔀 On new commit"), Cb.POLICY_MENU, n),
            button(t(lang, "🔑 Deploy key"), Cb.DEPLOY_KEY, n),
        ],
        [
            button(t(lang, "📜 Test logs"), Cb.LOGS, n, "test"),
            button(t(lang, output), Cb.OUTPUT, n),
            button(t(lang, "🛠 Installer: {installer}", installer=p.installer), Cb.INSTALLER, n),
        ],
        [button(t(lang, RUNNER_LABELS.get(p.runner, RUNNER_LABELS["local"])), Cb.RUNNER, n)],
        [button(t(lang, "🗑 Remove project"), Cb.REMOVE, n), button(t(lang, "⬅️ Back"), Cb.PROJECTS)],
    ]
    builds = t(lang, "installer: {installer}", installer=p.installer)
    if p.third_party:
        builds += "\n" + t(lang, "🌍 A third-party repository")
    return f"{title}\n{live}\n{builds}", InlineKeyboardMarkup(rows)


def poll_menu(lang: str, p: Project) -> Screen:
    keys = [
        button(("• " if s == p.poll else "") + interval(lang, s), Cb.POLL_SET, p.name, s)
        for s in POLL_CHOICES
    ]
    rows = [keys[:4], keys[4:], [button(t(lang, "⬅️ Back"), Cb.PROJECT, p.name)]]
    return t(
        lang,
        "How often should <b>{name}</b> check for new commits? Now: {poll}",
        name=p.name,
        poll=interval(lang, p.poll),
    ), InlineKeyboardMarkup(rows)


def policy_menu(lang: str, p: Project) -> Screen:
    rows = [
        [
            button(
                ("• " if pol == p.policy else "") + t(lang, POLICY_CHOICES[pol]),
                Cb.POLICY_SET,
                p.name,
                pol,
            )
        ]
        for pol in POLICIES
    ]
    rows.append([button(t(lang, "⬅️ Back"), Cb.PROJECT, p.name)])
    return t(
        lang,
        "What should a new commit of <b>{name}</b> do? Now: {policy}",
        name=p.name,
        policy=policy_name(lang, p.policy),
    ), InlineKeyboardMarkup(rows)


def test_menu(lang: str, name: str) -> Screen:
    keys = [button(interval(lang, s), Cb.TEST_RUN, name, s) for s in TEST_CHOICES]
    rows = [
        keys,
        [button(t(lang, "⌨️ Type a duration"), Cb.TYPED_DURATION, name)],
        [button(t(lang, "⬅️ Back"), Cb.PROJECT, name)],
    ]
    return t(
        lang, "How long should the test of <b>{name}</b> run?", name=name
    ), InlineKeyboardMarkup(rows)


def commit_label(lang: str, c: CommitRow, release: Release | None, s: SlotState) -> str:
    marks = [slot_name(slot).render(lang) for slot in s.live_slots(c.n)]
    stopped = "+".join(slot_name(slot).render(lang) for slot in s.stopped_slots(c.n))
    if stopped:
        marks.append(t(lang, "{slots} stopped", slots=stopped))
    if release is not None:
        marks.append(
            {"ready": "✓", "failed": "✗", "pruned": "·", "building": "…"}.get(release.state, "")
        )
    # a cut is marked with '…', so a secret cut short on a button is still found and hidden
    subject = c.subject if len(c.subject) <= 24 else c.subject[:23] + "…"
    return f"#{c.n} {c.short} {subject} {' '.join(marks)}".strip()


def build_log_button(release: Release | None, name: str) -> list[InlineKeyboardButton]:
    """📎 beside a commit built here whose log is still kept (not pruned): sends it."""
    if release is None or release.state == "pruned" or not release.log:
        return []
    return [button("📎", Cb.BUILD_LOG, name, release.n)]


def rollback_menu(
    lang: str,
    name: str,
    commits: list[CommitRow],
    releases: dict[int, Release],
    s: SlotState,
    page: int,
) -> Screen:
    if not commits:
        return t(lang, "No numbered commits yet."), InlineKeyboardMarkup(
            [[button(t(lang, "⬅️ Back"), Cb.PROJECT, name)]]
        )
    at = paged(len(commits), page, PAGE)
    # newest first: row i of the page is commits[-1 - i]
    chunk = commits[len(commits) - at.stop : len(commits) - at.start][::-1]
    rows = [
        [
            button(commit_label(lang, c, releases.get(c.n), s), Cb.ROLLBACK_CONFIRM, name, c.n),
            *build_log_button(releases.get(c.n), name),
        ]
        for c in chunk
    ]
    rows += rollback_pages(lang, name, at.page, at.pages)
    rows.append([button(t(lang, "⬅️ Back"), Cb.PROJECT, name)])
    title = t(lang, "Roll back <b>{name}</b> prod to which commit?", name=name)
    if at.pages > 1:
        title += "\n" + t(
            lang,
            "Commits #{newest}–#{oldest} of {total}, page {page} of {pages}; "
            "<code>/rollback {name} N</code> takes any number.",
            newest=chunk[0].n,
            oldest=chunk[-1].n,
            total=at.total,
            page=at.page + 1,
            pages=at.pages,
            name=name,
        )
    return title, InlineKeyboardMarkup(rows)


def rollback_pages(lang: str, name: str, page: int, pages: int) -> list[list[InlineKeyboardButton]]:
    """The picker's page buttons: ⏮ the newest page, ◀️ newer, older ▶️, the oldest ⏭
    (each only where it leads somewhere else than ◀️ ▶️ do)."""
    nav = []
    if page > 1:
        nav.append(button(t(lang, "⏮ Newest"), Cb.ROLLBACK_LIST, name, 0))
    if page > 0:
        nav.append(button(t(lang, "◀️ Newer"), Cb.ROLLBACK_LIST, name, page - 1))
    if page + 1 < pages:
        nav.append(button(t(lang, "Older ▶️"), Cb.ROLLBACK_LIST, name, page + 1))
    if page + 2 < pages:
        nav.append(button(t(lang, "Oldest ⏭"), Cb.ROLLBACK_LIST, name, pages - 1))
    return [nav] if nav else []


def deploy_key(lang: str, name: str, public: str, hosts: list[HostKey]) -> Screen:
    """The project's deploy key (public half) and the host keys pinned for it."""
    text = t(
        lang,
        "🔑 Deploy key of <b>{name}</b>, for an ssh repository (git@host:owner/repo). "
        "Add it to the repository as a <b>read-only deploy key</b> "
        "(GitHub: Settings → Deploy keys):\n<code>{public}</code>",
        name=name,
        public=public,
    )
    if hosts:
        text += (
            "\n\n"
            + t(lang, "Pinned ssh host keys (compare them with the ones your git host publishes):")
            + "\n"
        )
        text += "\n".join(
            f"<code>{html.escape(h.host)} {html.escape(h.kind)} {html.escape(h.fingerprint)}</code>"
            for h in hosts
        )
    else:
        text += "\n\n" + t(
            lang, "No host key pinned yet: the first ssh fetch pins it and tells you."
        )
    rows = [
        [
            button(t(lang, "🔄 New key"), Cb.NEW_KEY, name),
            button(t(lang, "🧹 Forget pinned hosts"), Cb.FORGET_HOSTS, name),
        ],
        [button(t(lang, "⬅️ Back"), Cb.PROJECT, name)],
    ]
    return text, InlineKeyboardMarkup(rows)


def confirm(lang: str, text: str, yes: tuple[object, ...], no: tuple[object, ...]) -> Screen:
    rows = [[button(t(lang, "✅ Yes, do it"), *yes), button(t(lang, "✖️ No"), *no)]]
    return text, InlineKeyboardMarkup(rows)


def back_to(lang: str, name: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[button(t(lang, "⬅️ Back"), Cb.PROJECT, name)]])
