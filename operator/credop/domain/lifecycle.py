"""The life of a ServiceAccountKey: its deadlines, and its phase and conditions at any instant.

The controller gathers :class:`KeyFacts`, asks :func:`key_state` what the key's
status should be ``now``, applies it, and asks the scheduler to come back at
``KeyState.next_check``. Nothing here reads a clock.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass

from credop.api.common import ACTIVE, DISABLED, EXPIRED, FAILED, INACTIVE, PENDING
from credop.api.keypolicy import KeyPolicySpec
from credop.api.serviceaccountkey import ServiceAccountKeySpec
from credop.domain.durations import parse_duration, parse_optional_duration
from credop.domain.policy import ResolvedPolicy, Violation

READY = "Ready"
EXPIRING_SOON = "ExpiringSoon"
ROTATION_DUE = "RotationDue"
UNUSED = "Unused"
SECRET_MISSING = "SecretMissing"
RENEW_FRACTION = 3  # rotate automatically a third of the way before the deadline, as cert-manager renews


@dataclass(frozen=True)
class KeyFacts:
    """What the controller gathered about one key; no secrets."""

    spec: ServiceAccountKeySpec
    policy: ResolvedPolicy
    violations: tuple[Violation, ...] = ()
    minted_at: datetime.datetime | None = None
    """When the current secret was minted (status.lastRotatedAt); ``None`` before the first mint."""
    last_used_at: datetime.datetime | None = None
    secret_present: bool = True
    previous_valid_until: datetime.datetime | None = None


@dataclass(frozen=True)
class KeyTimeline:
    """The instants at which the key's state changes by itself."""

    expires_at: datetime.datetime | None = None
    expiry_notice_at: datetime.datetime | None = None
    rotation_due_at: datetime.datetime | None = None
    rotation_notice_at: datetime.datetime | None = None
    idle_limit_at: datetime.datetime | None = None
    idle_notice_at: datetime.datetime | None = None
    auto_rotate_at: datetime.datetime | None = None

    def instants(self) -> list[datetime.datetime]:
        values = (
            self.expires_at,
            self.expiry_notice_at,
            self.rotation_due_at,
            self.rotation_notice_at,
            self.idle_limit_at,
            self.idle_notice_at,
            self.auto_rotate_at,
        )
        return [value for value in values if value is not None]


@dataclass(frozen=True)
class ConditionState:
    type: str
    status: bool
    reason: str
    message: str = ""


@dataclass(frozen=True)
class KeyState:
    """What the key's status should say now, and when to look again."""

    phase: str
    reason: str
    message: str
    conditions: tuple[ConditionState, ...]
    timeline: KeyTimeline
    next_check: datetime.datetime | None
    rotate_now: bool = False

    @property
    def verifies(self) -> bool:
        """Whether the key's secret should be accepted now."""
        return self.phase == ACTIVE


def key_expires_at(
    spec: ServiceAccountKeySpec, policy: KeyPolicySpec, *, minted_at: datetime.datetime
) -> datetime.datetime | None:
    """When a secret minted at ``minted_at`` expires: the spec's ask, capped by the policy's maxExpiry."""
    if spec.never_expires:
        requested = None
    elif spec.expires_at is not None:
        requested = spec.expires_at
    elif spec.expires_in is not None:
        requested = minted_at + parse_duration(spec.expires_in)
    else:
        default = parse_optional_duration(policy.default_expiry)
        requested = None if default is None else minted_at + default
    limit = parse_optional_duration(policy.max_expiry)
    if limit is None or spec.never_expires:
        return requested
    return minted_at + limit if requested is None else min(requested, minted_at + limit)


