"""Durations: parsing, refusing, and round-tripping."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.domain.durations import DurationError, format_duration, parse_duration, parse_optional_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("1d12h", 129600), ("0s", 0), ("1h30m5s", 5405)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "Never", "10", "5w", "1.5h", "-3d", "d", " 3d", "36500001d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize("text", [None, "Never", "None"])
def test_optional_duration_means_none(text: str | None) -> None:
    assert parse_optional_duration(text) is None


@given(st.integers(min_value=1, max_value=10 * 365 * 86400))
def test_format_then_parse_round_trips(seconds: int) -> None:
    delta = datetime.timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta
