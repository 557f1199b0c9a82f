"""credop's own keys, kept in one Secret: HMAC keys for verifiers, and two signing keysets.

Access tokens and JWT-format keys are signed by different keys, published in
different JWK sets, so a resource server that trusts credop's access tokens
can never be handed a (long-lived) key JWT in their place.

The operator creates and rotates them; every credential service replica reads
them. Values in :class:`Keyring` are secret: never log or return them.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from credop.domain.signing import KEYSET_DATA_KEY, SigningKey, decode_keyset, encode_keyset

HMAC_DATA_KEY = "hmac-keys.json"
KEY_KEYSET_DATA_KEY = "key-keyset.json"
RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class Keyring:
    hmac_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    current_hmac: str = ""
    signing_keys: tuple[SigningKey, ...] = ()
    """Keys that sign access tokens (published at /.well-known/jwks.json)."""
    key_signing_keys: tuple[SigningKey, ...] = ()
    """Keys that sign JWT-format ServiceAccountKeys (published at /.well-known/key-jwks.json)."""

    @property
    def current_hmac_key(self) -> bytes:
        return self.hmac_keys[self.current_hmac]

    def with_signing_keys(self, keys: list[SigningKey]) -> Keyring:
        return replace(self, signing_keys=tuple(keys))

    def with_key_signing_keys(self, keys: list[SigningKey]) -> Keyring:
        return replace(self, key_signing_keys=tuple(keys))


def new_keyring(
    *, now: datetime.datetime, random_bytes: RandomBytes, make_signing_key: Callable[[datetime.datetime], SigningKey]
) -> Keyring:
    kid = "h" + now.strftime("%Y%m%d%H%M%S")
    return Keyring({kid: random_bytes(32)}, kid, (make_signing_key(now),), (make_signing_key(now),))


def encode_keyring(keyring: Keyring) -> dict[str, str]:
    """Secret ``stringData`` for the keyring."""
    hmac_entries = [
        {"kid": kid, "key": base64.b64encode(key).decode(), "current": kid == keyring.current_hmac}
        for kid, key in keyring.hmac_keys.items()
    ]
    return {
        HMAC_DATA_KEY: json.dumps(hmac_entries),
        KEYSET_DATA_KEY: encode_keyset(keyring.signing_keys),
        KEY_KEYSET_DATA_KEY: encode_keyset(keyring.key_signing_keys),
    }


def decode_keyring(data: Mapping[str, str]) -> Keyring:
    """The keyring from a Secret's ``data`` (base64 values, as the API returns them)."""
    decoded = {key: base64.b64decode(value).decode() for key, value in data.items()}
    entries = json.loads(decoded.get(HMAC_DATA_KEY, "[]"))
    keys = {entry["kid"]: base64.b64decode(entry["key"]) for entry in entries}
    current = next((entry["kid"] for entry in entries if entry.get("current")), next(iter(keys), ""))
    signing = decode_keyset(decoded.get(KEYSET_DATA_KEY, "[]"))
    key_signing = decode_keyset(decoded.get(KEY_KEYSET_DATA_KEY, "[]"))
    return Keyring(keys, current, tuple(signing), tuple(key_signing))


HMAC_KID_FORMAT = "h%Y%m%d%H%M%S"


def hmac_key_created_at(kid: str) -> datetime.datetime | None:
    """When an HMAC key was made (its ID says so: ``h20261203091500``); ``None`` for other IDs."""
    try:
        return datetime.datetime.strptime(kid, HMAC_KID_FORMAT).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def with_new_hmac_key_when_due(
    keyring: Keyring, *, now: datetime.datetime, every: datetime.timedelta, random_bytes: RandomBytes
) -> Keyring | None:
    """A keyring whose current HMAC key is new, when the current one is ``every`` old; else ``None``.

    Verifiers name their key, so older keys keep verifying the secrets minted under
    them; new secrets (mints and rotations) get verifiers under the new key.
    """
    made = hmac_key_created_at(keyring.current_hmac)
    if keyring.hmac_keys and made is not None and now < made + every:
        return None
    kid = now.strftime(HMAC_KID_FORMAT)
    if kid in keyring.hmac_keys:
        return None
    return replace(keyring, hmac_keys={**keyring.hmac_keys, kid: random_bytes(32)}, current_hmac=kid)


def without_unused_hmac_keys(keyring: Keyring, *, in_use: set[str]) -> Keyring | None:
    """The keyring without HMAC keys no verifier names any more (never the current one); ``None`` if none go."""
    kept = {kid: key for kid, key in keyring.hmac_keys.items() if kid == keyring.current_hmac or kid in in_use}
    if len(kept) == len(keyring.hmac_keys):
        return None
    return replace(keyring, hmac_keys=kept)


def merged_keyrings(kept: Keyring, incoming: Keyring) -> Keyring:
    """Every key of both (an import never loses a key that exists); the newer current HMAC key wins."""
    hmac_keys = {**incoming.hmac_keys, **kept.hmac_keys}
    currents = [kid for kid in (kept.current_hmac, incoming.current_hmac) if kid in hmac_keys]
    current = max(
        currents,
        key=lambda kid: (hmac_key_created_at(kid) or datetime.datetime.min.replace(tzinfo=datetime.UTC), kid),
        default="",
    )
    return Keyring(
        hmac_keys,
        current,
        _union(kept.signing_keys, incoming.signing_keys),
        _union(kept.key_signing_keys, incoming.key_signing_keys),
    )


def _union(first: tuple[SigningKey, ...], second: tuple[SigningKey, ...]) -> tuple[SigningKey, ...]:
    by_kid = {key.kid: key for key in (*second, *first)}
    return tuple(sorted(by_kid.values(), key=lambda key: (key.created_at, key.kid)))


def verifier_key_ids(*verifiers: str | None) -> tuple[str, ...]:
    """The HMAC key IDs keyed verifiers name (``hmac-sha256$<kid>$...``); argon2 verifiers name none."""
    kids = []
    for verifier in verifiers:
        if verifier and verifier.startswith("hmac-sha256$"):
            kids.append(verifier.split("$")[1])
    return tuple(dict.fromkeys(kids))
