"""Callback data of every button: a prefix naming what the button does, then its values.

`cb(Cb.ROLLBACK_CONFIRM, "shop", 3)` is 'rc|shop|3', always within Telegram's 64 bytes.
The prefixes live here and nowhere else: screens build buttons with them, handlers.py
routes presses through its tables keyed by them, and conversations enter on them with
`pattern(...)` (CallbackQueryHandler's pattern). A prefix ending in '!' is the Yes of a
confirmation (it carries a single-use token, see confirm.py).
"""

from __future__ import annotations

import re
from enum import StrEnum, unique

CALLBACK_LIMIT = 64
SEP = "|"
# The last part of a button on a notification (a new-commit notice): the screen it opens
# comes as a new message, so the notice stays as it was (on_button strips it).
KEEP = "+"


@unique
class Cb(StrEnum):
    """Every button's prefix."""

    # menus without a project
    MENU = "m"
    PROJECTS = "pl"  # the projects list; a page number (and a search) may follow
    HELP = "hp"
    LOAD = "ld"
    LANG = "ln"  # the language picker; with a language code after it: that language
    NODES = "nn"  # 🖥 Nodes (bot/nodes.py); with 'd'/'a' and a node id: drain/activate it
    NODES_YES = "nn!"  # the Yes of a drain or an activation: 'nn!|d|NODEID|token'
    # conversations (conversations.py)
    ADD = "ad"
    LAUNCH = "lc"
    LAUNCH_MODE = "lm"
    LAUNCH_YES = "lc!"  # ▶️ Launch on the launch form's summary
    LAUNCH_NO = "lx"  # ✖️ Cancel there
    ADD_VARS = "ca"
    TAKE_OVER = "to"  # the add form's 📦: move a folder's files to a backup, use it
    TYPED_DURATION = "tt"
    SEARCH = "fs"  # search the projects list by part of a name
    # a project's screens and actions
    PROJECT = "p"
    STATUS = "st"
    LOGS = "lg"
    LOG_FILE = "lf"
    BUILD_LOG = "bl"  # a commit's build log as a document: 'bl|shop|7'
    FOLLOW = "fl"
    CONFIG = "cf"
    VAR = "cv"  # one variable's screen
    VAR_MARK = "cm"  # mark it secret (s) or plain (p)
    VAR_DELETE = "cd"
    VAR_DELETE_YES = "cd!"
    VAR_RESTART_YES = "vr!"  # restart a slot after a change of its variables
    VAR_LATER = "vl"  # ... or let the change apply at its next restart
    POLL_MENU = "pi"
    POLL_SET = "ps"
    POLICY_MENU = "po"
    POLICY_SET = "pp"
    TEST_MENU = "td"
    TEST_RUN = "tr"
    EXTEND = "ex"
    CANCEL = "cx"
    DISCARD = "ds"
    DEPLOY = "dp"
    DEPLOY_YES = "dp!"
    PROMOTE = "pr"
    PROMOTE_YES = "pr!"
    ROLLBACK_LIST = "rb"
    ROLLBACK_CONFIRM = "rc"
    ROLLBACK_YES = "rb!"
    SLOT = "ss"
    STOP_YES = "sp!"
    OUTPUT = "oo"
    INSTALLER = "ix"
    RUNNER = "rn"  # 🖥 Runner: move the project to the other runner (a confirmation)
    RUNNER_YES = "rn!"  # its Yes: 'rn!|shop|swarm|token'
    REMOVE = "rm"
    REMOVE_YES = "rm!"
    DEPLOY_KEY = "dk"
    NEW_KEY = "dn"
    NEW_KEY_YES = "dn!"
    FORGET_HOSTS = "dh"


def cb(*parts: object) -> str:
    """Callback data from parts (Cb.ROLLBACK_LIST, 'shop', 3) → 'rb|shop|3', within 64
    bytes."""
    data = SEP.join(str(p) for p in parts)
    if len(data.encode()) > CALLBACK_LIMIT:
        raise ValueError(f"callback data over {CALLBACK_LIMIT} bytes: {data!r}")
    return data


def parts(data: str) -> list[str]:
    return data.split(SEP)


def pattern(prefix: Cb) -> str:
    """CallbackQueryHandler's pattern for the buttons with this prefix (with or without
    values after it)."""
    return f"^{re.escape(prefix)}(\\{SEP}|$)"
