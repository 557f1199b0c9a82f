"""The webhook server's certificate files: mounted, kept by credop in a Secret, or made for this run.

With ``tls_secret`` every replica shares one CA and serving certificate from
that Secret (the first to start creates it, a 409 means another replica did);
the CA then goes into the webhook configurations' ``caBundle``. This is what
the plain manifests use, so ``kubectl apply -f deploy/`` needs no cert-manager.
"""

from __future__ import annotations

import base64
import datetime
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from credop.config import CA_FILE, CERT_FILE, KEY_FILE, WebhookSettings
from credop.domain.certificates import TlsBundle, new_bundle
from credop.kube.client import Kube, NotFoundError
from credop.kube.tls_secrets import load_or_issue

logger = logging.getLogger(__name__)
WEBHOOK_KINDS = ("validating", "mutating")


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path
    ca: Path | None


def uses_mounted_files(settings: WebhookSettings) -> bool:
    return settings.cert_dir is not None and settings.tls_secret is None


def files_directory(settings: WebhookSettings) -> Path:
    """Where credop writes a certificate it keeps or makes (a temporary directory without ``cert_dir``)."""
    return settings.cert_dir or Path(tempfile.mkdtemp(prefix="credop-webhook-"))


async def certificate_files(
    settings: WebhookSettings, *, kube: Kube, namespace: str, now: datetime.datetime, directory: Path
) -> CertificateFiles:
    """The files to serve with; with a certificate credop keeps, its CA is put into the webhook configurations.

    Called again later, it renews a certificate kept in the Secret when due and puts
    the CA back into configurations that were re-created without it.
    """
    if uses_mounted_files(settings):
        assert settings.cert_dir is not None
        return mounted_files(settings.cert_dir)
    if settings.tls_secret is not None:
        bundle = await load_or_issue(
            kube, namespace, settings.tls_secret, hosts=settings.hosts, now=now, role="webhook-tls"
        )
    elif (directory / CERT_FILE).exists():
        return CertificateFiles(cert=directory / CERT_FILE, key=directory / KEY_FILE, ca=directory / CA_FILE)
    else:
        bundle = new_bundle(settings.hosts or (settings.address,), now=now)
    files = write_bundle(bundle, directory)
    if settings.configuration:
        await inject_ca_bundle(kube, settings.configuration, bundle.ca_cert)
    return files


def mounted_files(directory: Path) -> CertificateFiles:
    ca = directory / CA_FILE
    return CertificateFiles(cert=directory / CERT_FILE, key=directory / KEY_FILE, ca=ca if ca.exists() else None)


def write_bundle(bundle: TlsBundle, directory: Path) -> CertificateFiles:
    """Write the files, leaving unchanged ones alone (kopf's server restarts when their content changes)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(cert=directory / CERT_FILE, key=directory / KEY_FILE, ca=directory / CA_FILE)
    assert files.ca is not None
    for path, content in ((files.key, bundle.key), (files.cert, bundle.cert), (files.ca, bundle.ca_cert)):
        if not path.exists() or path.read_bytes() != content:
            path.touch(mode=0o600)
            path.write_bytes(content)
    return files


async def inject_ca_bundle(kube: Kube, configuration: str, ca_cert: bytes) -> None:
    """Put the CA into every webhook of the validating and mutating configurations named ``configuration``."""
    ca_bundle = base64.b64encode(ca_cert).decode()
    for kind in WEBHOOK_KINDS:
        try:
            current = await kube.read_webhook_configuration(kind, configuration)
        except NotFoundError:
            logger.warning("no %s webhook configuration %s to put the CA into", kind, configuration)
            continue
        webhooks = [
            {"name": webhook["name"], "clientConfig": {"caBundle": ca_bundle}}
            for webhook in current.get("webhooks") or []
            if (webhook.get("clientConfig") or {}).get("caBundle") != ca_bundle
        ]
        if webhooks:
            await kube.patch_webhook_configuration(kind, configuration, {"webhooks": webhooks})
            logger.info("put the webhook CA into the %s webhook configuration %s", kind, configuration)
