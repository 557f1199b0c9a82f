"""Active-client slots: which ApiClients in a namespace are Active, at most N at once.

One actor per namespace calls :func:`allocate_slots` with a fresh view of every
client and applies the result demotions first, so that no observer ever sees
more than the limit Active. An Active client keeps its slot while it stays
eligible; waiting clients get free slots oldest request first.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from credop.api.common import ACTIVE

LIMIT_REACHED = "ActiveLimitReached"


@dataclass(frozen=True)
class ClientView:
    """One client as the slot actor sees it."""

    name: str
    phase: str | None
    """The phase status shows now."""
    created_at: datetime.datetime
    limit: int
    """maxActiveClients of the client's policy."""
    eligible: bool | None
    """True: minted, valid and wanted active; False: not; None: not yet reconciled since start (left alone)."""
    requested_at: datetime.datetime | None = None
    """When it started waiting for a slot."""


@dataclass(frozen=True)
class SlotPlan:
    """Which clients to demote and promote, in that order."""

    demote: tuple[str, ...]
    promote: tuple[str, ...]
    waiting: tuple[str, ...]
    """Eligible clients left without a slot (Inactive, ActiveLimitReached)."""


def _queue_order(client: ClientView) -> tuple[datetime.datetime, datetime.datetime, str]:
    return (client.requested_at or client.created_at, client.created_at, client.name)


def allocate_slots(clients: Iterable[ClientView]) -> SlotPlan:
    """Decide the Active set: keep holders, demote the ineligible, promote oldest-first within every limit.

    Clients not yet reconciled (``eligible is None``) keep whatever they show and,
    when Active, count against the limit; their own limit is not known yet.
    """
    views = list(clients)
    holding = sorted((c for c in views if c.phase == ACTIVE and c.eligible is True), key=_queue_order)
    unknown = [c for c in views if c.phase == ACTIVE and c.eligible is None]
    demote = [c.name for c in views if c.phase == ACTIVE and c.eligible is False]
    while holding and len(holding) + len(unknown) > min(c.limit for c in holding):
        demote.append(holding.pop().name)
    waiting = sorted((c for c in views if c.eligible and c.phase != ACTIVE), key=_queue_order)
    promoted: list[ClientView] = []
    for candidate in waiting:
        known = [candidate, *holding, *promoted]
        if len(holding) + len(unknown) + len(promoted) < min(c.limit for c in known):
            promoted.append(candidate)
    left = tuple(c.name for c in waiting if c not in promoted)
    return SlotPlan(demote=tuple(demote), promote=tuple(c.name for c in promoted), waiting=left)
