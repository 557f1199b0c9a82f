"""A credential's activity log: the transitions one status change makes, and the bounded list on status.

The controllers write a status ``after`` over the ``before`` they read;
:func:`transitions` says what happened in words (created, rotated, activated,
…) by comparing the two, so a write retried after a crash or a conflict finds
the same transitions again and a write that changes nothing finds none.
Nothing here reads a clock: ``now`` is a parameter.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credop.api.common import ACTIVE, DISABLED, EXPIRED, FAILED, INACTIVE, PENDING
from credop.api.notifications import HISTORY_LIMIT
from credop.domain.conditions import parse_timestamp, timestamp

CREDOP = "credop"
Status = Mapping[str, Any]


@dataclass(frozen=True)
class Transition:
    """One thing that happened to a credential (no secret value: names, IDs, times and reasons only)."""

    action: str
    message: str
    actor: str | None = None
    generation: int | None = None

    def entry(self, *, now: datetime.datetime) -> dict[str, Any]:
        """The status.history item (wire form)."""
        entry: dict[str, Any] = {"time": timestamp(now), "action": self.action}
        if self.actor:
            entry["actor"] = self.actor
        if self.generation is not None:
            entry["generation"] = self.generation
        entry["message"] = self.message[:512]
        return entry


def after_write(before: Status, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The status a merge patch of ``desired`` leaves over ``before`` (``None`` removes a field)."""
    merged = dict(before)
    for key, value in desired.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def transitions(before: Status, after: Status, *, policy_actor: str | None = None) -> list[Transition]:
    """What changed between two statuses of one credential, oldest cause first."""
    generation = _int(after.get("keyGeneration"))
    found = [
        *_secret_transitions(before, after, generation),
        *_identity_transitions(before, after, generation),
        *_phase_transitions(before, after, generation, policy_actor=policy_actor),
    ]
    return found


def _secret_transitions(before: Status, after: Status, generation: int | None) -> list[Transition]:
    old = _int(before.get("keyGeneration"))
    found = []
    if generation is not None and old is None:
        identifier = after.get("accessKeyId") or after.get("clientId")
        what = f"access key {identifier}" if after.get("accessKeyId") else f'client "{identifier}"'
        found.append(
            Transition("Created", f"{what} minted (generation {generation})", after.get("createdBy"), generation)
        )
    elif generation is not None and old is not None and generation > old:
        request = str(after.get("rotateHandled") or "")
        automatic = request.startswith("auto:")
        how = "automatically, by the rotation policy" if automatic else f"on request ({_request_value(request)})"
        grace = after.get("previousSecretValidUntil")
        until = f"; the previous secret works until {grace}" if grace else ""
        found.append(
            Transition(
                "Rotated", f"new secret (generation {generation}) {how}{until}", _rotation_actor(automatic), generation
            )
        )
    handled = after.get("invalidateTokensHandled")
    if handled and handled != before.get("invalidateTokensHandled"):
        found.append(
            Transition(
                "TokensInvalidated",
                f"tokens issued before {after.get('tokensInvalidBefore')} are rejected (credop.dev/invalidate-tokens={handled})",
                generation=generation,
            )
        )
    return found


def _identity_transitions(before: Status, after: Status, generation: int | None) -> list[Transition]:
    found = []
    old_id, new_id = before.get("clientId"), after.get("clientId")
    if old_id and new_id and old_id != new_id and before.get("keyGeneration") is not None:
        found.append(
            Transition("ClientIdChanged", f'client ID changed from "{old_id}" to "{new_id}"', generation=generation)
        )
    old_expiry, new_expiry = parse_timestamp(before.get("expiresAt")), parse_timestamp(after.get("expiresAt"))
    same_secret = before.get("keyGeneration") is not None and before.get("keyGeneration") == after.get("keyGeneration")
    if same_secret and old_expiry != new_expiry:
        found.append(
            _expiry_change(before.get("expiresAt"), after.get("expiresAt"), old_expiry, new_expiry, generation)
        )
    return found


def _expiry_change(
    old_text: Any,
    new_text: Any,
    old: datetime.datetime | None,
    new: datetime.datetime | None,
    generation: int | None,
) -> Transition:
    extended = new is None or (old is not None and new > old)
    action = "ExpiryExtended" if extended else "ExpiryShortened"
    return Transition(
        action, f"expiry moved from {old_text or 'never'} to {new_text or 'never'}", generation=generation
    )


def _phase_transitions(
    before: Status, after: Status, generation: int | None, *, policy_actor: str | None
) -> list[Transition]:
    old, new = before.get("phase"), after.get("phase")
    old_reason, reason = before.get("reason"), after.get("reason")
    if old == new and old_reason == reason:
        return []
    message = str(after.get("message") or "")
    if new == ACTIVE and old not in (None, PENDING):
        return [Transition("Activated", f"active again (was {old})", generation=generation)]
    if new == INACTIVE and reason == "Deactivated":
        return [Transition("Deactivated", message or "spec.active is false", generation=generation)]
    if new == INACTIVE and reason == "ActiveLimitReached":
        return [Transition("WaitingForSlot", message or "the active-client limit is reached", generation=generation)]
    if new == DISABLED and old != DISABLED:
        return [Transition("Disabled", f"disabled by policy ({reason}): {message}", policy_actor, generation)]
    if new == EXPIRED and old != EXPIRED:
        return [Transition("Expired", message or "the key expired", CREDOP, generation)]
    if new == FAILED and (old != FAILED or old_reason != reason):
        return [Transition("Failed", f"{reason}: {message}" if message else str(reason), generation=generation)]
    return []


def appended(history: Sequence[Mapping[str, Any]], found: Sequence[Transition], *, now: datetime.datetime) -> list[Any]:
    """``history`` with ``found`` added, keeping the newest :data:`HISTORY_LIMIT` entries."""
    entries = [dict(item) for item in history] + [transition.entry(now=now) for transition in found]
    return entries[-HISTORY_LIMIT:]


def _request_value(request: str) -> str:
    kind, _, value = request.partition(":")
    return f"credop.dev/rotate={value}" if kind == "manual" else request or "credop.dev/rotate"


def _rotation_actor(automatic: bool) -> str | None:
    return CREDOP if automatic else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None
