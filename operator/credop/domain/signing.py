"""credop's signing keys: which key signs now, which are published, when to rotate.

A new key is published ``publish_lead`` before it signs anything, so every
verifier's cached JWKS has it before a token signed with it arrives; a
superseded key stays published for the longest token lifetime plus the cache
time, so no live token ever loses its key. One algorithm per key (ES256).
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from credop.domain.conditions import parse_timestamp, precise_timestamp

ALGORITHM = "ES256"
KEYSET_DATA_KEY = "keyset.json"


@dataclass(frozen=True)
class SigningKey:
    """One signing key. ``private_pem`` is secret: never log or return it."""

    kid: str
    created_at: datetime.datetime
    private_pem: bytes = field(repr=False)
    algorithm: str = ALGORITHM

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"signing key {self.kid} is not an EC key")
        return key

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key().public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
            "kid": self.kid,
            "use": "sig",
            "alg": self.algorithm,
        }


@dataclass(frozen=True)
class KeysetSchedule:
    rotate_every: datetime.timedelta = datetime.timedelta(days=30)
    publish_lead: datetime.timedelta = datetime.timedelta(minutes=10)
    """How long a new key is published before it signs (>= verifiers' JWKS cache time)."""
    retain_after: datetime.timedelta = datetime.timedelta(days=2)
    """How long a superseded key stays published (>= longest token lifetime + cache time)."""


def new_signing_key(*, now: datetime.datetime, kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(kid=kid, created_at=now, private_pem=pem)


def signing_key(keys: Sequence[SigningKey], *, now: datetime.datetime, schedule: KeysetSchedule) -> SigningKey:
    """The newest key published long enough ago; the oldest key when none is (a fresh keyset)."""
    ordered = sorted(keys, key=lambda key: key.created_at)
    ripe = [key for key in ordered if key.created_at + schedule.publish_lead <= now]
    return ripe[-1] if ripe else ordered[0]


def published_keys(keys: Sequence[SigningKey], *, now: datetime.datetime, schedule: KeysetSchedule) -> list[SigningKey]:
    """Every key that may have signed a live token, or is about to sign."""
    current = signing_key(keys, now=now, schedule=schedule)
    ordered = sorted(keys, key=lambda key: key.created_at)
    kept = []
    for index, key in enumerate(ordered):
        successor = ordered[index + 1] if index + 1 < len(ordered) else None
        if key.created_at >= current.created_at or successor is None:
            kept.append(key)
            continue
        superseded_at = successor.created_at + schedule.publish_lead
        if now < superseded_at + schedule.retain_after:
            kept.append(key)
    return kept


def rotated_keyset(
    keys: Sequence[SigningKey],
    *,
    now: datetime.datetime,
    schedule: KeysetSchedule,
    make_key: Callable[[datetime.datetime], SigningKey],
) -> list[SigningKey] | None:
    """The keyset after rotation housekeeping, or ``None`` when nothing needs to change."""
    kept = published_keys(keys, now=now, schedule=schedule) if keys else []
    newest = max((key.created_at for key in kept), default=None)
    if newest is None or now >= newest + schedule.rotate_every:
        kept.append(make_key(now))
    if {key.kid for key in kept} == {key.kid for key in keys}:
        return None
    return kept


def encode_keyset(keys: Sequence[SigningKey]) -> str:
    return json.dumps(
        [
            {
                "kid": key.kid,
                "alg": key.algorithm,
                "createdAt": precise_timestamp(key.created_at),
                "privateKey": key.private_pem.decode(),
            }
            for key in keys
        ]
    )


def decode_keyset(text: str) -> list[SigningKey]:
    keys = []
    for entry in json.loads(text):
        created = parse_timestamp(entry["createdAt"])
        if created is None or entry.get("alg") != ALGORITHM:
            continue
        keys.append(
            SigningKey(
                kid=entry["kid"], created_at=created, private_pem=entry["privateKey"].encode(), algorithm=ALGORITHM
            )
        )
    return keys


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
