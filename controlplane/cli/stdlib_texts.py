"""argparse's own words (usage, errors, help headings) in the CLI's language.

argparse asks the standard `gettext` for each of its messages in the process's global
text domain. `use_our_catalog()` makes that domain ours, so the msgids below, argparse's
own (Python 3.11–3.13), are translated from our catalog in the locale's language, the
same rule (LANGUAGE, LC_ALL, LC_MESSAGES, LANG) the rest of the CLI follows.
"""

from __future__ import annotations

import gettext

from controlplane.i18n import DOMAIN, LOCALE_DIR, N_

ARGPARSE = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("show program's version number and exit"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("invalid %(type)s value: %(value)r"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
    N_("ignored explicit argument %r"),
)


def use_our_catalog() -> None:
    """Point the standard library's gettext (argparse's) at our catalog."""
    gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    gettext.textdomain(DOMAIN)
