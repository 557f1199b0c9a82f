"""Keys admitted but not yet seen in a listing, per namespace and user.

Admission answers before the API server stores the object, so two creates by
one user at the same instant would both see the same count. Creates by one
user are serialised here, and a key counts from the moment it is admitted until
it shows up in the listing (or a short hold passes, e.g. when storing failed).
Across several webhook replicas the controller's view stays the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator

HOLD = datetime.timedelta(seconds=30)
Owner = tuple[str, str]


class PendingKeys:
    def __init__(self, *, hold: datetime.timedelta = HOLD) -> None:
        self._hold = hold
        self._locks: dict[Owner, asyncio.Lock] = {}
        self._admitted: dict[Owner, dict[str, datetime.datetime]] = {}

    @contextlib.asynccontextmanager
    async def serialized(self, namespace: str, user: str) -> AsyncIterator[None]:
        """One create at a time for this user in this namespace."""
        owner = (namespace, user)
        lock = self._locks.setdefault(owner, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not self._admitted.get(owner):
                self._locks.pop(owner, None)

    def admitted(
        self, namespace: str, user: str, *, now: datetime.datetime, stored: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        """Names of keys admitted for this user within the hold and not among the ``stored`` ones (forgotten)."""
        owner = (namespace, user)
        names = {
            name: at
            for name, at in self._admitted.get(owner, {}).items()
            if now - at < self._hold and name not in stored
        }
        if names:
            self._admitted[owner] = names
        else:
            self._admitted.pop(owner, None)
        return frozenset(names)

    def remember(self, namespace: str, user: str, name: str, *, now: datetime.datetime) -> None:
        self._admitted.setdefault((namespace, user), {})[name] = now
