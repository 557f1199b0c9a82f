"""The ApiClient lifecycle as pure decisions: eligibility, the status a slot outcome gives, tokens' cut-off."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.domain.clients import ClientFacts, ShownStatus, SlotOutcome, eligibility, slot_status, tokens_cut_off

NOW = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)
EARLIER = "2026-12-03T11:00:00.000000Z"
ELIGIBLE = ClientFacts(True, "Active", "Active", "", 5, 3)
DEACTIVATED = ClientFacts(False, "Inactive", "Deactivated", "spec.active is false", 5, 3)
MISSING = ClientFacts.failed("SecretMissing", "gone", 3, secret_missing=True)


@pytest.mark.parametrize(
    ("active", "present", "eligible", "phase", "reason"),
    [
        (True, True, True, "Active", "Active"),
        (False, True, False, "Inactive", "Deactivated"),
        (True, False, False, "Failed", "SecretMissing"),
        (False, False, False, "Failed", "SecretMissing"),
    ],
)
def test_eligibility(active: bool, present: bool, eligible: bool, phase: str, reason: str) -> None:
    facts = eligibility(active=active, secret_present=present, secret_name="s", limit=5, generation=2)
    assert (facts.eligible, facts.phase, facts.reason) == (eligible, phase, reason)
    assert facts.secret_missing is (not present)


@pytest.mark.parametrize(
    ("facts", "outcome", "shown", "phase", "reason", "ready", "requested"),
    [
        (
            ELIGIBLE,
            SlotOutcome.PROMOTED,
            ShownStatus("Inactive", "ActiveLimitReached", None, EARLIER),
            "Active",
            "Active",
            True,
            EARLIER,
        ),
        (ELIGIBLE, SlotOutcome.WAITING, ShownStatus("Inactive"), "Inactive", "ActiveLimitReached", False, "now"),
        (
            ELIGIBLE,
            SlotOutcome.WAITING,
            ShownStatus("Inactive", None, None, EARLIER),
            "Inactive",
            "ActiveLimitReached",
            False,
            EARLIER,
        ),
        (ELIGIBLE, SlotOutcome.KEPT, ShownStatus("Active", "Active"), "Active", "Active", True, None),
        (
            ELIGIBLE,
            SlotOutcome.DEMOTED,
            ShownStatus("Active", "Active"),
            "Inactive",
            "ActiveLimitReached",
            False,
            "now",
        ),
        (DEACTIVATED, SlotOutcome.DEMOTED, ShownStatus("Active", "Active"), "Inactive", "Deactivated", True, None),
        (
            DEACTIVATED,
            SlotOutcome.KEPT,
            ShownStatus("Inactive", "Deactivated", None, EARLIER),
            "Inactive",
            "Deactivated",
            True,
            None,
        ),
        (MISSING, SlotOutcome.KEPT, ShownStatus("Active"), "Failed", "SecretMissing", False, None),
    ],
)
def test_the_status_a_slot_outcome_gives(
    facts: ClientFacts,
    outcome: SlotOutcome,
    shown: ShownStatus,
    phase: str,
    reason: str,
    ready: bool,
    requested: str | None,
) -> None:
    decided = slot_status(facts, outcome, shown, now=NOW)
    assert (decided.phase, decided.reason) == (phase, reason)
    assert decided.conditions[0].status is ready
    assert decided.conditions[1].status is facts.secret_missing
    expected = "2026-12-03T12:00:00.000000Z" if requested == "now" else requested
    assert decided.activation_requested_at == expected


def test_a_waiting_client_says_why_and_how_many_hold_slots() -> None:
    assert (
        "5 ApiClients are already Active" in slot_status(ELIGIBLE, SlotOutcome.WAITING, ShownStatus(), now=NOW).message
    )


@given(
    was=st.booleans(),
    now_active=st.booleans(),
    requested=st.sampled_from([None, "a", "b"]),
    handled=st.sampled_from([None, "a", "b"]),
)
def test_tokens_are_cut_off_on_a_new_request_or_when_leaving_active(
    was: bool, now_active: bool, requested: str | None, handled: str | None
) -> None:
    recorded = NOW - datetime.timedelta(days=1)
    cut_off, done = tokens_cut_off(
        was_active=was, is_active=now_active, requested=requested, handled=handled, recorded=recorded, now=NOW
    )
    fresh = bool(requested) and requested != handled
    moved = fresh or (was and not now_active)
    assert cut_off == (NOW if moved else recorded)
    assert done == (requested if fresh else handled)
