"""Each distinct error of a watched app once, with a count: a crash-looping app's output.

An app that crashes at start prints the same traceback at every attempt (86 lines every
2 s in the report that asked for this). `ErrorDigest` takes a slot's lines as they come
and gives back the lines worth showing: ordinary lines as they are, a traceback or an
error line the first time it is seen, and nothing for a repeat, which is counted instead.
Two tracebacks are the same error when their last line (the exception, 'ValueError:
boom') and the place it was raised (the innermost 'File "…", line N') are the same; two
error lines when their text is. `seen` keeps every distinct error with its count, oldest
first, for the live card and the verdict. Pure: no clock, no files.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

ERROR_RE = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|CRITICAL|FATAL)\b")
TRACEBACK_START = "Traceback (most recent call last):"
# lines that join two tracebacks of one chained exception
CHAIN = (
    "During handling of the above exception",
    "The above exception was the direct cause",
    TRACEBACK_START,
)
FRAME_RE = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)')
MAX_BLOCK = 400  # lines of one traceback kept to show; a longer one is cut there
MAX_DISTINCT = 50  # distinct errors remembered; later new ones are counted under the last


@dataclass
class SeenError:
    """One distinct error: its last line, where it was raised ('main.py:3', '' for an
    error line that is no traceback), and how many times it came."""

    error: str
    where: str = ""
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeenError:
        return cls(
            error=str(data.get("error", "")),
            where=str(data.get("where", "")),
            count=int(data.get("count", 1)),
        )


def location(block: list[str]) -> str:
    """'main.py:3': the file (its base name) and line of the innermost frame."""
    for line in reversed(block):
        match = FRAME_RE.match(line)
        if match:
            return f"{match['file'].rsplit('/', 1)[-1]}:{match['line']}"
    return ""


def last_line(block: list[str]) -> str:
    """The exception line of a traceback: its last line that is neither blank nor a frame."""
    for line in reversed(block):
        if line.strip() and not line.startswith((" ", "\t")):
            return line.strip()
    return block[-1].strip() if block else ""


class ErrorDigest:
    """Feeds one stream's lines; `feed` returns what to show now (see the module doc)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], SeenError] = {}
        self._block: list[str] | None = None
        self._ended = False  # the block has its exception line; a chain may still follow

    def feed(self, lines: list[str]) -> list[str]:
        """The lines worth showing among `lines`; a traceback cut at the end of `lines`
        waits for its exception line (`flush` gives it at the end of a watch)."""
        out: list[str] = []
        for line in lines:
            out += self._take(line)
        if self._ended:
            out += self._close()
        return out

    def flush(self) -> list[str]:
        """A traceback still open (its app died mid-print): what to show of it."""
        return self._close() if self._block is not None else []

    def _take(self, line: str) -> list[str]:
        if self._block is not None:
            blank = not line.strip()
            if self._ended and not (blank or line.startswith(CHAIN)):
                return self._close() + self._take(line)
            if len(self._block) < MAX_BLOCK:
                self._block.append(line)
            if line.startswith(CHAIN):
                self._ended = False
            elif not blank and not line.startswith((" ", "\t")):
                self._ended = True  # the exception line (blank and frame lines change nothing)
            return []
        if line.startswith(TRACEBACK_START):
            self._block, self._ended = [line], False
            return []
        if ERROR_RE.search(line):
            return [line] if self._count(line.strip(), "") else []
        return [line]

    def _close(self) -> list[str]:
        block = self._block or []
        self._block, self._ended = None, False
        while block and not block[-1].strip():
            block.pop()
        if not block:
            return []
        return block if self._count(last_line(block), location(block)) else []

    def _count(self, error: str, where: str) -> bool:
        """Count one occurrence; True when it is the first of its kind."""
        key = (error, where)
        seen = self.seen.get(key)
        if seen is None and len(self.seen) >= MAX_DISTINCT:
            seen = list(self.seen.values())[-1]
        if seen is not None:
            seen.count += 1
            return False
        self.seen[key] = SeenError(error=error, where=where)
        return True

    def errors(self) -> list[SeenError]:
        """Every distinct error so far, oldest first."""
        return list(self.seen.values())
