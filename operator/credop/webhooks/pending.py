"""Keys admitted but not yet stored, per namespace and user: counted by every webhook replica alike.

Admission answers before the API server stores the object, so two creates by
one user at the same instant would both see the same count. Each admitted key
is written, before the answer, into a record the API server arbitrates: a
ConfigMap per namespace in credop's namespace, replaced only at the
resourceVersion it was read at. A create racing another on a different replica
fails that write, reads again and is counted against what the other admitted;
so ``maxKeysPerOwner`` is exact however many replicas serve the webhooks. A key
counts from its admission until the listing shows it, or a short hold passes
(storing failed). Creates by one user on one replica are also serialised, so
they do not race each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from credop import names
from credop.domain.conditions import parse_timestamp, precise_timestamp
from credop.kube.client import ConflictError, Kube, NotFoundError

HOLD = datetime.timedelta(seconds=30)
Owner = tuple[str, str]


def user_key(user: str) -> str:
    """A ConfigMap data key for a user name (which may hold ``@``, ``:`` and more)."""
    return hashlib.sha256(user.encode()).hexdigest()[:40]


def still_pending(
    entries: dict[str, str], *, now: datetime.datetime, hold: datetime.timedelta, stored: frozenset[str]
) -> dict[str, str]:
    """Admitted names within the hold that the listing does not show yet (name → admission time)."""
    kept = {}
    for name, at in entries.items():
        try:
            admitted = parse_timestamp(at)
        except ValueError:
            continue  # not a time credop wrote: it counts for nothing
        if admitted is not None and now - admitted < hold and name not in stored:
            kept[name] = at
    return kept


@dataclass(frozen=True)
class Admitted:
    """What the record said for one user, and the version to replace it at."""

    names: dict[str, str]
    others: dict[str, str]
    """The other users' entries, kept as they are."""
    version: str | None
    """The ConfigMap's resourceVersion; None when it does not exist yet."""
    stale: bool = False
    """The record named keys that are stored (or whose hold passed) since: worth writing back without them."""


class AdmittedKeys:
    def __init__(self, kube: Kube, *, namespace: str, hold: datetime.timedelta = HOLD) -> None:
        self._kube = kube
        self._namespace = namespace
        self._hold = hold
        self._locks: dict[Owner, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def serialized(self, namespace: str, user: str) -> AsyncIterator[None]:
        """One create at a time for this user in this namespace, on this replica."""
        owner = (namespace, user)
        lock = self._locks.setdefault(owner, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked():
                self._locks.pop(owner, None)

    def record_name(self, namespace: str) -> str:
        return f"credop-admitted-{namespace}"

    async def read(self, namespace: str, user: str, *, now: datetime.datetime, stored: frozenset[str]) -> Admitted:
        try:
            record = await self._kube.read_config_map(self._namespace, self.record_name(namespace))
        except NotFoundError:
            return Admitted({}, {}, None)
        data = dict(record.get("data") or {})
        mine = json.loads(data.pop(user_key(user), "{}"))
        pending = still_pending(mine, now=now, hold=self._hold, stored=stored)
        return Admitted(pending, data, record["metadata"]["resourceVersion"], stale=len(pending) != len(mine))

    async def add(self, namespace: str, user: str, name: str, *, now: datetime.datetime, read: Admitted) -> None:
        """Write ``name`` as admitted; raises ConflictError when another admission wrote since ``read``."""
        await self._write(namespace, user, {**read.names, name: precise_timestamp(now)}, read=read)

    async def forget_stale(self, namespace: str, user: str, *, read: Admitted) -> None:
        """Write the record back without entries that no longer count (a key stored, and maybe deleted, since)."""
        if read.stale and read.version is not None:
            with contextlib.suppress(ConflictError):
                await self._write(namespace, user, read.names, read=read)

    async def _write(self, namespace: str, user: str, entries: dict[str, str], *, read: Admitted) -> None:
        data = {**read.others, **({user_key(user): json.dumps(entries)} if entries else {})}
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.record_name(namespace),
                "namespace": self._namespace,
                "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE, "credop.dev/role": "admitted-keys"},
            },
            "data": data,
        }
        if read.version is None:
            await self._kube.create_config_map(self._namespace, body)
            return
        body["metadata"]["resourceVersion"] = read.version
        await self._kube.replace_config_map(self._namespace, self.record_name(namespace), body)


__all__ = ["HOLD", "Admitted", "AdmittedKeys", "ConflictError", "still_pending", "user_key"]
