"""Conditions in the Kubernetes API conventions' shape, kept stable across reconciles.

``lastTransitionTime`` changes only when a condition's status does, so status
patches are no-ops when nothing changed (and the watch stays quiet).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from credop.domain.lifecycle import ConditionState


def _status_word(value: bool) -> str:
    return "True" if value else "False"


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    wanted: Iterable[ConditionState],
    *,
    now: datetime.datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The wanted conditions as wire dicts, keeping each unchanged condition's transition time."""
    before = {str(condition.get("type")): condition for condition in previous}
    merged = []
    for state in wanted:
        status = _status_word(state.status)
        old = before.get(state.type)
        unchanged = old is not None and old.get("status") == status
        merged.append(
            {
                "type": state.type,
                "status": status,
                "reason": state.reason,
                "message": state.message,
                "lastTransitionTime": old["lastTransitionTime"] if unchanged and old else timestamp(now),
                **({"observedGeneration": generation} if generation is not None else {}),
            }
        )
    return merged


def became_true(
    previous: Sequence[Mapping[str, Any]], merged: Sequence[Mapping[str, Any]], condition_type: str
) -> bool:
    """Whether ``condition_type`` turned True in this change (for notify-once Events)."""
    old = next((c for c in previous if c.get("type") == condition_type), None)
    new = next((c for c in merged if c.get("type") == condition_type), None)
    return bool(new and new.get("status") == "True" and (old is None or old.get("status") != "True"))


RFC3339_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
"""The ``strftime`` format of :func:`timestamp`."""


def timestamp(instant: datetime.datetime) -> str:
    """RFC 3339 in UTC with seconds, as metav1.Time serialises."""
    return instant.astimezone(datetime.UTC).strftime(RFC3339_SECONDS)


def precise_timestamp(instant: datetime.datetime) -> str:
    """RFC 3339 in UTC with microseconds, for ordering (metav1.MicroTime's shape)."""
    return instant.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
