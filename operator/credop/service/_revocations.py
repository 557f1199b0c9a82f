"""Revoked token IDs (RFC 7009): what every replica must reject until the token would have expired anyway.

Revocations are shared through one ConfigMap (``credop-revocations`` in
credop's namespace, ``data: {jti: expiry in Unix seconds}``) that every replica
watches (:mod:`credop.service._watches`); the replica that takes a revocation
also remembers it locally at once. Entries are pruned after their token's
expiry, so the ConfigMap holds only live revoked tokens (each entry is ~50
bytes: about 20,000 fit in a ConfigMap's 1 MiB). Pure: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class RevocationPublisher(Protocol):
    """Where a revocation is recorded for every replica."""

    async def publish(self, jti: str, expires_at: int, *, prune: list[str]) -> None: ...

    async def prune(self, expired: list[str]) -> None: ...


class RevokedTokens:
    """jti → expiry (Unix seconds): the shared list plus this replica's own not yet seen in it."""

    def __init__(self) -> None:
        self._shared: dict[str, int] = {}
        self._local: dict[str, int] = {}

    def __contains__(self, jti: object) -> bool:
        return jti in self._shared or jti in self._local

    def __len__(self) -> int:
        return len(self._shared.keys() | self._local.keys())

    def add_local(self, jti: str, expires_at: int) -> None:
        self._local[jti] = expires_at

    def replace_shared(self, entries: Mapping[str, str]) -> None:
        """The ConfigMap's data as it is now; entries that are not numbers are ignored."""
        shared = {}
        for jti, value in entries.items():
            try:
                shared[jti] = int(value)
            except (TypeError, ValueError):
                continue
        self._shared = shared
        for jti in [jti for jti in self._local if jti in shared]:
            del self._local[jti]

    def expired(self, *, now: float) -> list[str]:
        """Shared entries whose tokens have expired: to prune from the ConfigMap."""
        return [jti for jti, expiry in self._shared.items() if expiry <= now]

    def forget_expired(self, *, now: float) -> None:
        for jti in [jti for jti, expiry in self._local.items() if expiry <= now]:
            del self._local[jti]


class LocalPublisher:
    """An in-memory stand-in for the ConfigMap (tests, benchmarks, a single replica)."""

    def __init__(self, revoked: RevokedTokens) -> None:
        self._revoked = revoked
        self.entries: dict[str, str] = {}

    async def publish(self, jti: str, expires_at: int, *, prune: list[str]) -> None:
        for old in prune:
            self.entries.pop(old, None)
        self.entries[jti] = str(expires_at)
        self._revoked.replace_shared(self.entries)

    async def prune(self, expired: list[str]) -> None:
        for old in expired:
            self.entries.pop(old, None)
        self._revoked.replace_shared(self.entries)
