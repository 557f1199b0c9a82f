"""Writing status: only the fields that changed, and the Events its transitions deserve."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from credop.controller.store import ObjectRef
from credop.domain.conditions import became_true, timestamp
from credop.kube.client import NotFoundError

if TYPE_CHECKING:
    from credop.controller.runtime import Runtime

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
    "Active": ("Activated", "Normal"),
    "Inactive": ("Deactivated", "Normal"),
    "Expired": ("Expired", "Warning"),
    "Disabled": ("Disabled", "Warning"),
    "Failed": ("Failed", "Warning"),
}


def timestamp_or_none(instant: datetime.datetime | None) -> str | None:
    return timestamp(instant) if instant is not None else None


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Body:
    """The merge patch that turns ``current`` into ``desired`` for the keys ``desired`` names (None removes)."""
    return {key: value for key, value in desired.items() if current.get(key) != value}


async def apply_status(runtime: Runtime, plural: str, body: Body, desired: Mapping[str, Any]) -> Body | None:
    """Patch ``.status`` with what changed; returns the object as the API server now has it."""
    patch = status_patch(body.get("status") or {}, desired)
    if not patch:
        return None
    meta = body["metadata"]
    try:
        patched = await runtime.kube.patch_status(plural, meta["namespace"], meta["name"], {"status": patch})
    except NotFoundError:
        return None
    if _what_credop_acts_on(patched) == _what_credop_acts_on(body):
        runtime.store.note_own_write(ObjectRef.of(plural, patched), patched)  # its event brings nothing new
    return patched


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
    if new == "Active" and old in (None, "Pending"):
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
