"""How the operator delivers notices: its destination allow-list, rate limits and retries (CREDOP_NOTIFY_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from credop.domain.destinations import DestinationRules


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class NotifySettings:
    enabled: bool = True
    """Send notices at all (CREDOP_NOTIFICATIONS=false turns delivery off; nothing is recorded then)."""
    rules: DestinationRules = field(default_factory=DestinationRules)
    """Internal destinations credop may reach (chart: operator.notifications.allowedNetworks / allowedHosts)."""
    per_minute: float = 30.0
    """Notices per minute per receiver, after a burst of :attr:`burst`."""
    burst: float = 10.0
    max_attempts: int = 12
    """Tries per notice and receiver before credop gives up and records the failure (12: 20 to 37 minutes)."""
    retry_base: float = 2.0
    """Seconds before the first retry; each retry doubles it, up to :attr:`retry_cap`."""
    retry_cap: float = 600.0
    timeout: float = 10.0
    """Seconds one delivery may take."""
    workers: int = 4
    """Deliveries in flight at once."""

    @classmethod
    def from_environment(cls) -> NotifySettings:
        env = os.environ
        values: dict[str, object] = {
            "rules": DestinationRules.parse(
                networks=_list(env.get("CREDOP_NOTIFY_ALLOWED_NETWORKS")),
                hosts=_list(env.get("CREDOP_NOTIFY_ALLOWED_HOSTS")),
            )
        }
        if "CREDOP_NOTIFICATIONS" in env:
            values["enabled"] = env["CREDOP_NOTIFICATIONS"].lower() not in ("0", "false", "no")
        for key, name, kind in (
            ("per_minute", "CREDOP_NOTIFY_RATE_PER_MINUTE", float),
            ("burst", "CREDOP_NOTIFY_BURST", float),
            ("max_attempts", "CREDOP_NOTIFY_MAX_ATTEMPTS", int),
            ("retry_base", "CREDOP_NOTIFY_RETRY_BASE", float),
            ("timeout", "CREDOP_NOTIFY_TIMEOUT", float),
        ):
            if env.get(name):
                values[key] = kind(env[name])
        return cls(**values)  # type: ignore[arg-type]
