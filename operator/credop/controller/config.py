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
    service_ca_file: Path | None = None
    """The credential service's CA certificate (PEM): given to every credential as ``tokenCA``."""
    service_tls_secret: str | None = None
    """Keep the credential service's CA and serving certificate in this Secret (made and renewed by credop)."""
    service_hosts: tuple[str, ...] = ()
    """The DNS names the service certificate credop keeps must cover."""
    kubeconfig: Path | None = None
    usage_flush_interval: float = 60.0
    """Seconds between lastUsedAt writes per credential (the service batches uses)."""
    signing_key_rotation_days: int = 30
    hmac_key_rotation_days: int = 90
    """How long an HMAC key makes new verifiers before a new one takes over (old ones stay while named)."""
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

    def service_ca(self) -> str | None:
        """The service's CA as PEM text (read each time: the mounted Secret may have been renewed)."""
        if self.service_ca_file is None:
            return None
        try:
            return self.service_ca_file.read_text()
        except OSError:
            return None

    @classmethod
    def from_environment(cls, **overrides: object) -> Config:
        values: dict[str, object] = {}
        if "CREDOP_NAMESPACE" in os.environ:
            values["namespace"] = os.environ["CREDOP_NAMESPACE"]
        if "CREDOP_ENDPOINT" in os.environ:
            values["endpoint"] = os.environ["CREDOP_ENDPOINT"]
        if os.environ.get("CREDOP_SERVICE_TLS_SECRET"):
            values["service_tls_secret"] = os.environ["CREDOP_SERVICE_TLS_SECRET"]
            hosts = os.environ.get("CREDOP_SERVICE_HOSTS", "").split(",")
            values["service_hosts"] = tuple(host.strip() for host in hosts if host.strip())
        if os.environ.get("CREDOP_SERVICE_CA_FILE"):
            values["service_ca_file"] = Path(os.environ["CREDOP_SERVICE_CA_FILE"])
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
