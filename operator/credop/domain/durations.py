"""Durations as users write them in specs: ``90s``, ``15m``, ``12h``, ``30d``, ``1d12h`` or ``Never``."""

from __future__ import annotations

import datetime
import re

from credop.api.durations import DURATION_OR_NEVER_PATTERN, DURATION_PATTERN, NO_NOTICE, NOTIFY_BEFORE_PATTERN

NEVER = "Never"
__all__ = ["DURATION_OR_NEVER_PATTERN", "DURATION_PATTERN", "NEVER", "NOTIFY_BEFORE_PATTERN", "NO_NOTICE"]
_PART = re.compile(r"([0-9]+)(s|m|h|d)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_SECONDS = 100 * 365 * 86400


class DurationError(ValueError):
    """A duration string that cannot be parsed."""


def parse_duration(text: str) -> datetime.timedelta:
    """``"1d12h"`` → 36 hours. Refuses ``Never``, empty strings and unknown units."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise DurationError(f"{text!r} is not a duration like 90s, 15m, 12h or 30d")
    seconds = sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(text))
    if seconds > _MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than 100 years")
    return datetime.timedelta(seconds=seconds)


def parse_optional_duration(text: str | None) -> datetime.timedelta | None:
    """Like :func:`parse_duration`, but ``Never``, ``None`` (no notice) and a missing value mean none."""
    if text is None or text in (NEVER, NO_NOTICE):
        return None
    return parse_duration(text)


def format_duration(delta: datetime.timedelta) -> str:
    """The shortest spec spelling of a whole number of seconds: 86400s → ``1d``."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        amount, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
