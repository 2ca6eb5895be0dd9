"""The Telegram bot: every operation from the chat, for the admins only."""

import os

# RetryAfter.retry_after as a timedelta: the int form is deprecated and warns on every 429.
os.environ.setdefault("PTB_TIMEDELTA", "true")
