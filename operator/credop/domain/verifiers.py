"""Verifiers: what credop keeps to check a presented secret without keeping the secret.

Generated secrets have 95+ bits of entropy, so a keyed hash (HMAC-SHA256 with a
credop-held key) is enough and costs microseconds. Secrets users choose
themselves may be guessable, so they get argon2id, a slow password hash.
Verifier strings name their scheme and key, so keys can rotate:
``hmac-sha256$<key id>$<base64>`` and argon2's own ``$argon2id$...``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HMAC_SCHEME = "hmac-sha256"
ARGON2_PREFIX = "$argon2id$"

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~10-30 ms here.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class UnknownVerifierKeyError(LookupError):
    """A keyed verifier names a key credop no longer has."""


def keyed_digest(secret: str, *, key: bytes) -> bytes:
    return hmac.new(key, secret.encode(), hashlib.sha256).digest()


def keyed_verifier(secret: str, *, key: bytes, key_id: str) -> str:
    """The HMAC-SHA256 verifier of a high-entropy generated secret."""
    digest = base64.urlsafe_b64encode(keyed_digest(secret, key=key)).decode().rstrip("=")
    return f"{HMAC_SCHEME}${key_id}${digest}"


def password_verifier(secret: str, *, hasher: PasswordHasher = PASSWORD_HASHER) -> str:
    """The argon2id verifier of a user-chosen secret."""
    return hasher.hash(secret)


def is_password_verifier(verifier: str) -> bool:
    return verifier.startswith(ARGON2_PREFIX)


def secret_matches(
    secret: str,
    verifier: str,
    *,
    keys: Mapping[str, bytes],
    hasher: PasswordHasher = PASSWORD_HASHER,
) -> bool:
    """Whether ``secret`` is the one ``verifier`` was made from, in constant time for keyed hashes."""
    if is_password_verifier(verifier):
        try:
            return hasher.verify(verifier, secret)
        except (VerificationError, InvalidHashError):
            return False
    scheme, _, rest = verifier.partition("$")
    key_id, _, expected = rest.partition("$")
    if scheme != HMAC_SCHEME or not expected:
        return False
    if key_id not in keys:
        raise UnknownVerifierKeyError(key_id)
    return hmac.compare_digest(keyed_verifier(secret, key=keys[key_id], key_id=key_id), verifier)
