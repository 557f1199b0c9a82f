"""One admission review: gather the facts, decide, and record admitted keys (for maxKeysPerOwner).

A key create is decided against the keys the user already has plus those
admitted by any replica but not yet stored, then recorded as admitted with a
write the API server arbitrates; a lost race reads and decides again.
"""

from __future__ import annotations

import datetime
from dataclasses import replace

from credop import names
from credop.clock import Clock
from credop.domain.policy import Violation
from credop.kube.client import ConflictError, Kube
from credop.webhooks.decide import Denial, decide
from credop.webhooks.gather import gather_facts
from credop.webhooks.pending import AdmittedKeys
from credop.webhooks.requests import CREATE, AdmissionRequest

ATTEMPTS = 8
BUSY = Denial("maxKeysPerOwner", Violation("metadata", "too many keys created at once by this user; try again"))


class Admission:
    """What the webhook handlers share in one process: the API, the clock, the admitted-keys record."""

    def __init__(self, kube: Kube, *, clock: Clock, namespace: str) -> None:
        self.kube = kube
        self.clock = clock
        self.admitted = AdmittedKeys(kube, namespace=namespace)

    async def review(self, request: AdmissionRequest) -> list[Denial]:
        """The rules ``request`` breaks; an admitted key create is recorded until the listing shows it."""
        if not _creates_a_key(request):
            return decide(request, await gather_facts(self.kube, request), now=self.clock())
        async with self.admitted.serialized(request.namespace, request.requester.user):
            for _ in range(ATTEMPTS):
                denials = await self._review_key_create(request)
                if denials is not None:
                    return denials
        return [BUSY]

    async def _review_key_create(self, request: AdmissionRequest) -> list[Denial] | None:
        """The verdict on a key create; ``None`` when another admission wrote first (decide again)."""
        now: datetime.datetime = self.clock()
        facts = await gather_facts(self.kube, request)
        user = request.requester.user
        read = await self.admitted.read(request.namespace, user, now=now, stored=facts.owned_keys)
        denials = decide(request, replace(facts, admitted_keys=frozenset(read.names)), now=now)
        if denials or request.dry_run:
            if not request.dry_run:
                await self.admitted.forget_stale(request.namespace, user, read=read)
            return denials
        try:
            await self.admitted.add(request.namespace, user, request.name, now=now, read=read)
        except ConflictError:
            return None
        return []


def _creates_a_key(request: AdmissionRequest) -> bool:
    return request.operation == CREATE and request.plural == names.SERVICE_ACCOUNT_KEYS
