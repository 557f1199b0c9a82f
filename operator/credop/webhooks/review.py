"""One admission review: gather the facts, decide, and remember admitted keys (for maxKeysPerOwner)."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator
from dataclasses import replace

from credop import names
from credop.controller.scheduler import Clock
from credop.kube.client import Kube
from credop.webhooks.decide import Denial, decide
from credop.webhooks.gather import Facts, gather_facts
from credop.webhooks.pending import PendingKeys
from credop.webhooks.requests import CREATE, AdmissionRequest


class Admission:
    """What the webhook handlers share in one operator: the API, the clock, keys just admitted."""

    def __init__(self, kube: Kube, *, clock: Clock) -> None:
        self.kube = kube
        self.clock = clock
        self.pending = PendingKeys()

    async def review(self, request: AdmissionRequest) -> list[Denial]:
        """The rules ``request`` breaks; an admitted key create is remembered until the listing shows it."""
        async with self._serialized(request):
            now = self.clock()
            facts = self._with_admitted_keys(request, await gather_facts(self.kube, request), now=now)
            denials = decide(request, facts, now=now)
            if not denials and _creates_a_key(request) and not request.dry_run:
                self.pending.remember(request.namespace, request.requester.user, request.name, now=now)
            return denials

    def _with_admitted_keys(self, request: AdmissionRequest, facts: Facts, *, now: datetime.datetime) -> Facts:
        if not _creates_a_key(request):
            return facts
        user = request.requester.user
        return replace(
            facts, admitted_keys=self.pending.admitted(request.namespace, user, now=now, stored=facts.owned_keys)
        )

    def _serialized(self, request: AdmissionRequest) -> contextlib.AbstractAsyncContextManager[None]:
        if _creates_a_key(request):
            return self.pending.serialized(request.namespace, request.requester.user)
        return _nothing()


def _creates_a_key(request: AdmissionRequest) -> bool:
    return request.operation == CREATE and request.plural == names.SERVICE_ACCOUNT_KEYS


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
