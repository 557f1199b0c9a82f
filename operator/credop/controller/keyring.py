"""Loading, creating, rotating and keeping credop's own keys (the credop-keys Secret).

The first operator to start creates the Secret (a 409 means another replica
did; it reads that one) — but never while credentials exist: a new keyring
would orphan every verifier, so then the operator refuses, loudly, until the
keyring is restored from a backup (``credop keyring import``). A keyring
deleted while the operator runs is written back from its copy in memory.
Signing keys rotate on the schedule in :mod:`credop.domain.signing`; HMAC keys
rotate too (new verifiers under the new key), and an old one is retired only
once no record's verifier names it.
"""

from __future__ import annotations

import datetime
import logging
import os
import uuid
from typing import Any

from credop import names
from credop.config import Config
from credop.domain.keyring import (
    Keyring,
    decode_keyring,
    encode_keyring,
    merged_keyrings,
    new_keyring,
    with_new_hmac_key_when_due,
    without_unused_hmac_keys,
)
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


class KeyringMissingError(RuntimeError):
    """The keyring Secret is gone while credentials exist: credop must not make a new one."""


KEYRING_MISSING = (
    "credop's keyring (the Secret {secret}) is missing while credentials exist; a new keyring would make every "
    "verifier unusable, so credop will not mint or rotate until it is restored: credop keyring import <backup>"
)


def keyring_missing_message(config: Config) -> str:
    return KEYRING_MISSING.format(secret=f"{config.namespace}/{config.keys_secret}")


async def load_or_create_keyring(
    kube: Kube, config: Config, *, now: datetime.datetime, credentials_exist: bool = False
) -> Keyring:
    """The keyring Secret's keys; a new keyring only when there is nothing it could orphan.

    Raises :class:`KeyringMissingError` when the Secret is missing and ``credentials_exist``.
    """
    try:
        secret = await kube.read_secret(config.namespace, config.keys_secret)
    except NotFoundError:
        if credentials_exist:
            raise KeyringMissingError(
                KEYRING_MISSING.format(secret=f"{config.namespace}/{config.keys_secret}")
            ) from None
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


async def rotate_hmac_keys(
    kube: Kube,
    config: Config,
    keyring: Keyring,
    *,
    now: datetime.datetime,
    every: datetime.timedelta,
    in_use: set[str],
) -> Keyring:
    """A new current HMAC key when due; keys no record's verifier names any more are retired."""
    updated = with_new_hmac_key_when_due(keyring, now=now, every=every, random_bytes=os.urandom) or keyring
    updated = without_unused_hmac_keys(updated, in_use=in_use) or updated
    if updated == keyring:
        return keyring
    await _save(kube, config, updated)
    logger.info("HMAC keys now: %s (current %s)", ", ".join(sorted(updated.hmac_keys)), updated.current_hmac)
    return updated


async def restore_keyring(kube: Kube, config: Config, keyring: Keyring) -> None:
    """Write the keyring back from memory (its Secret was deleted while the operator held it)."""
    try:
        await kube.create_secret(config.namespace, keys_secret_body(config, keyring))
    except ConflictError:
        await _save(kube, config, keyring)


async def keep_keys(kube: Kube, config: Config, held: Keyring, incoming: Keyring) -> Keyring:
    """The keyring Secret changed (an import, another replica): hold every key of both, and write back what it lacks."""
    merged = merged_keyrings(held, incoming)
    if merged != incoming:
        await _save(kube, config, merged)
    return merged
