"""Where the admission webhook server listens and where its certificate comes from."""

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