def key_timeline(facts: KeyFacts, policy: KeyPolicySpec) -> KeyTimeline:
    """The deadlines of a minted key under ``policy``."""
    assert facts.minted_at is not None
    minted_at = facts.minted_at
    expires_at = key_expires_at(facts.spec, policy, minted_at=minted_at)
    rotation_due_at = _after(minted_at, policy.rotation.period)
    idle_since = max(minted_at, facts.last_used_at) if facts.last_used_at else minted_at
    idle_limit_at = _after(idle_since, policy.usage.max_idle)
    return KeyTimeline(
        expires_at=expires_at,
        expiry_notice_at=_before(expires_at, policy.expiry_notify_before),
        rotation_due_at=rotation_due_at,
        rotation_notice_at=_before(rotation_due_at, policy.rotation.notify_before),
        idle_limit_at=idle_limit_at,
        idle_notice_at=_before(idle_limit_at, policy.usage.notify_before),
        auto_rotate_at=_auto_rotate_at(facts, minted_at, expires_at, rotation_due_at),
    )


def _after(start: datetime.datetime, duration: str) -> datetime.datetime | None:
    delta = parse_optional_duration(duration)
    return None if delta is None else start + delta


def _before(deadline: datetime.datetime | None, notice: str) -> datetime.datetime | None:
    delta = parse_optional_duration(notice)
    if deadline is None or delta is None or not delta:
        return None
    return deadline - delta


def _auto_rotate_at(
    facts: KeyFacts,
    minted_at: datetime.datetime,
    expires_at: datetime.datetime | None,
    rotation_due_at: datetime.datetime | None,
) -> datetime.datetime | None:
    """Before the rotation deadline, and before a relative expiry (rotation restarts it)."""
    rotation = facts.spec.rotation
    if not rotation.auto_rotate:
        return None
    renew_before = parse_optional_duration(rotation.renew_before)
    expiry_restarts = facts.spec.expires_at is None and not facts.spec.never_expires
    deadlines = [rotation_due_at, expires_at if expiry_restarts else None]
    instants = [
        deadline - (renew_before if renew_before is not None else (deadline - minted_at) / RENEW_FRACTION)
        for deadline in deadlines
        if deadline is not None
    ]
    return min(instants, default=None)


def key_state(facts: KeyFacts, *, now: datetime.datetime) -> KeyState:
    """The phase, conditions and next wake-up of a key at ``now``."""
    policy = facts.policy.spec
    if policy is None:
        return not_ready(FAILED, "PolicyNotFound", f'KeyPolicy "{facts.policy.name}" does not exist')
    if facts.violations:
        return not_ready(FAILED, "PolicyViolation", "; ".join(str(v) for v in facts.violations))
    if facts.minted_at is None:
        return not_ready(PENDING, "Minting", "the secret is being minted")
    timeline = key_timeline(facts, policy)
    phase, reason, message = _phase(facts, policy, timeline, now)
    conditions = (
        ConditionState(READY, phase in (ACTIVE, INACTIVE), reason, message),
        _expiring_soon(timeline, now),
        _rotation_due(timeline, now),
        _unused(timeline, now),
        ConditionState(
            SECRET_MISSING,
            not facts.secret_present,
            "SecretDeleted" if not facts.secret_present else "SecretPresent",
            "the Secret was deleted; rotate the key to mint a new one" if not facts.secret_present else "",
        ),
    )
    future = [instant for instant in timeline.instants() if instant > now]
    if facts.previous_valid_until is not None and facts.previous_valid_until > now:
        future.append(facts.previous_valid_until)
    rotate_now = timeline.auto_rotate_at is not None and now >= timeline.auto_rotate_at and facts.spec.active
    return KeyState(phase, reason, message, conditions, timeline, min(future, default=None), rotate_now)


def not_ready(phase: str, reason: str, message: str) -> KeyState:
    """A state that is not Ready and has no deadlines (failed, or not minted yet)."""
    return KeyState(phase, reason, message, (ConditionState(READY, False, reason, message),), KeyTimeline(), None)


