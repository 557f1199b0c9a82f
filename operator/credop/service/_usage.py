"""Batching credential uses into ``lastUsedAt`` writes: at most one per credential per flush interval.

Every successful authentication records a use here (a dict update); a flusher
asks for what is due. A credential is written when it has a use newer than
what the API already shows by a whole interval, and this replica has not
written it within the interval: so writes per credential stay bounded whatever
the request rate, and replicas that see each other's writes (through the
watch) do not repeat them. ``lastUsedAt`` is exact to within one interval,
which is what the usage policy's idle timer (days) needs. Pure: ``now`` is
passed in.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Decision(Enum):
    WRITE = "write"
    WAIT = "wait"
    """A newer use to write, but this replica wrote this credential less than an interval ago."""
    DROP = "drop"
    """Nothing to write: the API already shows a use within an interval of this one."""


def write_decision(
    *,
    pending: datetime.datetime,
    last_written: datetime.datetime | None,
    observed: datetime.datetime | None,
    now: datetime.datetime,
    interval: datetime.timedelta,
) -> Decision:
    """Whether a pending use is written now, later, or not at all."""
    if observed is not None and pending - observed < interval:
        return Decision.DROP
    if last_written is not None and now - last_written < interval:
        return Decision.WAIT
    return Decision.WRITE


@dataclass(frozen=True)
class UsageWrite:
    uid: str
    used_at: datetime.datetime


class UsageBatch:
    """The latest use per credential not yet written, and when this replica last wrote each."""

    def __init__(self, interval: datetime.timedelta) -> None:
        self.interval = interval
        self._pending: dict[str, datetime.datetime] = {}
        self._last_written: dict[str, datetime.datetime] = {}

    def record(self, uid: str, used_at: datetime.datetime) -> None:
        known = self._pending.get(uid)
        if known is None or used_at > known:
            self._pending[uid] = used_at

    def pending(self) -> dict[str, datetime.datetime]:
        return dict(self._pending)

    def due(self, *, now: datetime.datetime, observed: Callable[[str], datetime.datetime | None]) -> list[UsageWrite]:
        """The writes to make now; uses already shown by the API are dropped."""
        writes = []
        for uid, used_at in list(self._pending.items()):
            decision = write_decision(
                pending=used_at,
                last_written=self._last_written.get(uid),
                observed=observed(uid),
                now=now,
                interval=self.interval,
            )
            if decision is Decision.DROP:
                del self._pending[uid]
            elif decision is Decision.WRITE:
                writes.append(UsageWrite(uid, used_at))
        return writes

    def written(self, write: UsageWrite, *, now: datetime.datetime) -> None:
        """Record a successful write (a newer use that arrived meanwhile stays pending)."""
        self._last_written[write.uid] = now
        if self._pending.get(write.uid) == write.used_at:
            del self._pending[write.uid]

    def attempted(self, write: UsageWrite, *, now: datetime.datetime) -> None:
        """Record a failed write: it counts against the interval, the use stays pending."""
        self._last_written[write.uid] = now

    def forget(self, uid: str) -> None:
        self._pending.pop(uid, None)
        self._last_written.pop(uid, None)

    def forget_idle(self, *, now: datetime.datetime) -> None:
        """Drop write times older than an interval: they no longer hold anything back."""
        for uid in [uid for uid, at in self._last_written.items() if now - at >= self.interval]:
            del self._last_written[uid]
