"""The CLI's spelling of ages, expiries and last use."""

from __future__ import annotations

import datetime

import pytest

from credop.cli.times import action_value, age, expiry, human_duration, last_use

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)


def ago(**delta: float) -> str:
    return (NOW - datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ahead(**delta: float) -> str:
    return (NOW + datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("seconds", "spelled"),
    [
        (-5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (330, "5m30s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (5 * 3600, "5h"),
        (26 * 3600, "26h"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (200 * 86400, "200d"),
        (3 * 365 * 86400 + 30 * 86400, "3y30d"),
        (10 * 365 * 86400, "10y"),
    ],
)
def test_human_duration_is_kubectls_age(seconds: int, spelled: str) -> None:
    assert human_duration(datetime.timedelta(seconds=seconds)) == spelled


def test_age_of_a_creation_timestamp() -> None:
    assert age(ago(minutes=5), now=NOW) == "5m"
    assert age(None, now=NOW) == "-"


def test_expiry_in_the_future_the_past_never_and_unknown() -> None:
    assert expiry(ahead(days=90), never_expires=False, now=NOW) == "in 90d"
    assert expiry(ago(hours=5), never_expires=False, now=NOW) == "expired 5h ago"
    assert expiry(None, never_expires=True, now=NOW) == "never"
    assert expiry(None, never_expires=False, now=NOW) == "-"


def test_last_use_is_never_when_absent() -> None:
    assert last_use(None, now=NOW) == "never"
    assert last_use(ago(seconds=42), now=NOW) == "42s ago"


def test_action_values_are_rfc3339_and_distinct_within_a_second() -> None:
    first = action_value(NOW)
    second = action_value(NOW + datetime.timedelta(microseconds=1))
    assert first == "2026-03-01T12:00:00.000000Z"
    assert first != second
    assert datetime.datetime.fromisoformat(second.replace("Z", "+00:00")) > NOW
