"""Operator and service settings, from flags or environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from credop.webhooks.settings import WebhookSettings


@dataclass(frozen=True)
class Config:
    namespace: str = "credop-system"
    """Where credop keeps its own keys (the credop-keys Secret)."""
    endpoint: str = "https://credop.credop-system.svc"
    """The credential service's base URL, as clients reach it (token URL, templates)."""
    keys_secret: str = "credop-keys"
    kubeconfig: Path | None = None
    usage_flush_interval: float = 60.0
    """Seconds between lastUsedAt writes per credential (the service batches uses)."""
    signing_key_rotation_days: int = 30
    resync_interval: float = 600.0
    """Seconds between looks at every known credential, whatever the watches said (0: never).

    The safety net every mature controller has: a lost or swallowed watch event
    can delay an action by at most this long, never drop it."""
    webhook: WebhookSettings | None = None
    """The admission webhook server (CREDOP_WEBHOOK_*); none when unset."""
    leader_election: bool = True
    """Run kopf only while holding the credop-operator Lease (one active replica)."""
    lease_seconds: float = 15.0
    metrics_port: int | None = None
    """Serve Prometheus metrics on this port (operator: 8081 in the chart)."""
    health_port: int | None = None
    """Serve kopf's liveness probe at /healthz on this port (8082 in the chart)."""

    @property
    def issuer(self) -> str:
        return self.endpoint.rstrip("/")

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth2/token"

    @classmethod
    def from_environment(cls, **overrides: object) -> Config:
        values: dict[str, object] = {}
        if "CREDOP_NAMESPACE" in os.environ:
            values["namespace"] = os.environ["CREDOP_NAMESPACE"]
        if "CREDOP_ENDPOINT" in os.environ:
            values["endpoint"] = os.environ["CREDOP_ENDPOINT"]
        if "CREDOP_RESYNC_INTERVAL" in os.environ:
            values["resync_interval"] = float(os.environ["CREDOP_RESYNC_INTERVAL"])
        if "CREDOP_USAGE_FLUSH_INTERVAL" in os.environ:
            values["usage_flush_interval"] = float(os.environ["CREDOP_USAGE_FLUSH_INTERVAL"])
        for key, env in (("metrics_port", "CREDOP_METRICS_PORT"), ("health_port", "CREDOP_HEALTH_PORT")):
            if env in os.environ:
                values[key] = int(os.environ[env])
        if "CREDOP_LEADER_ELECTION" in os.environ:
            values["leader_election"] = os.environ["CREDOP_LEADER_ELECTION"].lower() not in ("0", "false", "no")
        values["webhook"] = WebhookSettings.from_environment()
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]
