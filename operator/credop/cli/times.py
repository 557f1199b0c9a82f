"""Instants and durations as a person reads them in a table: ``5m``, ``in 3d``, ``2h ago``, ``never``."""

from __future__ import annotations

import datetime

from credop.domain.conditions import parse_timestamp

MISSING = "-"
NEVER = "never"


def human_duration(delta: datetime.timedelta) -> str:
    """kubectl's AGE spelling: precise when short, coarse when long (``90s``, ``5m30s``, ``3h20m``, ``12d``)."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return _pair(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _pair(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _pair(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _pair(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def age(created: str | None, *, now: datetime.datetime) -> str:
    """How long ago an object was created."""
    instant = parse_timestamp(created)
    return human_duration(now - instant) if instant else MISSING


def relative(instant: datetime.datetime, *, now: datetime.datetime) -> str:
    """``in 3d`` for the future, ``2h ago`` for the past."""
    if instant >= now:
        return f"in {human_duration(instant - now)}"
    return f"{human_duration(now - instant)} ago"


def expiry(expires_at: str | None, *, never_expires: bool, now: datetime.datetime) -> str:
    """When a credential expires: ``in 90d``, ``expired 2h ago``, ``never``, or ``-`` when not known."""
    instant = parse_timestamp(expires_at)
    if instant is None:
        return NEVER if never_expires else MISSING
    if instant <= now:
        return f"expired {human_duration(now - instant)} ago"
    return f"in {human_duration(instant - now)}"


def last_use(last_used_at: str | None, *, now: datetime.datetime) -> str:
    """When a credential was last used; ``never`` when status has no lastUsedAt."""
    instant = parse_timestamp(last_used_at)
    return relative(instant, now=now) if instant else NEVER


def action_value(now: datetime.datetime) -> str:
    """A new, unique annotation value for an action: an RFC 3339 timestamp with microseconds."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
