"""Which notices are due, for whom, whether already sent, and what they say (pure: tables and hypothesis)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.api.keypolicy import KeyPolicySpec
from credop.api.notifications import NOTICE_RECORD_LIMIT, NOTICE_TYPES, Notifications
from credop.domain import notices
from credop.domain.notices import Due, NoticeFacts

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def condition(kind: str, status: bool = True, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": "True" if status else "False", "reason": kind, "message": message}


def facts(**status: Any) -> NoticeFacts:
    base: dict[str, Any] = {"phase": "Active", "keyGeneration": 1, "createdBy": "alice", "accessKeyId": "crak_x"}
    return NoticeFacts("ServiceAccountKey", "team", "ci", "uid-1", {**base, **status})


def notifications(**spec: Any) -> Notifications:
    receivers = spec.pop("receivers", [{"name": "hook", "webhook": {"url": "https://hooks.example.com/x"}}])
    return Notifications.model_validate({"receivers": receivers, **spec})


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, ()),
        ({"conditions": [condition("ExpiringSoon")]}, ("ExpiringSoon",)),
        ({"conditions": [condition("ExpiringSoon", False)]}, ()),
        ({"phase": "Expired", "conditions": [condition("RotationDue")]}, ("Expired",)),
        ({"conditions": [condition("RotationDue")]}, ("RotationDue",)),
        ({"keyGeneration": 2, "rotateHandled": "auto:2"}, ("Rotated",)),
        ({"keyGeneration": 2, "rotateHandled": "manual:now"}, ()),
        ({"conditions": [condition("Unused")]}, ("Unused",)),
        ({"phase": "Disabled", "reason": "Unused", "conditions": [condition("Unused")]}, ("Disabled",)),
        ({"phase": "Inactive", "reason": "Deactivated"}, ("Deactivated",)),
        ({"phase": "Inactive", "reason": "ActiveLimitReached"}, ("ActiveLimitReached",)),
        (
            {"phase": "Failed", "reason": "SecretMissing", "conditions": [condition("SecretMissing")]},
            ("SecretMissing",),
        ),
    ],
)
def test_which_notices_hold(status: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert notices.holding(facts(**status)) == expected


def test_due_per_subscribed_receiver_until_recorded() -> None:
    config = notifications(
        receivers=[
            {"name": "hook", "webhook": {"url": "https://hooks.example.com/x"}},
            {
                "name": "mail",
                "email": {"smtpSecretRef": {"name": "smtp"}, "from": "credop@example.com"},
                "notices": ["Expired"],
            },
        ]
    )
    subject = facts(conditions=[condition("ExpiringSoon")])
    assert notices.due(subject, config, []) == [Due("ExpiringSoon", 1, "hook")]
    ledger = notices.ledger_with([], Due("ExpiringSoon", 1, "hook"), delivered=True, now=NOW)
    assert notices.due(subject, config, ledger) == []
    assert notices.due(facts(conditions=[condition("ExpiringSoon")], keyGeneration=2), config, ledger) == [
        Due("ExpiringSoon", 2, "hook")
    ], "a new key generation is owed its own notice"


def test_nothing_is_due_without_notifications_or_receivers() -> None:
    subject = facts(phase="Expired")
    assert notices.due(subject, None, []) == []
    assert notices.due(subject, Notifications(), []) == []


def test_a_receiver_given_up_on_is_not_retried_for_ever() -> None:
    item = Due("Expired", 1, "hook")
    ledger = notices.ledger_with([], item, delivered=False, now=NOW, error="HTTP 500")
    assert notices.recorded(ledger, "Expired", 1, "hook")
    assert ledger[0]["failed"] == ["hook"] and ledger[0]["error"] == "hook: HTTP 500"
    delivered = notices.ledger_with(ledger, Due("Expired", 1, "mail"), delivered=True, now=NOW)
    assert delivered[0]["delivered"] == ["mail"] and delivered[0]["failed"] == ["hook"], "one record per notice"


def test_ledger_keeps_the_current_and_previous_generation_only() -> None:
    ledger: list[dict[str, Any]] = []
    for generation in (1, 2, 3):
        for notice in ("ExpiringSoon", "RotationDue"):
            ledger = notices.ledger_with(ledger, Due(notice, generation, "hook"), delivered=True, now=NOW)
    assert sorted({r["generation"] for r in ledger}) == [2, 3]


@given(
    st.lists(
        st.tuples(st.sampled_from(NOTICE_TYPES), st.integers(1, 40), st.sampled_from(["a", "b", "c"]), st.booleans()),
        max_size=200,
    )
)
def test_ledger_stays_bounded_and_remembers_the_last_write(writes: list[tuple[str, int, str, bool]]) -> None:
    ledger: list[dict[str, Any]] = []
    for notice, generation, receiver, delivered in writes:
        ledger = notices.ledger_with(ledger, Due(notice, generation, receiver), delivered=delivered, now=NOW)
        assert notices.recorded(ledger, notice, generation, receiver)
        assert len(ledger) <= NOTICE_RECORD_LIMIT
        keys = [(r["notice"], r["generation"]) for r in ledger]
        assert len(keys) == len(set(keys)), "one record per notice and generation"
    json.dumps(ledger)


@given(st.sampled_from(NOTICE_TYPES), st.integers(0, 5), st.booleans())
def test_due_then_recorded_is_never_due_again(notice: str, generation: int, expiring: bool) -> None:
    """Exactly once: whatever holds, a notice recorded for a generation and receiver is not owed again."""
    config = notifications()
    status: dict[str, Any] = {
        "keyGeneration": generation,
        "phase": {"Expired": "Expired", "Disabled": "Disabled"}.get(notice, "Inactive"),
        "reason": notice if notice in ("ActiveLimitReached",) else "Deactivated",
        "rotateHandled": f"auto:{generation}",
        "conditions": [condition(c, expiring) for c in ("ExpiringSoon", "RotationDue", "Unused", "SecretMissing")],
    }
    subject = NoticeFacts("ApiClient", "team", "c", "uid", status)
    ledger: list[dict[str, Any]] = []
    for item in notices.due(subject, config, ledger):
        ledger = notices.ledger_with(ledger, item, delivered=True, now=NOW)
    assert notices.due(subject, config, ledger) == []


def test_still_due_needs_the_same_generation_and_the_notice_to_hold() -> None:
    item = Due("Deactivated", 1, "hook")
    assert notices.still_due(facts(phase="Inactive", reason="Deactivated"), item)
    assert not notices.still_due(facts(phase="Active"), item), "re-activated before it was sent"
    assert not notices.still_due(facts(phase="Inactive", reason="Deactivated", keyGeneration=2), item)


@pytest.mark.parametrize(
    ("created_by", "annotation", "table", "expected"),
    [
        ("alice@example.com", None, {}, "alice@example.com"),
        ("alice", None, {}, None),
        ("alice", None, {"alice": "a@example.com"}, "a@example.com"),
        ("alice", "me@example.com", {}, "me@example.com"),
        ("alice", "me@example.com", {"alice": "a@example.com"}, "a@example.com"),
        ("system:serviceaccount:ci:argo", "not an address", {}, None),
        ("", None, {}, None),
    ],
)
def test_creator_address(created_by: str, annotation: str | None, table: dict[str, str], expected: str | None) -> None:
    subject = NoticeFacts(
        "ApiClient",
        "team",
        "c",
        "uid",
        {"createdBy": created_by},
        {notices.NOTIFY_EMAIL_ANNOTATION: annotation} if annotation else {},
    )
    assert notices.creator_address(subject, notifications(creatorAddresses=table)) == expected


def test_recipients_creator_admins_fixed_deduplicated_within_allowed_domains() -> None:
    config = notifications(
        admins=["sec@example.com", "boss@other.org"],
        allowedDomains=["example.com"],
        receivers=[
            {
                "name": "mail",
                "email": {"smtpSecretRef": {"name": "smtp"}, "from": "credop@example.com"},
                "to": {"addresses": ["ops@mail.example.com", "sec@example.com"]},
            },
            {
                "name": "admins-only",
                "email": {"smtpSecretRef": {"name": "smtp"}, "from": "credop@example.com"},
                "to": {"creator": False},
            },
        ],
    )
    subject = facts(createdBy="alice@example.com")
    assert notices.recipients(config.receivers[0], config, subject) == (
        "alice@example.com",
        "sec@example.com",
        "ops@mail.example.com",
    )
    assert notices.recipients(config.receivers[1], config, subject) == ("sec@example.com",)


def test_a_message_carries_status_only_and_a_stable_delivery_id() -> None:
    subject = facts(
        phase="Expired",
        message="the key expired at 2030-01-01T00:00:00Z",
        expiresAt="2030-01-01T00:00:00Z",
        conditions=[condition("ExpiringSoon", False)],
    )
    item = Due("Expired", 1, "hook")
    message = notices.compose(subject, item, recipients=["a@example.com"], policy="default", owner="payments", now=NOW)
    assert message.id == "uid-1.Expired.1" == notices.notice_id(subject, item)
    assert message.subject == "ServiceAccountKey team/ci has expired"
    assert message.document["credential"]["owner"] == "payments"
    assert message.document["credential"]["createdBy"] == "alice"
    assert message.document["severity"] == "critical"
    assert "the key expired at" in message.text
    slack = notices.slack_document(message)
    assert slack["text"].endswith("has expired")


def test_signature_round_trip_and_replay_window() -> None:
    body, key = b'{"a":1}', b"k" * 32
    header = notices.signature(body, key, at=1_000)
    assert header.startswith("t=1000,v1=")
    assert notices.signature_valid(header, body, key, now=1_100)
    assert not notices.signature_valid(header, body + b" ", key, now=1_100)
    assert not notices.signature_valid(header, body, b"other", now=1_100)
    assert not notices.signature_valid(header, body, key, now=2_000), "an old request is a replay"
    assert not notices.signature_valid("v1=abc", body, key, now=1_000)


@given(st.integers(1, 60), st.floats(0, 1))
def test_backoff_grows_and_is_capped(attempt: int, draw: float) -> None:
    delay = notices.backoff(attempt, random=lambda: draw, base=2.0, cap=600.0)
    ceiling = min(600.0, 2.0 * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_token_bucket_burst_then_rate() -> None:
    bucket = notices.TokenBucket(burst=2, per_minute=60)
    assert bucket.take(now=0.0) == 0 and bucket.take(now=0.0) == 0
    wait = bucket.take(now=0.0)
    assert wait == pytest.approx(1.0)
    assert bucket.take(now=1.0) == 0


@given(st.lists(st.floats(0, 3600, allow_nan=False), min_size=1, max_size=300))
def test_token_bucket_never_lets_more_than_burst_plus_rate(times: list[float]) -> None:
    bucket = notices.TokenBucket(burst=5, per_minute=30)
    taken = sum(1 for now in sorted(times) if bucket.take(now=now) == 0)
    span = max(times) - min(times)
    assert taken <= 5 + span * 30 / 60 + 1e-6


def test_policy_notifications_are_validated() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Notifications.model_validate({"receivers": [{"name": "x"}]})
    with pytest.raises(ValueError, match="unique"):
        Notifications.model_validate({"receivers": [{"name": "x", "webhook": {"url": "https://a.example"}}] * 2})
    with pytest.raises(ValueError):
        Notifications.model_validate({"admins": ["not an address"]})
    with pytest.raises(ValueError):
        Notifications.model_validate({"receivers": [{"name": "x", "webhook": {"url": "https://user:pw@a.example/"}}]})
    spec = KeyPolicySpec.model_validate(
        {
            "owner": "payments",
            "notifications": {
                "receivers": [{"name": "m", "email": {"smtpSecretRef": {"name": "smtp"}, "from": "c@example.com"}}]
            },
        }
    )
    assert spec.notifications is not None and spec.notifications.receivers[0].email is not None
    assert spec.notifications.receivers[0].email.sender == "c@example.com"
    assert spec.to_wire()["notifications"]["receivers"][0]["email"]["from"] == "c@example.com"
