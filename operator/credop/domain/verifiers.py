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
import re
from collections.abc import Mapping

from argon2 import Parameters, PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

HMAC_SCHEME = "hmac-sha256"
ARGON2_PREFIX = "$argon2id$"

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~10-30 ms here.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


_KEYED = re.compile(r"^hmac-sha256\$[A-Za-z0-9._-]{1,64}\$[A-Za-z0-9_-]{43}$")


def baseline_parameters(hasher: PasswordHasher = PASSWORD_HASHER) -> Parameters:
    """The argon2id parameters credop hashes with: the only ones it will evaluate."""
    return extract_parameters(hasher.hash("baseline"))


_BASELINE = baseline_parameters()


def is_acceptable_verifier(verifier: str) -> bool:
    """Whether ``verifier`` has exactly the form credop writes (so checking it costs what credop chose).

    An argon2 verifier names its own memory and time cost; one written with
    other parameters is never evaluated, whoever wrote it.
    """
    if is_password_verifier(verifier):
        try:
            return extract_parameters(verifier) == _BASELINE
        except (InvalidHashError, ValueError):
            return False
    return bool(_KEYED.match(verifier))


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
    """Whether ``secret`` is the one ``verifier`` was made from, in constant time for keyed hashes.

    A verifier credop would not have made never matches and is never evaluated
    (an argon2 string names its own cost, which must not be a writer's choice).
    """
    if hasher is PASSWORD_HASHER and not is_acceptable_verifier(verifier):
        return False
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
