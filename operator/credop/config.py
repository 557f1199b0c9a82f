"""Settings of every credop deployable (operator, webhooks, credential service), from flags or the environment.

A neutral module: the controller, the webhooks and the service all read it, and
it imports none of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"


@dataclass(frozen=True)
class WebhookSettings:
    """The webhook server's settings; the operator runs no webhook server without them.

    The certificate is either mounted in ``cert_dir`` (``tls.crt``, ``tls.key``,
    ``ca.crt``: Helm- or cert-manager-made), or, with ``tls_secret``, made by
    credop: a CA and a serving certificate for ``hosts`` kept in that Secret of
    the operator's namespace, written to ``cert_dir`` (or a temporary directory)
    and put as ``caBundle`` into the webhook configurations named ``configuration``.
    """

    port: int
    address: str = "0.0.0.0"  # noqa: S104 - a pod listens on all its interfaces
    cert_dir: Path | None = None
    tls_secret: str | None = None
    hosts: tuple[str, ...] = ()
    configuration: str | None = None

    @property
    def manages_certificate(self) -> bool:
        return self.tls_secret is not None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings | None:
        """``CREDOP_WEBHOOK_PORT`` (unset: no webhook server), ``_ADDRESS``, ``_CERT_DIR``, ``_TLS_SECRET``,
        ``_HOSTS`` (comma-separated DNS names or IPs) and ``_CONFIGURATION``."""
        env = os.environ if environ is None else environ
        port = env.get("CREDOP_WEBHOOK_PORT")
        if not port:
            return None
        cert_dir = env.get("CREDOP_WEBHOOK_CERT_DIR")
        hosts = tuple(host.strip() for host in env.get("CREDOP_WEBHOOK_HOSTS", "").split(",") if host.strip())
        return cls(
            port=int(port),
            address=env.get("CREDOP_WEBHOOK_ADDRESS") or cls.address,
            cert_dir=Path(cert_dir) if cert_dir else None,
            tls_secret=env.get("CREDOP_WEBHOOK_TLS_SECRET") or None,
            hosts=hosts,
            configuration=env.get("CREDOP_WEBHOOK_CONFIGURATION") or None,
        )


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
