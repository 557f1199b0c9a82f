"""Loading, creating and rotating credop's own keys (the credop-keys Secret).

The first operator to start creates the Secret (a 409 means another replica
did; it reads that one). Signing keys rotate on the schedule in
:mod:`credop.domain.signing`; HMAC keys do not rotate (verifiers name theirs).
"""

from __future__ import annotations

import datetime
import logging
import os
import uuid
from typing import Any

from credop import names
from credop.controller.config import Config
from credop.domain.keyring import Keyring, decode_keyring, encode_keyring, new_keyring
from credop.domain.signing import KeysetSchedule, SigningKey, new_signing_key, rotated_keyset
from credop.kube.client import ConflictError, Kube, NotFoundError

logger = logging.getLogger(__name__)


def make_signing_key(now: datetime.datetime) -> SigningKey:
    return new_signing_key(now=now, kid=f"{now.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}")


def keys_secret_body(config: Config, keyring: Keyring) -> dict[str, Any]:
    return {
        "metadata": {
            "name": config.keys_secret,
            "namespace": config.namespace,
            "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE, "credop.dev/role": "keys"},
        },
        "type": "Opaque",
        "stringData": encode_keyring(keyring),
    }


async def load_or_create_keyring(kube: Kube, config: Config, *, now: datetime.datetime) -> Keyring:
    try:
        secret = await kube.read_secret(config.namespace, config.keys_secret)
    except NotFoundError:
        keyring = new_keyring(now=now, random_bytes=os.urandom, make_signing_key=make_signing_key)
        try:
            await kube.create_secret(config.namespace, keys_secret_body(config, keyring))
            logger.info("created the keyring Secret %s/%s", config.namespace, config.keys_secret)
            return keyring
        except ConflictError:
            secret = await kube.read_secret(config.namespace, config.keys_secret)
    keyring = decode_keyring(secret.get("data") or {})
    if not keyring.key_signing_keys:  # a keyring from before key JWTs had keys of their own
        keyring = keyring.with_key_signing_keys([make_signing_key(now)])
        await _save(kube, config, keyring)
    return keyring


async def rotate_signing_keys(
    kube: Kube, config: Config, keyring: Keyring, *, now: datetime.datetime, schedule: KeysetSchedule
) -> Keyring:
    """Add a new signing key when due and drop retired ones; returns the keyring in force.

    Key-JWT signing keys rotate on the same schedule but are never dropped here: a
    JWT-format key may live (or never expire) far longer than any access token.
    """
    rotated = rotated_keyset(list(keyring.signing_keys), now=now, schedule=schedule, make_key=make_signing_key)
    key_signing = _with_a_new_key_when_due(list(keyring.key_signing_keys), now=now, every=schedule.rotate_every)
    if rotated is None and key_signing is None:
        return keyring
    updated = keyring
    if rotated is not None:
        updated = updated.with_signing_keys(rotated)
    if key_signing is not None:
        updated = updated.with_key_signing_keys(key_signing)
    await _save(kube, config, updated)
    logger.info("signing keys now: %s", ", ".join(key.kid for key in updated.signing_keys))
    return updated


def _with_a_new_key_when_due(
    keys: list[SigningKey], *, now: datetime.datetime, every: datetime.timedelta
) -> list[SigningKey] | None:
    newest = max((key.created_at for key in keys), default=None)
    if newest is not None and now < newest + every:
        return None
    return [*keys, make_signing_key(now)]


async def _save(kube: Kube, config: Config, keyring: Keyring) -> None:
    secret = await kube.read_secret(config.namespace, config.keys_secret)
    body = keys_secret_body(config, keyring)
    body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
    await kube.replace_secret(config.namespace, config.keys_secret, body)
