"""Active-client slots: never above the limit, oldest request first, holders keep their slot."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from credop.domain.slots import ClientView, allocate_slots

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def client(
    name: str, *, phase: str | None = None, eligible: bool | None = True, age: int = 0, limit: int = 5
) -> ClientView:
    return ClientView(
        name=name, phase=phase, created_at=T0 + datetime.timedelta(seconds=age), limit=limit, eligible=eligible
    )


def test_six_new_clients_give_five_active_oldest_first() -> None:
    plan = allocate_slots([client(f"c{i}", age=i) for i in range(6)])
    assert plan.promote == ("c0", "c1", "c2", "c3", "c4")
    assert plan.waiting == ("c5",)
    assert plan.demote == ()


def test_active_clients_keep_their_slot() -> None:
    holders = [client(f"old{i}", phase="Active", age=100 + i) for i in range(5)]
    plan = allocate_slots([*holders, client("older", age=0)])
    assert plan.promote == () and plan.demote == () and plan.waiting == ("older",)


def test_freed_slot_goes_to_the_oldest_request() -> None:
    holders = [client(f"h{i}", phase="Active") for i in range(4)]
    leaving = client("leaving", phase="Active", eligible=False)
    waiting = [client("w2", phase="Inactive", age=2), client("w1", phase="Inactive", age=1)]
    plan = allocate_slots([*holders, leaving, *waiting])
    assert plan.demote == ("leaving",)
    assert plan.promote == ("w1",)


def test_requested_at_beats_creation_time() -> None:
    early = ClientView("re-enabled", "Inactive", T0, 5, True, requested_at=T0 + datetime.timedelta(hours=1))
    late = ClientView("new", None, T0 + datetime.timedelta(minutes=1), 5, True)
    assert allocate_slots([early, late] + [client(f"h{i}", phase="Active") for i in range(4)]).promote == ("new",)


def test_unknown_clients_are_left_alone_but_counted() -> None:
    unknown_holders = [client(f"u{i}", phase="Active", eligible=None) for i in range(5)]
    plan = allocate_slots([*unknown_holders, client("new")])
    assert plan.promote == () and plan.demote == ()


def test_lowered_limit_demotes_the_newest_holders() -> None:
    holders = [client(f"h{i}", phase="Active", age=i, limit=3) for i in range(5)]
    plan = allocate_slots(holders)
    assert set(plan.demote) == {"h3", "h4"}


def test_zero_limit_activates_nobody() -> None:
    assert allocate_slots([client("a", limit=0)]).promote == ()


views = st.lists(
    st.builds(
        ClientView,
        name=st.uuids().map(str),
        phase=st.sampled_from([None, "Pending", "Active", "Inactive", "Failed"]),
        created_at=st.integers(0, 1000).map(lambda s: T0 + datetime.timedelta(seconds=s)),
        limit=st.integers(0, 6),
        eligible=st.sampled_from([True, False, None]),
    ),
    max_size=30,
    unique_by=lambda c: c.name,
)


@given(views)
def test_promotions_never_exceed_a_known_limit(clients: list[ClientView]) -> None:
    plan = allocate_slots(clients)
    active = ({c.name for c in clients if c.phase == "Active"} - set(plan.demote)) | set(plan.promote)
    known = [c for c in clients if c.name in active and c.eligible is True]
    if plan.promote:
        assert len(active) <= min(c.limit for c in known)
    assert not set(plan.promote) & {c.name for c in clients if c.eligible is not True}


@given(views)
def test_demotions_restore_every_known_limit(clients: list[ClientView]) -> None:
    plan = allocate_slots(clients)
    kept = [c for c in clients if c.phase == "Active" and c.name not in plan.demote]
    known = [c for c in kept if c.eligible is True]
    if known:
        assert len(kept) <= min(c.limit for c in known) or not known
    assert all(c.eligible is not None for c in clients if c.name in plan.demote)


@given(views)
def test_waiting_clients_only_wait_when_no_slot_is_free(clients: list[ClientView]) -> None:
    plan = allocate_slots(clients)
    active = ({c.name for c in clients if c.phase == "Active"} - set(plan.demote)) | set(plan.promote)
    for name in plan.waiting:
        waiting = next(c for c in clients if c.name == name)
        limits = [waiting.limit, *(c.limit for c in clients if c.name in active and c.eligible is True)]
        assert len(active) >= min(limits)
