"""The activity log: transitions found by comparing two statuses, kept bounded and ordered (pure)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.api.notifications import HISTORY_LIMIT
from credop.domain.history import Transition, after_write, appended, transitions

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
MINTED = {"phase": "Active", "keyGeneration": 1, "accessKeyId": "crak_a", "createdBy": "alice"}


def actions(before: dict[str, Any], desired: dict[str, Any], policy: str | None = "policy/default") -> list[str]:
    return [t.action for t in transitions(before, after_write(before, desired), policy_actor=policy)]


@pytest.mark.parametrize(
    ("before", "desired", "expected"),
    [
        ({}, MINTED, ["Created"]),
        (MINTED, MINTED, []),
        (MINTED, {"keyGeneration": 2, "rotateHandled": "auto:2"}, ["Rotated"]),
        (MINTED, {"keyGeneration": 2, "rotateHandled": "manual:x"}, ["Rotated"]),
        (
            MINTED,
            {"invalidateTokensHandled": "now", "tokensInvalidBefore": "2030-01-01T00:00:00Z"},
            ["TokensInvalidated"],
        ),
        (MINTED, {"phase": "Inactive", "reason": "Deactivated"}, ["Deactivated"]),
        (
            {**MINTED, "phase": "Inactive", "reason": "Deactivated"},
            {"phase": "Active", "reason": "Active"},
            ["Activated"],
        ),
        ({"phase": "Pending"}, {"phase": "Active"}, []),
        (MINTED, {"phase": "Inactive", "reason": "ActiveLimitReached"}, ["WaitingForSlot"]),
        (MINTED, {"phase": "Disabled", "reason": "Unused", "message": "idle"}, ["Disabled"]),
        (MINTED, {"phase": "Expired", "reason": "Expired"}, ["Expired"]),
        (MINTED, {"phase": "Failed", "reason": "SecretMissing"}, ["Failed"]),
        ({**MINTED, "clientId": "a"}, {"clientId": "b"}, ["ClientIdChanged"]),
        ({**MINTED, "expiresAt": "2030-01-01T00:00:00Z"}, {"expiresAt": "2031-01-01T00:00:00Z"}, ["ExpiryExtended"]),
        ({**MINTED, "expiresAt": "2031-01-01T00:00:00Z"}, {"expiresAt": "2030-01-01T00:00:00Z"}, ["ExpiryShortened"]),
        ({**MINTED, "expiresAt": "2030-01-01T00:00:00Z"}, {"expiresAt": None}, ["ExpiryExtended"]),
        (
            {**MINTED, "expiresAt": "2030-01-01T00:00:00Z"},
            {"keyGeneration": 2, "rotateHandled": "auto:2", "expiresAt": "2031-01-01T00:00:00Z"},
            ["Rotated"],
        ),
    ],
)
def test_transitions(before: dict[str, Any], desired: dict[str, Any], expected: list[str]) -> None:
    assert actions(before, desired) == expected


def test_actors_where_known() -> None:
    created = transitions({}, MINTED)[0]
    assert created.actor == "alice" and created.generation == 1
    rotated = transitions(MINTED, {**MINTED, "keyGeneration": 2, "rotateHandled": "auto:2"})[0]
    assert rotated.actor == "credop" and "automatically" in rotated.message
    manual = transitions(MINTED, {**MINTED, "keyGeneration": 2, "rotateHandled": "manual:r1"})[0]
    assert manual.actor is None and "credop.dev/rotate=r1" in manual.message
    disabled = transitions(
        MINTED, {**MINTED, "phase": "Disabled", "reason": "RotationOverdue"}, policy_actor="policy/p"
    )
    assert disabled[0].actor == "policy/p"


def test_entry_wire_form() -> None:
    entry = Transition("Rotated", "m" * 600, "credop", 2).entry(now=NOW)
    assert entry == {
        "time": "2030-01-02T03:04:05Z",
        "action": "Rotated",
        "actor": "credop",
        "generation": 2,
        "message": "m" * 512,
    }


@given(st.lists(st.sampled_from(["Created", "Rotated", "Activated"]), max_size=80), st.integers(0, 30))
def test_history_is_bounded_ordered_and_keeps_the_newest(new: list[str], existing: int) -> None:
    history = [{"time": "2029-01-01T00:00:00Z", "action": f"old{i}"} for i in range(min(existing, HISTORY_LIMIT))]
    result = appended(history, [Transition(action, "m") for action in new], now=NOW)
    assert len(result) == min(len(history) + len(new), HISTORY_LIMIT)
    expected = [h["action"] for h in history] + new
    assert [entry["action"] for entry in result] == expected[-HISTORY_LIMIT:]
