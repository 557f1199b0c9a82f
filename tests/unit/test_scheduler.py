"""The deadline scheduler: one heap, the latest schedule per object wins, order by time."""

from __future__ import annotations

import asyncio
import datetime

from credop.clock import utc_now
from credop.controller.scheduler import Scheduler

MS = datetime.timedelta(milliseconds=1)


async def run_until(scheduler: Scheduler[str], fired: list[str], count: int) -> None:
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(5):
            while len(fired) < count:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()


async def test_fires_in_deadline_order_not_schedule_order() -> None:
    fired: list[str] = []

    async def record(ref: str, lateness: float | None) -> None:
        fired.append(ref)

    scheduler: Scheduler[str] = Scheduler(record, concurrency=1)
    now = utc_now()
    scheduler.schedule("c", now + 30 * MS)
    scheduler.schedule("a", now + 10 * MS)
    scheduler.schedule("b", now + 20 * MS)
    await run_until(scheduler, fired, 3)
    assert fired == ["a", "b", "c"]


async def test_rescheduling_replaces_and_none_cancels() -> None:
    fired: list[str] = []

    async def record(ref: str, lateness: float | None) -> None:
        fired.append(ref)

    scheduler: Scheduler[str] = Scheduler(record)
    now = utc_now()
    scheduler.schedule("moved", now + 5 * MS)
    scheduler.schedule("moved", now + 40 * MS)
    scheduler.schedule("cancelled", now + 10 * MS)
    scheduler.cancel("cancelled")
    scheduler.schedule("other", now + 20 * MS)
    assert len(scheduler) == 2
    await run_until(scheduler, fired, 2)
    assert fired == ["other", "moved"]
    assert len(scheduler) == 0


async def test_an_earlier_deadline_wakes_a_sleeping_scheduler() -> None:
    fired: list[str] = []

    async def record(ref: str, lateness: float | None) -> None:
        fired.append(ref)

    scheduler: Scheduler[str] = Scheduler(record)
    task = asyncio.create_task(scheduler.run())
    scheduler.schedule("far", utc_now() + datetime.timedelta(hours=1))
    await asyncio.sleep(0.02)
    scheduler.schedule("near", utc_now() + 5 * MS)
    async with asyncio.timeout(5):
        while not fired:
            await asyncio.sleep(0.005)
    task.cancel()
    assert fired == ["near"]
    assert scheduler.due_at("far") is not None


async def test_a_failing_check_is_retried_later() -> None:
    async def fail(ref: str, lateness: float | None) -> None:
        raise RuntimeError("API down")

    scheduler: Scheduler[str] = Scheduler(fail)
    scheduler.schedule("x", utc_now())
    task = asyncio.create_task(scheduler.run())
    async with asyncio.timeout(5):
        while scheduler.due_at("x") is None or scheduler.due_at("x") <= utc_now():
            await asyncio.sleep(0.005)
    task.cancel()
    retry = scheduler.due_at("x")
    assert retry is not None
    assert retry > utc_now() + datetime.timedelta(seconds=5)


def test_many_reschedules_keep_the_heap_small() -> None:
    async def noop(ref: str, lateness: float | None) -> None:
        return None

    scheduler: Scheduler[int] = Scheduler(noop)
    now = utc_now()
    for round_ in range(20):
        for ref in range(500):
            scheduler.schedule(ref, now + datetime.timedelta(seconds=round_ * 1000 + ref))
    assert len(scheduler) == 500
    assert len(scheduler._heap) <= 4 * 500 + 1024


def test_schedule_by_keeps_an_earlier_deadline_and_brings_a_later_one_forward() -> None:
    async def ignore(ref: str, lateness: float | None) -> None:
        return None

    scheduler: Scheduler[str] = Scheduler(ignore)
    now = utc_now()
    scheduler.schedule("soon", now + 10 * MS)
    scheduler.schedule("late", now + 1000 * MS)
    scheduler.schedule_by("soon", now + 500 * MS)
    scheduler.schedule_by("late", now + 500 * MS)
    scheduler.schedule_by("new", now + 500 * MS)
    assert scheduler.due_at("soon") == now + 10 * MS
    assert scheduler.due_at("late") == now + 500 * MS
    assert scheduler.due_at("new") == now + 500 * MS


async def test_only_a_deadline_reports_its_lateness() -> None:
    """A look asked for soon (an event, a resync, a retry) waits its turn; that wait is no deadline missed."""
    lateness: dict[str, float | None] = {}

    async def record(ref: str, late: float | None) -> None:
        lateness[ref] = late

    scheduler: Scheduler[str] = Scheduler(record)
    past = utc_now() - datetime.timedelta(seconds=3)
    scheduler.schedule("deadline", past)
    scheduler.schedule("soon", past, deadline=False)
    scheduler.schedule_by("resync", past)
    scheduler.schedule("was soon, now a deadline", past, deadline=False)
    scheduler.schedule("was soon, now a deadline", past)
    task = asyncio.create_task(scheduler.run())
    async with asyncio.timeout(5):
        while len(lateness) < 4:
            await asyncio.sleep(0.005)
    task.cancel()
    assert lateness["soon"] is None and lateness["resync"] is None
    assert (lateness["deadline"] or 0) >= 3 and (lateness["was soon, now a deadline"] or 0) >= 3


async def test_no_more_checks_start_than_the_concurrency_however_many_are_due() -> None:
    """100,000 objects due at once used to become 100,000 tasks waiting for a slot."""
    release = asyncio.Event()
    in_flight, most, done = [0], [0], []

    async def slow(ref: int, lateness: float | None) -> None:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await release.wait()
        in_flight[0] -= 1
        done.append(ref)

    scheduler: Scheduler[int] = Scheduler(slow, concurrency=4)
    for ref in range(200):
        scheduler.schedule(ref, utc_now(), deadline=False)
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.05)
    assert in_flight[0] == 4 and len(scheduler._running) == 4 and len(scheduler) == 196
    release.set()
    async with asyncio.timeout(5):
        while len(done) < 200:
            await asyncio.sleep(0.005)
    task.cancel()
    assert most[0] == 4 and sorted(done) == list(range(200))
