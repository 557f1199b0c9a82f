"""Leader election decisions: take a free or expired lease, renew our own, wait for a live one."""

from __future__ import annotations

import datetime

import pytest

from credop.domain.lease import LeaseMove, LeaseTerms, lease_spec, next_move

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
ME = LeaseTerms("me", datetime.timedelta(seconds=15))


def held_by(holder: str | None, renewed_seconds_ago: int) -> dict[str, object]:
    renewed = (T0 - datetime.timedelta(seconds=renewed_seconds_ago)).isoformat().replace("+00:00", "Z")
    return {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed, "acquireTime": renewed}


@pytest.mark.parametrize(
    ("spec", "move"),
    [
        ({}, LeaseMove.TAKE),
        (held_by(None, 0), LeaseMove.TAKE),
        (held_by("me", 100), LeaseMove.RENEW),
        (held_by("other", 5), LeaseMove.WAIT),
        (held_by("other", 14), LeaseMove.WAIT),
        (held_by("other", 15), LeaseMove.TAKE),
        (held_by("other", 60), LeaseMove.TAKE),
    ],
)
def test_next_move(spec: dict[str, object], move: LeaseMove) -> None:
    assert next_move(spec, ME, now=T0) is move


def test_taking_over_counts_a_transition_and_renewing_keeps_acquire_time() -> None:
    taken = lease_spec(held_by("other", 60), ME, LeaseMove.TAKE, now=T0)
    assert taken["holderIdentity"] == "me"
    assert taken["leaseTransitions"] == 1
    later = T0 + datetime.timedelta(seconds=5)
    renewed = lease_spec(taken, ME, LeaseMove.RENEW, now=later)
    assert renewed["acquireTime"] == taken["acquireTime"]
    assert renewed["renewTime"] != taken["renewTime"]
    assert renewed["leaseTransitions"] == 1
