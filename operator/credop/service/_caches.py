"""Memory of work already done: argon2id verifications that succeeded, token signatures already checked.

Neither cache holds what it is about. Entries are keyed by a keyed hash
(BLAKE2b with a per-process random key) of the presented secret or token, so a
memory dump yields nothing usable, and a secret cache key also covers the
verifier it matched: when a credential's verifier changes (rotation), old
entries can never match again, and :meth:`VerifiedSecrets.forget` frees them.
Pure: no I/O; ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

Fingerprint = bytes


class KeyedFingerprints:
    """BLAKE2b keyed with ``key`` over each part, length-prefixed (so parts cannot run into each other).

    The keyed state is made once and copied per fingerprint: keying BLAKE2b anew costs about as much
    as hashing a token."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hashlib.blake2b(key=key, digest_size=32)

    def of(self, *parts: str) -> Fingerprint:
        hasher = self._keyed.copy()
        for part in parts:
            encoded = part.encode()
            hasher.update(len(encoded).to_bytes(4, "big"))
            hasher.update(encoded)
        return hasher.digest()


class VerifiedSecrets:
    """Which (credential, verifier, secret) triples verified, by keyed fingerprint only."""

    def __init__(self, *, key: bytes | None = None, per_credential: int = 8, max_credentials: int = 100_000) -> None:
        self._fingerprints = KeyedFingerprints(key or os.urandom(32))
        self._per_credential = per_credential
        self._max_credentials = max_credentials
        self._entries: OrderedDict[str, OrderedDict[Fingerprint, None]] = OrderedDict()

    def fingerprint(self, uid: str, verifier: str, secret: str) -> Fingerprint:
        return self._fingerprints.of(uid, verifier, secret)

    def __contains__(self, item: tuple[str, Fingerprint]) -> bool:
        uid, fingerprint = item
        known = self._entries.get(uid)
        return known is not None and fingerprint in known

    def remember(self, uid: str, fingerprint: Fingerprint) -> None:
        known = self._entries.setdefault(uid, OrderedDict())
        known[fingerprint] = None
        while len(known) > self._per_credential:
            known.popitem(last=False)
        self._entries.move_to_end(uid)
        while len(self._entries) > self._max_credentials:
            self._entries.popitem(last=False)

    def forget(self, uid: str) -> None:
        self._entries.pop(uid, None)

    def __len__(self) -> int:
        return sum(len(known) for known in self._entries.values())


class CheckedTokens:
    """Claims of tokens whose signature was verified, until they expire (bounded, oldest out first)."""

    def __init__(self, *, key: bytes | None = None, max_entries: int = 50_000) -> None:
        self._fingerprints = KeyedFingerprints(key or os.urandom(32))
        self._max_entries = max_entries
        self._entries: OrderedDict[Fingerprint, tuple[str, Mapping[str, Any]]] = OrderedDict()

    def fingerprint(self, token: str) -> Fingerprint:
        return self._fingerprints.of(token)

    def get(self, fingerprint: Fingerprint, *, now: float) -> tuple[str, Mapping[str, Any]] | None:
        """(signing key ID, claims) of a checked, unexpired token."""
        entry = self._entries.get(fingerprint)
        if entry is None:
            return None
        if not now < float(entry[1].get("exp", 0)):
            del self._entries[fingerprint]
            return None
        return entry

    def put(self, fingerprint: Fingerprint, kid: str, claims: Mapping[str, Any]) -> None:
        self._entries[fingerprint] = (kid, claims)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget_keys_except(self, kids: set[str]) -> None:
        """Drop tokens signed by keys no longer published."""
        for fingerprint in [f for f, (kid, _) in self._entries.items() if kid not in kids]:
            del self._entries[fingerprint]

    def __len__(self) -> int:
        return len(self._entries)
