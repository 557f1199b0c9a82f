"""Writing status: only the fields that changed, the history entries and Events its transitions deserve.

A write that adds to ``status.history`` carries the ``resourceVersion`` it was
computed from: history is derived from the status read, so a status read
stale must not be written over a newer one (the reconcile reads again and
retries, :class:`StaleStatusError`). Each transition written is also one
audit log line.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from credop import audit, names
from credop.api.common import ACTIVE, DISABLED, EXPIRED, FAILED, INACTIVE, PENDING
from credop.clock import Clock
from credop.controller.store import ObjectRef, Store
from credop.domain.conditions import became_true, timestamp
from credop.domain.history import Transition, after_write, appended, transitions
from credop.kube.client import ConflictError, Kube, NotFoundError

Body = dict[str, Any]

# Condition → (event reason, event type) when it turns True.
NOTABLE_CONDITIONS = {
    "ExpiringSoon": ("ExpiringSoon", "Warning"),
    "RotationDue": ("RotationDue", "Warning"),
    "Unused": ("Unused", "Warning"),
    "SecretMissing": ("SecretMissing", "Warning"),
}
# Phase reached → (event reason, event type).
NOTABLE_PHASES = {
    ACTIVE: ("Activated", "Normal"),
    INACTIVE: ("Deactivated", "Normal"),
    EXPIRED: ("Expired", "Warning"),
    DISABLED: ("Disabled", "Warning"),
    FAILED: ("Failed", "Warning"),
}


def timestamp_or_none(instant: datetime.datetime | None) -> str | None:
    return timestamp(instant) if instant is not None else None


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Body:
    """The merge patch that turns ``current`` into ``desired`` for the keys ``desired`` names (None removes)."""
    return {key: value for key, value in desired.items() if current.get(key) != value}


class StaleStatusError(ConflictError):
    """The object changed since it was read, and the write would have recorded history from the old status."""


class StatusWriter:
    """The one way reconcilers write status: the changed fields, history appended, the store told of own writes."""

    def __init__(self, kube: Kube, store: Store, *, clock: Clock) -> None:
        self._kube = kube
        self._store = store
        self._clock = clock

    async def apply(
        self, plural: str, body: Body, desired: Mapping[str, Any], *, history: Sequence[Transition] = ()
    ) -> Body | None:
        """Patch ``.status`` with what changed (and ``history`` appended); returns the object as the API has it."""
        current = body.get("status") or {}
        if history:
            desired = {**desired, "history": appended(current.get("history") or [], history, now=self._clock())}
        patch = status_patch(current, desired)
        if not patch:
            return None
        meta = body["metadata"]
        document: Body = {"status": patch}
        if "history" in patch and meta.get("resourceVersion"):
            document["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        try:
            patched = await self._kube.patch_status(plural, meta["namespace"], meta["name"], document)
        except NotFoundError:
            return None
        except ConflictError as conflict:
            raise StaleStatusError(str(conflict)) from None
        if _what_credop_acts_on(patched) == _what_credop_acts_on(body):
            self._store.note_own_write(ObjectRef.of(plural, patched), patched)  # its event brings nothing new
        for transition in history:
            _audit(plural, patched, transition)
        return patched

    async def refresh(self, ref: ObjectRef) -> bool:
        """Read the object again into the store (after a :class:`StaleStatusError`); False when it is gone."""
        try:
            body = await self._kube.get_object(ref.plural, ref.namespace, ref.name)
        except NotFoundError:
            return False
        self._store.remember(ref, body)
        return True


def status_transitions(
    body: Body, desired: Mapping[str, Any], *, policy: str | None, extra: Sequence[Transition] = ()
) -> list[Transition]:
    """The history entries a write of ``desired`` over ``body``'s status makes (plus ``extra`` ones)."""
    current = body.get("status") or {}
    actor = f"policy/{policy}" if policy else None
    return [*transitions(current, after_write(current, desired), policy_actor=actor), *extra]


def written(body: Body, desired: Mapping[str, Any]) -> Body:
    """``body`` as a successful write of ``desired`` leaves it (for deciding notices on the new status)."""
    return {**body, "status": after_write(body.get("status") or {}, desired)}


def _audit(plural: str, body: Body, transition: Transition) -> None:
    meta = body["metadata"]
    audit.record(
        transition.action,
        kind=names.KIND_OF_PLURAL.get(plural, plural),
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta.get("uid"),
        actor=transition.actor,
        generation=transition.generation,
        message=transition.message,
    )


def _what_credop_acts_on(body: Body) -> tuple[Any, ...]:
    """The parts of an object a reconcile reads besides status: spec (by generation), annotations, deletion."""
    meta = body["metadata"]
    return meta.get("generation"), meta.get("annotations") or {}, meta.get("deletionTimestamp")


def phase_events(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Event for a phase change (Activated, Deactivated, Expired, Disabled, Failed)."""
    old, new = current.get("phase"), desired.get("phase")
    if old == new or new not in NOTABLE_PHASES:
        return []
    reason, kind = NOTABLE_PHASES[str(new)]
    if new == ACTIVE and old in (None, PENDING):
        return []
    message = desired.get("message") or f"phase {old or 'new'} → {new}"
    return [{"type": kind, "reason": reason, "message": str(message)}]


def condition_events(
    current: Sequence[Mapping[str, Any]], desired: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A Warning for each notable condition that just turned True."""
    events = []
    for condition_type, (reason, kind) in NOTABLE_CONDITIONS.items():
        if became_true(current, desired, condition_type):
            message = next(str(c.get("message", "")) for c in desired if c.get("type") == condition_type)
            events.append({"type": kind, "reason": reason, "message": message or condition_type})
    return events
