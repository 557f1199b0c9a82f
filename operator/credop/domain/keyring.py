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
