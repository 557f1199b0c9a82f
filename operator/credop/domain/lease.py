"""Leader election over a coordination.k8s.io Lease: who may hold it, decided from its spec and ``now``."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from credop.domain.conditions import parse_timestamp, precise_timestamp


class LeaseMove(Enum):
    TAKE = "take"  # free or expired: take it over
    RENEW = "renew"  # ours: renew it
    WAIT = "wait"  # someone else holds a live lease


@dataclass(frozen=True)
class LeaseTerms:
    identity: str
    duration: datetime.timedelta = datetime.timedelta(seconds=15)


def lease_expiry(spec: Mapping[str, Any]) -> datetime.datetime | None:
    renewed = parse_timestamp(spec.get("renewTime")) or parse_timestamp(spec.get("acquireTime"))
    seconds = spec.get("leaseDurationSeconds")
    if renewed is None or not seconds:
        return None
    return renewed + datetime.timedelta(seconds=int(seconds))


def next_move(spec: Mapping[str, Any], terms: LeaseTerms, *, now: datetime.datetime) -> LeaseMove:
    holder = spec.get("holderIdentity")
    if holder == terms.identity:
        return LeaseMove.RENEW
    expiry = lease_expiry(spec)
    if not holder or expiry is None or expiry <= now:
        return LeaseMove.TAKE
    return LeaseMove.WAIT


def lease_spec(
    previous: Mapping[str, Any], terms: LeaseTerms, move: LeaseMove, *, now: datetime.datetime
) -> dict[str, Any]:
    """The Lease spec after taking or renewing it."""
    stamp = precise_timestamp(now)
    spec = {
        "holderIdentity": terms.identity,
        "leaseDurationSeconds": int(terms.duration.total_seconds()),
        "renewTime": stamp,
        "acquireTime": previous.get("acquireTime") if move is LeaseMove.RENEW else stamp,
        "leaseTransitions": int(previous.get("leaseTransitions") or 0)
        + (1 if move is LeaseMove.TAKE and previous.get("holderIdentity") else 0),
    }
    return {key: value for key, value in spec.items() if value is not None}
