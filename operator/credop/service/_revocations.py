"""Revoked token IDs (RFC 7009): what every replica must reject until the token would have expired anyway.

Revocations are shared through one ConfigMap per tenant namespace
(``credop-revocations-<namespace>`` in credop's namespace, ``data: {jti: expiry
in Unix seconds}``) that every replica watches (:mod:`credop.service._watches`);
the replica that takes a revocation also remembers it locally at once.
Entries are pruned after their token's expiry, so a ConfigMap holds only live
revoked tokens. One tenant can fill only its own list (a cap per namespace,
and a rate per client), never another tenant's. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

CONFIG_MAP_PREFIX = "credop-revocations"
MAX_PER_NAMESPACE = 5000
"""Live revoked tokens one namespace may have (about 250 KB of a ConfigMap's 1 MiB)."""


class RevocationListFullError(RuntimeError):
    """The namespace's revocation list holds as many live entries as it may."""


def config_map_name(namespace: str) -> str:
    return f"{CONFIG_MAP_PREFIX}-{namespace}"


class RevocationPublisher(Protocol):
    """Where a revocation is recorded for every replica, one list per tenant namespace."""

    async def publish(self, namespace: str, jti: str, expires_at: int, *, prune: list[str]) -> None: ...

    async def prune(self, namespace: str, expired: list[str]) -> None: ...


class RevokedTokens:
    """jti → expiry (Unix seconds): every namespace's shared list plus this replica's own not yet seen in it."""

    def __init__(self) -> None:
        self._shared: dict[str, dict[str, int]] = {}
        self._all: dict[str, int] = {}
        self._local: dict[str, int] = {}

    def __contains__(self, jti: object) -> bool:
        return jti in self._all or jti in self._local

    def __len__(self) -> int:
        return len(self._all.keys() | self._local.keys())

    def count(self, namespace: str) -> int:
        """Live entries in ``namespace``'s shared list."""
        return len(self._shared.get(namespace, {}))

    def add_local(self, jti: str, expires_at: int) -> None:
        self._local[jti] = expires_at

    def replace_shared(self, namespace: str, entries: Mapping[str, str]) -> None:
        """A namespace's ConfigMap data as it is now; entries that are not numbers are ignored."""
        shared = {}
        for jti, value in entries.items():
            try:
                shared[jti] = int(value)
            except (TypeError, ValueError):
                continue
        for jti in self._shared.get(namespace, {}):
            self._all.pop(jti, None)
        self._shared[namespace] = shared
        if not shared:
            del self._shared[namespace]
        self._all.update(shared)
        for jti in [jti for jti in self._local if jti in shared]:
            del self._local[jti]

    def replace_all(self, lists: Mapping[str, Mapping[str, str]]) -> None:
        """Every namespace's list (a fresh listing): namespaces not in it have none."""
        for namespace in [namespace for namespace in self._shared if namespace not in lists]:
            self.replace_shared(namespace, {})
        for namespace, entries in lists.items():
            self.replace_shared(namespace, entries)

    def expired(self, *, now: float) -> dict[str, list[str]]:
        """Shared entries whose tokens have expired, by namespace: to prune from the ConfigMaps."""
        found = {ns: [jti for jti, expiry in entries.items() if expiry <= now] for ns, entries in self._shared.items()}
        return {namespace: jtis for namespace, jtis in found.items() if jtis}

    def forget_expired(self, *, now: float) -> None:
        for jti in [jti for jti, expiry in self._local.items() if expiry <= now]:
            del self._local[jti]


class LocalPublisher:
    """An in-memory stand-in for the ConfigMaps (tests, benchmarks, a single replica)."""

    def __init__(self, revoked: RevokedTokens) -> None:
        self._revoked = revoked
        self.entries: dict[str, dict[str, str]] = {}

    async def publish(self, namespace: str, jti: str, expires_at: int, *, prune: list[str]) -> None:
        entries = self.entries.setdefault(namespace, {})
        for old in prune:
            entries.pop(old, None)
        entries[jti] = str(expires_at)
        self._revoked.replace_shared(namespace, entries)

    async def prune(self, namespace: str, expired: list[str]) -> None:
        entries = self.entries.setdefault(namespace, {})
        for old in expired:
            entries.pop(old, None)
        self._revoked.replace_shared(namespace, entries)