def _phase(
    facts: KeyFacts, policy: KeyPolicySpec, timeline: KeyTimeline, now: datetime.datetime
) -> tuple[str, str, str]:
    """The first rule that applies, in order of severity."""
    if not facts.secret_present:
        return FAILED, "SecretMissing", "the Secret holding the key was deleted; rotate the key to mint a new one"
    if timeline.expires_at is not None and now >= timeline.expires_at:
        return EXPIRED, "Expired", f"the key expired at {_iso(timeline.expires_at)}"
    if policy.rotation.action == "Disable" and timeline.rotation_due_at is not None and now >= timeline.rotation_due_at:
        return (
            DISABLED,
            "RotationOverdue",
            f"not rotated within the KeyPolicy's {policy.rotation.period}; rotate it to re-enable",
        )
    if policy.usage.action == "Disable" and timeline.idle_limit_at is not None and now >= timeline.idle_limit_at:
        return DISABLED, "Unused", f"not used for the KeyPolicy's {policy.usage.max_idle}; rotate it to re-enable"
    if not facts.spec.active:
        return INACTIVE, "Deactivated", "spec.active is false"
    return ACTIVE, ACTIVE, ""


def _expiring_soon(timeline: KeyTimeline, now: datetime.datetime) -> ConditionState:
    if timeline.expires_at is None:
        return ConditionState(EXPIRING_SOON, False, "NeverExpires")
    if now >= timeline.expires_at:
        return ConditionState(EXPIRING_SOON, False, "Expired", f"expired at {_iso(timeline.expires_at)}")
    if timeline.expiry_notice_at is not None and now >= timeline.expiry_notice_at:
        return ConditionState(EXPIRING_SOON, True, "ExpiringSoon", f"expires at {_iso(timeline.expires_at)}")
    return ConditionState(EXPIRING_SOON, False, "NotExpiringSoon", f"expires at {_iso(timeline.expires_at)}")


def _rotation_due(timeline: KeyTimeline, now: datetime.datetime) -> ConditionState:
    due = timeline.rotation_due_at
    if due is None:
        return ConditionState(ROTATION_DUE, False, "NoRotationPolicy")
    if now >= due:
        return ConditionState(ROTATION_DUE, True, "RotationOverdue", f"rotation was due at {_iso(due)}")
    if timeline.rotation_notice_at is not None and now >= timeline.rotation_notice_at:
        return ConditionState(ROTATION_DUE, True, "RotationDueSoon", f"rotation is due at {_iso(due)}")
    return ConditionState(ROTATION_DUE, False, "RotationNotDue", f"rotation is due at {_iso(due)}")


def _unused(timeline: KeyTimeline, now: datetime.datetime) -> ConditionState:
    limit = timeline.idle_limit_at
    if limit is None:
        return ConditionState(UNUSED, False, "NoUsagePolicy")
    if now >= limit:
        return ConditionState(UNUSED, True, "IdleLimitReached", f"unused since before {_iso(limit)}")
    if timeline.idle_notice_at is not None and now >= timeline.idle_notice_at:
        return ConditionState(UNUSED, True, "IdleLimitNear", f"reaches the idle limit at {_iso(limit)} unless used")
    return ConditionState(UNUSED, False, "RecentlyUsed")


def _iso(instant: datetime.datetime) -> str:
    return instant.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_claims_digest(spec: ServiceAccountKeySpec, policy: KeyPolicySpec, *, minted_at: datetime.datetime) -> str:
    """What a JWT-format key minted at ``minted_at`` would say (its roles and expiry), as a short digest.

    A JWT carries its claims: when the spec's roles or expiry change, the JWT
    minted before would lie about them, so a different digest means a new JWT.
    """
    expires_at = key_expires_at(spec, policy, minted_at=minted_at)
    claims = {
        "roles": [role.to_wire() for role in spec.roles],
        "expiresAt": expires_at.isoformat() if expires_at is not None else None,
    }
    return hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).hexdigest()[:16]
