"""One scheduler for every deadline of every credential: a heap, a single task.

Event handlers tell it the next instant each object needs a look
(:meth:`Scheduler.schedule`); it sleeps until the earliest, then calls the
callback for each due object. A later call for the same object replaces the
earlier one (stale heap entries are skipped when popped), so memory is one
heap entry per pending object rather than a task per object; and no more
callbacks start than ``concurrency`` (100,000 objects due at once are popped
as slots free, not turned into 100,000 waiting tasks).

Only a deadline (``schedule(..., deadline=True)``, the default) reports its
lateness to the callback; a look asked for "soon" (an event, a resync, a
retry) reports ``None``: its wait in the queue is not a deadline missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from credop.clock import Clock, utc_now

logger = logging.getLogger(__name__)
Ref = TypeVar("Ref", bound=Hashable)


class Scheduler(Generic[Ref]):
    """Calls ``callback(ref, lateness_seconds)`` once at (or just after) the instant last scheduled for ``ref``
    (lateness ``None`` unless that instant was a deadline)."""

    def __init__(
        self,
        callback: Callable[[Ref, float | None], Awaitable[None]],
        *,
        clock: Clock = utc_now,
        concurrency: int = 32,
    ) -> None:
        self._callback = callback
        self._clock = clock
        self._heap: list[tuple[datetime.datetime, int, Ref]] = []
        self._due: dict[Ref, datetime.datetime] = {}
        self._soon: set[Ref] = set()
        """Objects whose pending look is not a deadline."""
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self._concurrency = concurrency
        self._running: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._due)

    def due_at(self, ref: Ref) -> datetime.datetime | None:
        return self._due.get(ref)

    def schedule(self, ref: Ref, when: datetime.datetime | None, *, deadline: bool = True) -> None:
        """Look at ``ref`` at ``when``; ``None`` cancels. Replaces any earlier schedule for ``ref``."""
        if when is None:
            self._due.pop(ref, None)
            self._soon.discard(ref)
            return
        if deadline:
            self._soon.discard(ref)
        else:
            self._soon.add(ref)
        if self._due.get(ref) == when:
            return
        self._due[ref] = when
        heapq.heappush(self._heap, (when, next(self._counter), ref))
        if self._heap[0][2] == ref:
            self._wakeup.set()
        self._compact_if_sparse()

    def schedule_by(self, ref: Ref, when: datetime.datetime) -> None:
        """Look at ``ref`` no later than ``when`` (an earlier schedule stays); not a deadline."""
        due = self._due.get(ref)
        if due is None or due > when:
            self.schedule(ref, when, deadline=False)

    def cancel(self, ref: Ref) -> None:
        self.schedule(ref, None)

    def _compact_if_sparse(self) -> None:
        if len(self._heap) > 1024 and len(self._heap) > 4 * len(self._due):
            self._heap = [(when, n, ref) for when, n, ref in self._heap if self._due.get(ref) == when]
            heapq.heapify(self._heap)

    async def run(self) -> None:
        """Fire due entries until cancelled."""
        try:
            while True:
                await self._sleep_until_next()
                self._fire_due()
        finally:
            for task in self._running:
                task.cancel()

    async def _sleep_until_next(self) -> None:
        self._wakeup.clear()
        timeout = None
        if self._heap and len(self._running) < self._concurrency:
            timeout = max(0.0, (self._heap[0][0] - self._clock()).total_seconds())
        if timeout == 0.0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)

    def _fire_due(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now and len(self._running) < self._concurrency:
            when, _, ref = heapq.heappop(self._heap)
            if self._due.get(ref) != when:
                continue
            del self._due[ref]
            lateness = None if ref in self._soon else (now - when).total_seconds()
            self._soon.discard(ref)
            task = asyncio.create_task(self._invoke(ref, lateness))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()  # a slot is free: due entries waiting for one may start

    async def _invoke(self, ref: Ref, lateness: float | None) -> None:
        try:
            await self._callback(ref, lateness)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("scheduled check of %s failed; retrying in 10s", ref)
            retry = self._clock() + datetime.timedelta(seconds=10)
            if self._due.get(ref, retry) >= retry:
                self.schedule(ref, retry, deadline=False)
