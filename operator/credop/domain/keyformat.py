"""Credential formats: prefixed, checksummed identifiers and secrets that secret scanners can find.

Every value is ``<prefix>_<base62 body><6-character base62 CRC32>``, the shape
GitHub and others use: the prefix says what leaked, the checksum lets a scanner
tell a real credential from random text without asking anyone.
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from credop.api.keypolicy import ClientSecretRules

RandomBytes = Callable[[int], bytes]
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
CHECKSUM_LENGTH = 6
_ACCEPTED_BYTE_LIMIT = 248  # the largest multiple of 62 below 256: unbiased by rejection


@dataclass(frozen=True)
class CredentialFormat:
    """A family of credential strings: its prefix and the length of its random body."""

    prefix: str
    body_length: int
    what: str
    shortest_body: int | None = None
    """The shortest body an earlier version minted, still recognised (default: ``body_length`` only)."""

    @property
    def length(self) -> int:
        return len(self.prefix) + 1 + self.body_length + CHECKSUM_LENGTH

    def mint(self, random_bytes: RandomBytes) -> str:
        return with_checksum(f"{self.prefix}_{random_base62(self.body_length, random_bytes)}")

    def recognises(self, value: str) -> bool:
        """Whether ``value`` has this format's prefix, a body length it mints, base62 and a correct checksum."""
        head = f"{self.prefix}_"
        body = len(value) - len(head) - CHECKSUM_LENGTH
        shortest = self.body_length if self.shortest_body is None else self.shortest_body
        if not shortest <= body <= self.body_length or not value.startswith(head):
            return False
        return all(char in BASE62 for char in value[len(head) :]) and checksum_is_valid(value)


ACCESS_KEY_ID = CredentialFormat(prefix="crak", body_length=16, what="access key ID")  # 95 bits
SECRET_KEY = CredentialFormat(prefix="crsk", body_length=40, what="secret key")  # 238 bits
CLIENT_SECRET = CredentialFormat(prefix="crcs", body_length=22, what="client secret", shortest_body=16)  # 131 bits
KNOWN_FORMATS = (ACCESS_KEY_ID, SECRET_KEY, CLIENT_SECRET)
MIN_GENERATED_BITS = 128
"""Every secret credop generates carries at least this much entropy, whatever a policy says."""


def random_base62(length: int, random_bytes: RandomBytes) -> str:
    """``length`` uniformly random base62 characters drawn from ``random_bytes``."""
    chars: list[str] = []
    while len(chars) < length:
        for byte in random_bytes(length - len(chars) + 8):
            if byte < _ACCEPTED_BYTE_LIMIT:
                chars.append(BASE62[byte % 62])
                if len(chars) == length:
                    break
    return "".join(chars)


def checksum(text: str) -> str:
    """CRC32 of ``text`` as 6 base62 characters."""
    value = zlib.crc32(text.encode())
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def with_checksum(text: str) -> str:
    return text + checksum(text)


def checksum_is_valid(value: str) -> bool:
    return len(value) > CHECKSUM_LENGTH and checksum(value[:-CHECKSUM_LENGTH]) == value[-CHECKSUM_LENGTH:]


def recognised_format(value: str) -> CredentialFormat | None:
    """Which credop format ``value`` is, if any (what a secret scanner asks)."""
    return next((fmt for fmt in KNOWN_FORMATS if fmt.recognises(value)), None)


def new_access_key_id(random_bytes: RandomBytes) -> str:
    return ACCESS_KEY_ID.mint(random_bytes)


def new_secret_key(random_bytes: RandomBytes) -> str:
    return SECRET_KEY.mint(random_bytes)


def new_client_secret(random_bytes: RandomBytes) -> str:
    """A generated client secret: always the checksummed, prefixed format with 131 bits.

    The policy's clientSecret rules are for secrets people choose; a generated one
    never gets shorter (or loses its scanner prefix) because a policy allows short ones.
    """
    return CLIENT_SECRET.mint(random_bytes)


def client_secret_problems(secret: str, rules: ClientSecretRules) -> list[str]:
    """What is wrong with ``secret`` under ``rules``, in words that never quote the secret."""
    problems = []
    if not rules.min_length <= len(secret) <= rules.max_length:
        problems.append(f"must be between {rules.min_length} and {rules.max_length} characters")
    if rules.require_letter and not any(char.isalpha() for char in secret):
        problems.append("must contain a letter")
    if rules.require_digit and not any(char.isdigit() for char in secret):
        problems.append("must contain a digit")
    if rules.require_special and all(char.isalnum() for char in secret):
        problems.append("must contain at least one special character (neither letter nor digit)")
    if any(char.isspace() or not char.isprintable() for char in secret):
        problems.append("must not contain spaces or control characters")
    return problems
