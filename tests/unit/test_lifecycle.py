"""A ServiceAccountKey's deadlines, phase and conditions over time."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.api.keypolicy import KeyPolicySpec, RotationPolicy, UsagePolicy
from credop.api.serviceaccountkey import ServiceAccountKeySpec
from credop.domain.lifecycle import KeyFacts, key_expires_at, key_state
from credop.domain.policy import ResolvedPolicy, Violation

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
S = datetime.timedelta(seconds=1)
POLICY = KeyPolicySpec(
    default_expiry="100s",
    expiry_notify_before="20s",
    rotation=RotationPolicy(period="60s", notify_before="10s", action="Disable"),
    usage=UsagePolicy(max_idle="40s", notify_before="5s", action="None"),
)


def facts(policy: KeyPolicySpec = POLICY, **fields: object) -> KeyFacts:
    spec = ServiceAccountKeySpec.model_validate({"serviceAccount": "ci", **fields.pop("spec", {})})  # type: ignore[arg-type]
    return KeyFacts(spec=spec, policy=ResolvedPolicy("p", policy), minted_at=T0, **fields)  # type: ignore[arg-type]


def conditions(state) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    return {c.type: c.status for c in state.conditions}


@pytest.mark.parametrize(
    ("seconds", "phase", "reason", "true_conditions"),
    [
        (0, "Active", "Active", {"Ready"}),
        (35, "Active", "Active", {"Ready", "Unused"}),
        (50, "Active", "Active", {"Ready", "RotationDue", "Unused"}),
        (60, "Disabled", "RotationOverdue", {"RotationDue", "Unused"}),
        (80, "Disabled", "RotationOverdue", {"RotationDue", "Unused", "ExpiringSoon"}),
        (100, "Expired", "Expired", {"RotationDue", "Unused"}),
    ],
)
def test_timeline_of_an_unused_key(seconds: int, phase: str, reason: str, true_conditions: set[str]) -> None:
    state = key_state(facts(), now=T0 + seconds * S)
    assert (state.phase, state.reason) == (phase, reason)
    assert {name for name, value in conditions(state).items() if value} == true_conditions


def test_next_check_is_the_next_deadline() -> None:
    assert key_state(facts(), now=T0).next_check == T0 + 35 * S
    assert key_state(facts(), now=T0 + 36 * S).next_check == T0 + 40 * S
    assert key_state(facts(), now=T0 + 100 * S).next_check is None


def test_use_postpones_idleness() -> None:
    used = facts(last_used_at=T0 + 30 * S)
    state = key_state(used, now=T0 + 50 * S)
    assert not conditions(state)["Unused"]
    assert state.timeline.idle_limit_at == T0 + 70 * S


def test_idle_disable() -> None:
    policy = POLICY.model_copy(update={"usage": UsagePolicy(max_idle="40s", notify_before="None", action="Disable")})
    assert key_state(facts(policy), now=T0 + 39 * S).phase == "Active"
    assert (key_state(facts(policy), now=T0 + 40 * S).phase, key_state(facts(policy), now=T0 + 40 * S).reason) == (
        "Disabled",
        "Unused",
    )


def test_inactive_is_ready_but_does_not_verify() -> None:
    state = key_state(facts(spec={"active": False}), now=T0)
    assert state.phase == "Inactive" and conditions(state)["Ready"] and not state.verifies


def test_missing_secret_fails() -> None:
    state = key_state(facts(secret_present=False), now=T0)
    assert state.phase == "Failed" and conditions(state)["SecretMissing"] and not state.verifies


def test_missing_policy_and_violations_fail_before_minting() -> None:
    missing = KeyFacts(spec=ServiceAccountKeySpec(service_account="x"), policy=ResolvedPolicy("gone", None))
    assert key_state(missing, now=T0).reason == "PolicyNotFound"
    broken = facts(violations=(Violation("spec.roles[0].name", "nope"),))
    state = key_state(broken, now=T0)
    assert state.reason == "PolicyViolation" and "spec.roles[0].name" in state.message


def test_pending_before_mint() -> None:
    unminted = KeyFacts(spec=ServiceAccountKeySpec(service_account="x"), policy=ResolvedPolicy("p", POLICY))
    assert key_state(unminted, now=T0).phase == "Pending"


@pytest.mark.parametrize(
    ("spec", "policy", "expected"),
    [
        ({}, KeyPolicySpec(), T0 + datetime.timedelta(days=180)),
        ({"expiresIn": "10d"}, KeyPolicySpec(), T0 + datetime.timedelta(days=10)),
        ({"expiresAt": "2026-02-01T00:00:00Z"}, KeyPolicySpec(), datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)),
        ({"neverExpires": True}, KeyPolicySpec(allow_never_expire=True), None),
        ({}, KeyPolicySpec(max_expiry="30d"), T0 + datetime.timedelta(days=30)),
        ({}, KeyPolicySpec(default_expiry="Never"), None),
    ],
)
def test_expiry(spec: dict[str, object], policy: KeyPolicySpec, expected: datetime.datetime | None) -> None:
    parsed = ServiceAccountKeySpec.model_validate({"serviceAccount": "x", **spec})
    assert key_expires_at(parsed, policy, minted_at=T0) == expected


def test_auto_rotate_a_third_before_the_deadline() -> None:
    auto = facts(spec={"rotation": {"autoRotate": True}})
    assert key_state(auto, now=T0).timeline.auto_rotate_at == T0 + 40 * S
    assert key_state(auto, now=T0 + 40 * S).rotate_now
    assert not key_state(facts(), now=T0 + 59 * S).rotate_now


def test_auto_rotate_with_renew_before() -> None:
    auto = facts(spec={"rotation": {"autoRotate": True, "renewBefore": "5s"}})
    assert key_state(auto, now=T0).timeline.auto_rotate_at == T0 + 55 * S


@given(st.integers(min_value=0, max_value=200))
def test_phase_never_moves_backwards_without_a_change(seconds: int) -> None:
    order = ["Active", "Disabled", "Expired"]
    now_phase = key_state(facts(), now=T0 + seconds * S).phase
    later_phase = key_state(facts(), now=T0 + (seconds + 1) * S).phase
    assert order.index(later_phase) >= order.index(now_phase)
