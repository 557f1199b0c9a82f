"""credop's own keys, kept in one Secret: HMAC keys for verifiers and the signing keyset.

The operator creates and rotates them; every credential service replica reads
them. Values in :class:`Keyring` are secret: never log or return them.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from credop.domain.signing import KEYSET_DATA_KEY, SigningKey, decode_keyset, encode_keyset

HMAC_DATA_KEY = "hmac-keys.json"
RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class Keyring:
    hmac_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    current_hmac: str = ""
    signing_keys: tuple[SigningKey, ...] = ()

    @property
    def current_hmac_key(self) -> bytes:
        return self.hmac_keys[self.current_hmac]

    def with_signing_keys(self, keys: list[SigningKey]) -> Keyring:
        return Keyring(self.hmac_keys, self.current_hmac, tuple(keys))


def new_keyring(
    *, now: datetime.datetime, random_bytes: RandomBytes, make_signing_key: Callable[[datetime.datetime], SigningKey]
) -> Keyring:
    kid = "h" + now.strftime("%Y%m%d%H%M%S")
    return Keyring({kid: random_bytes(32)}, kid, (make_signing_key(now),))


def encode_keyring(keyring: Keyring) -> dict[str, str]:
    """Secret ``stringData`` for the keyring."""
    hmac_entries = [
        {"kid": kid, "key": base64.b64encode(key).decode(), "current": kid == keyring.current_hmac}
        for kid, key in keyring.hmac_keys.items()
    ]
    return {HMAC_DATA_KEY: json.dumps(hmac_entries), KEYSET_DATA_KEY: encode_keyset(keyring.signing_keys)}


def decode_keyring(data: Mapping[str, str]) -> Keyring:
    """The keyring from a Secret's ``data`` (base64 values, as the API returns them)."""
    decoded = {key: base64.b64decode(value).decode() for key, value in data.items()}
    entries = json.loads(decoded.get(HMAC_DATA_KEY, "[]"))
    keys = {entry["kid"]: base64.b64decode(entry["key"]) for entry in entries}
    current = next((entry["kid"] for entry in entries if entry.get("current")), next(iter(keys), ""))
    signing = decode_keyset(decoded.get(KEYSET_DATA_KEY, "[]"))
    return Keyring(keys, current, tuple(signing))
