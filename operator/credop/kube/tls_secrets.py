"""A CA and serving certificate credop keeps in a Secret of its namespace: made once, renewed when due.

The first process to need it creates the Secret (a 409 means another one did:
that one is read); later calls renew the serving certificate (same CA) a
month before it ends or when the host names change.
"""

from __future__ import annotations

import base64
import datetime
import logging
from typing import Any

from credop import names
from credop.domain.certificates import CA_NAME, TlsBundle, new_bundle, renewed
from credop.kube.client import ConflictError, Kube, NotFoundError

logger = logging.getLogger(__name__)
CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE = "ca.crt", "ca.key", "tls.crt", "tls.key"


async def load_or_issue(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    hosts: tuple[str, ...],
    now: datetime.datetime,
    role: str,
    ca_name: str = CA_NAME,
) -> TlsBundle:
    """The bundle in the Secret, renewed first when it ends soon or misses a host; created when absent."""
    try:
        secret = await kube.read_secret(namespace, name)
    except NotFoundError:
        return await _create(kube, namespace, name, new_bundle(hosts, now=now, ca_name=ca_name), role=role)
    current = bundle_of(secret)
    fresh = renewed(current, hosts, now=now, ca_name=ca_name)
    if fresh is None and current is not None:
        return current
    assert fresh is not None
    body = secret_body(namespace, name, fresh, role=role)
    body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
    try:
        await kube.replace_secret(namespace, name, body)
    except ConflictError:
        return bundle_of(await kube.read_secret(namespace, name)) or fresh
    logger.info("renewed the certificate in Secret %s/%s", namespace, name)
    return fresh


async def _create(kube: Kube, namespace: str, name: str, bundle: TlsBundle, *, role: str) -> TlsBundle:
    try:
        await kube.create_secret(namespace, secret_body(namespace, name, bundle, role=role))
    except ConflictError:
        return bundle_of(await kube.read_secret(namespace, name)) or bundle
    logger.info("created the certificate in Secret %s/%s", namespace, name)
    return bundle


def secret_body(namespace: str, name: str, bundle: TlsBundle, *, role: str) -> dict[str, Any]:
    files = {CA_FILE: bundle.ca_cert, CA_KEY_FILE: bundle.ca_key, CERT_FILE: bundle.cert, KEY_FILE: bundle.key}
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE, "credop.dev/role": role},
        },
        "type": "kubernetes.io/tls",
        "data": {key: base64.b64encode(value).decode() for key, value in files.items()},
    }


def bundle_of(secret: dict[str, Any]) -> TlsBundle | None:
    data = secret.get("data") or {}
    if not all(data.get(key) for key in (CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE)):
        return None
    decoded = {key: base64.b64decode(data[key]) for key in (CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE)}
    return TlsBundle(
        ca_cert=decoded[CA_FILE], ca_key=decoded[CA_KEY_FILE], cert=decoded[CERT_FILE], key=decoded[KEY_FILE]
    )
