"""Leader election: one active operator replica at a time, failover when the leader stops renewing.

Only the leader runs kopf (and so the scheduler and the slot actor); standby
replicas wait. A leader that cannot renew before its lease runs out stops
itself, so two replicas never act at once for longer than the clock skew.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from credop.clock import Clock, utc_now
from credop.domain.lease import LeaseMove, LeaseTerms, lease_expiry, lease_spec, next_move
from credop.kube.client import ConflictError, Kube, NotFoundError

logger = logging.getLogger(__name__)
LEASE_NAME = "credop-operator"


class LeaderElector:
    def __init__(
        self, kube: Kube, *, namespace: str, terms: LeaseTerms, renew_every: float = 5.0, clock: Clock = utc_now
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._terms = terms
        self._renew_every = renew_every
        self._clock = clock
        self._held_until: datetime.datetime | None = None

    async def acquire(self) -> None:
        """Return once this replica holds the lease."""
        while not await self._try():  # noqa: ASYNC110 - polling the API server, not a local event
            await asyncio.sleep(self._renew_every)
        logger.info("became the leader as %s", self._terms.identity)

    async def hold(self) -> None:
        """Renew until the lease is lost (then return, so the caller stops working)."""
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                renewed = await self._try()
            except Exception as error:
                logger.warning("could not renew the leader lease: %s", error)
                renewed = False
            if not renewed and (
                self._held_until is None
                or self._clock() >= self._held_until - datetime.timedelta(seconds=self._renew_every)
            ):
                logger.error("lost the leader lease; stopping")
                return

    async def release(self) -> None:
        try:
            lease = await self._read()
        except NotFoundError:
            return
        if lease["spec"].get("holderIdentity") == self._terms.identity:
            lease["spec"]["holderIdentity"] = None
            lease["spec"]["renewTime"] = None
            lease["spec"]["acquireTime"] = None
            await self._replace(lease)

    async def _try(self) -> bool:
        now = self._clock()
        try:
            lease = await self._read()
        except NotFoundError:
            return await self._create(now)
        spec = lease.get("spec") or {}
        move = next_move(spec, self._terms, now=now)
        if move is LeaseMove.WAIT:
            return False
        lease["spec"] = lease_spec(spec, self._terms, move, now=now)
        try:
            await self._replace(lease)
        except ConflictError:
            return False
        self._held_until = lease_expiry(lease["spec"])
        return True

    async def _create(self, now: datetime.datetime) -> bool:
        body = {
            "metadata": {"name": LEASE_NAME, "namespace": self._namespace},
            "spec": lease_spec({}, self._terms, LeaseMove.TAKE, now=now),
        }
        try:
            await self._kube.create_lease(self._namespace, body)
        except ConflictError:
            return False
        self._held_until = lease_expiry(body["spec"])
        return True

    async def _read(self) -> dict[str, Any]:
        return await self._kube.read_lease(self._namespace, LEASE_NAME)

    async def _replace(self, lease: dict[str, Any]) -> None:
        await self._kube.replace_lease(self._namespace, LEASE_NAME, lease)
