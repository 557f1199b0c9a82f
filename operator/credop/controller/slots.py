"""The slot actor: the only writer of ApiClient phases, one serial loop per namespace.

Kopf runs handlers for different objects concurrently and its view lags the
patches, so no handler may decide "there is a free slot" on its own. Handlers
report each client's eligibility here; the namespace's loop reads a fresh,
consistent list from the API server, asks :func:`credop.domain.slots.allocate_slots`
and writes demotions before promotions, so no observer ever sees more than
the limit Active.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

from credop import names
from credop.api.apiclient import ApiClientStatus
from credop.api.common import ACTIVE
from credop.clock import Clock
from credop.controller.events import EventRecorder
from credop.controller.status import StaleStatusError, StatusWriter, phase_events, status_transitions, written
from credop.controller.store import ObjectRef, generation_of
from credop.domain.clients import ClientFacts, ShownStatus, SlotOutcome, slot_status, tokens_cut_off
from credop.domain.conditions import merge_conditions, parse_timestamp, timestamp
from credop.domain.slots import LIMIT_REACHED, ClientView, allocate_slots
from credop.kube.client import Kube

logger = logging.getLogger(__name__)
PLURAL = names.API_CLIENTS
Body = dict[str, Any]


class SlotActor:
    """Decides and writes every ApiClient's phase, one namespace loop at a time."""

    def __init__(
        self,
        kube: Kube,
        *,
        status: StatusWriter,
        events: EventRecorder,
        notices: Callable[[str, Body], None],
        clock: Clock,
    ) -> None:
        self._kube = kube
        self._status = status
        self._events = events
        self._notices = notices
        self._clock = clock
        self._facts: dict[ObjectRef, ClientFacts] = {}
        self._dirty: set[str] = set()
        self._loops: dict[str, asyncio.Task[None]] = {}
        self.rounds = 0

    def update(self, ref: ObjectRef, facts: ClientFacts) -> None:
        if self._facts.get(ref) != facts:
            self._facts[ref] = facts
        self._kick(ref.namespace)

    def forget(self, ref: ObjectRef) -> None:
        if self._facts.pop(ref, None) is not None:
            self._kick(ref.namespace)

    def _kick(self, namespace: str) -> None:
        self._dirty.add(namespace)
        if namespace not in self._loops:
            self._loops[namespace] = asyncio.create_task(self._serve(namespace))

    async def _serve(self, namespace: str) -> None:
        try:
            while namespace in self._dirty:
                self._dirty.discard(namespace)
                try:
                    await self._allocate(namespace)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("slot allocation in namespace %s failed; retrying", namespace)
                    self._dirty.add(namespace)
                    await asyncio.sleep(1.0)
        finally:
            self._loops.pop(namespace, None)

    async def stop(self) -> None:
        tasks = list(self._loops.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _allocate(self, namespace: str) -> None:
        self.rounds += 1
        items = await self._kube.list_objects(PLURAL, namespace)
        bodies = {item["metadata"]["name"]: item for item in items if not item["metadata"].get("deletionTimestamp")}
        views = [self._view(namespace, body) for body in bodies.values()]
        plan = allocate_slots(views)
        demoted = await asyncio.gather(*(self._write(bodies[name], SlotOutcome.DEMOTED) for name in plan.demote))
        if not all(demoted):
            return  # a demotion was not written (the client changed): no promotion before it is
        settled = set(plan.demote) | set(plan.promote)
        others = [name for name in bodies if name not in settled and self._facts_of(namespace, name) is not None]
        await asyncio.gather(
            *(
                self._write(bodies[name], SlotOutcome.WAITING if name in plan.waiting else SlotOutcome.KEPT)
                for name in others
            )
        )
        await asyncio.gather(*(self._write(bodies[name], SlotOutcome.PROMOTED) for name in plan.promote))

    def _facts_of(self, namespace: str, name: str) -> ClientFacts | None:
        return self._facts.get(ObjectRef(PLURAL, namespace, name))

    def _view(self, namespace: str, body: Body) -> ClientView:
        meta = body["metadata"]
        status = body.get("status") or {}
        facts = self._facts_of(namespace, meta["name"])
        current = facts is not None and facts.generation == generation_of(body)
        created_at = parse_timestamp(meta["creationTimestamp"])
        assert created_at is not None
        return ClientView(
            name=meta["name"],
            phase=status.get("phase"),
            created_at=created_at,
            limit=facts.limit if facts else 0,
            eligible=facts.eligible if facts is not None and current else None,
            requested_at=parse_timestamp(status.get("activationRequestedAt")),
        )

    async def _write(self, body: Body, outcome: SlotOutcome) -> bool:
        """Write the client's phase; False when its status changed since it was listed (the namespace goes again)."""
        meta = body["metadata"]
        facts = self._facts_of(meta["namespace"], meta["name"])
        if facts is None:
            return True
        now = self._clock()
        desired = self._desired(body, facts, outcome, now=now)
        self._post_events(body, desired, outcome)
        found = status_transitions(body, desired, policy=(body.get("status") or {}).get("policy"))
        try:
            await self._status.apply(PLURAL, body, desired, history=found)
        except StaleStatusError:
            self._dirty.add(meta["namespace"])  # another write came first: decide again from a fresh list
            return False
        self._notices(PLURAL, written(body, desired))
        return True

    def _desired(self, body: Body, facts: ClientFacts, outcome: SlotOutcome, *, now: datetime.datetime) -> Body:
        """The status fields this round writes, from :func:`credop.domain.clients.slot_status`."""
        status = body.get("status") or {}
        shown = ShownStatus(
            status.get("phase"), status.get("reason"), status.get("message"), status.get("activationRequestedAt")
        )
        decided = slot_status(facts, outcome, shown, now=now)
        conditions = merge_conditions(
            status.get("conditions") or [], decided.conditions, now=now, generation=facts.generation
        )
        desired = ApiClientStatus.model_validate(
            {
                "phase": decided.phase,
                "reason": decided.reason or None,
                "message": decided.message or None,
                "observedGeneration": facts.generation,
                "activationRequestedAt": decided.activation_requested_at,
                "conditions": conditions,
            }
        ).to_patch()
        if status.get("phase") != decided.phase or status.get("observedGeneration") != facts.generation:
            desired["lastUpdated"] = timestamp(now)
        cut_off, _ = tokens_cut_off(
            was_active=status.get("phase") == ACTIVE,
            is_active=decided.phase == ACTIVE,
            requested=None,
            handled=None,
            recorded=None,
            now=now,
        )
        if cut_off is not None:
            desired["tokensInvalidBefore"] = timestamp(cut_off)  # reactivation revives no token
        return desired

    def _post_events(self, body: Body, desired: Body, outcome: SlotOutcome) -> None:
        status = body.get("status") or {}
        for event in phase_events(status, desired):
            self._events.record(body, **event)
        if outcome is SlotOutcome.WAITING and status.get("reason") != LIMIT_REACHED:
            self._events.record(body, type="Warning", reason=LIMIT_REACHED, message=str(desired.get("message") or ""))
