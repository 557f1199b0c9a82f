"""The ApiClient lifecycle as pure decisions: eligibility for a slot, the phase a slot outcome gives, tokens' cut-off.

The controller gathers (the spec, the policy, whether its Secret exists), the
slot actor allocates (:mod:`credop.domain.slots`), and these functions decide
what the client's status says; nothing here reads the API or the clock.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from credop.api.common import ACTIVE, FAILED, INACTIVE
from credop.domain.conditions import precise_timestamp
from credop.domain.lifecycle import READY, SECRET_MISSING, ConditionState
from credop.domain.slots import LIMIT_REACHED
from credop.domain.tokens import invalidation_instant

DEACTIVATED = "Deactivated"


class SlotOutcome(enum.Enum):
    """What the namespace's slot allocation did to one client this round."""

    PROMOTED = "promoted"
    """Given a free slot: it becomes Active."""
    DEMOTED = "demoted"
    """Its slot was taken away (ineligible now, or the limit was lowered)."""
    WAITING = "waiting"
    """Eligible but no slot is free: Inactive, ActiveLimitReached."""
    KEPT = "kept"
    """Nothing changed for it: it keeps what it shows (or what its facts say, when ineligible)."""


@dataclass(frozen=True)
class ClientFacts:
    """What the ApiClient controller found: may it hold a slot, and if not, what should it show."""

    eligible: bool
    phase: str
    reason: str
    message: str
    limit: int
    generation: int
    secret_missing: bool = False

    @classmethod
    def failed(cls, reason: str, message: str, generation: int, *, secret_missing: bool = False) -> ClientFacts:
        return cls(False, FAILED, reason, message, 0, generation, secret_missing)


def eligibility(*, active: bool, secret_present: bool, secret_name: str, limit: int, generation: int) -> ClientFacts:
    """A minted client's facts: failed without its Secret, ineligible when deactivated, else eligible."""
    if not secret_present:
        message = f'the Secret "{secret_name}" was deleted; rotate the client to mint a new one'
        return ClientFacts.failed("SecretMissing", message, generation, secret_missing=True)
    if not active:
        return ClientFacts(False, INACTIVE, DEACTIVATED, "spec.active is false", limit, generation)
    return ClientFacts(True, ACTIVE, ACTIVE, "", limit, generation)


@dataclass(frozen=True)
class ShownStatus:
    """The part of a client's status the slot actor reads back."""

    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    activation_requested_at: str | None = None


@dataclass(frozen=True)
class SlotStatus:
    """What the client's status should say after this round."""

    phase: str
    reason: str
    message: str
    activation_requested_at: str | None
    conditions: tuple[ConditionState, ...]


def slot_status(facts: ClientFacts, outcome: SlotOutcome, shown: ShownStatus, *, now: datetime.datetime) -> SlotStatus:
    """The phase, reason, message, queue position and conditions a slot ``outcome`` gives a client."""
    phase, reason, message = _phase(facts, outcome, shown)
    ready = phase == ACTIVE or (phase == INACTIVE and reason == DEACTIVATED)
    conditions = (
        ConditionState(READY, ready, reason or phase, message),
        ConditionState(
            SECRET_MISSING, facts.secret_missing, "SecretDeleted" if facts.secret_missing else "SecretPresent"
        ),
    )
    return SlotStatus(phase, reason, message, _requested_at(facts, phase, shown, now=now), conditions)


def _phase(facts: ClientFacts, outcome: SlotOutcome, shown: ShownStatus) -> tuple[str, str, str]:
    if outcome is SlotOutcome.PROMOTED:
        return ACTIVE, ACTIVE, ""
    if outcome is SlotOutcome.WAITING:
        message = (
            f"{facts.limit} ApiClients are already Active (the KeyPolicy's maxActiveClients); waiting for a free slot"
        )
        return INACTIVE, LIMIT_REACHED, message
    if facts.eligible and outcome is SlotOutcome.KEPT:
        return shown.phase or INACTIVE, shown.reason or "", shown.message or ""
    if outcome is SlotOutcome.DEMOTED and facts.eligible:
        return INACTIVE, LIMIT_REACHED, "the KeyPolicy's maxActiveClients was lowered; waiting for a free slot"
    return facts.phase, facts.reason, facts.message


def _requested_at(facts: ClientFacts, phase: str, shown: ShownStatus, *, now: datetime.datetime) -> str | None:
    """When it started waiting for a slot: kept while it waits, cleared once it is Active or ineligible."""
    if phase == ACTIVE:
        return shown.activation_requested_at
    if not facts.eligible:
        return None
    return shown.activation_requested_at or precise_timestamp(now)


def tokens_cut_off(
    *,
    was_active: bool,
    is_active: bool,
    requested: str | None,
    handled: str | None,
    recorded: datetime.datetime | None,
    now: datetime.datetime,
) -> tuple[datetime.datetime | None, str | None]:
    """``tokensInvalidBefore`` and the invalidate-tokens request handled, for keys and clients alike.

    A new ``credop.dev/invalidate-tokens`` value moves the cut-off to now; so does
    leaving Active (tokens must not come back with a re-activated credential).
    """
    cut_off, done = recorded, handled
    if requested and requested != handled:
        cut_off, done = invalidation_instant(now), requested
    if was_active and not is_active:
        cut_off = invalidation_instant(now)
    return cut_off, done
