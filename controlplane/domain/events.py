"""Events: one thing that happened and is worth telling a person, and the seam that takes it.

The engine, the poller and the load sampler publish through an `EventSink`; the service
layer's Outbox implements it (persists, then tells subscribers). Publishers name the kind
with `EventKind`; an Event read back from the store keeps its kind as stored. The text is
a `Text` (rendered in each reader's language); the stored event keeps it as data (`msg`)
beside its English rendering (`text`, for the logs and older readers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from controlplane.domain.kinds import EventKind
from controlplane.i18n import Text, verbatim


@dataclass(frozen=True)
class Event:
    """One thing that happened."""

    seq: int
    at: float
    kind: str  # an EventKind's value
    project: str | None
    text: str  # English, for the logs
    data: dict[str, Any] = field(default_factory=dict)
    msg: dict[str, Any] | None = None  # the Text, as data

    @property
    def message(self) -> Text:
        """What happened, to render in the reader's language."""
        return Text.from_dict(self.msg) if self.msg else verbatim(self.text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventSink(Protocol):
    """Where the engine and the samplers tell what happened."""

    def publish(
        self, kind: EventKind, project: str | None, text: Text | str, **data: Any
    ) -> Event: ...
