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
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from credop import names
from credop.controller.status import StaleStatusError, apply_status, phase_events, status_transitions, written
from credop.controller.store import ObjectRef, generation_of
from credop.domain.conditions import merge_conditions, parse_timestamp, precise_timestamp, timestamp
from credop.domain.lifecycle import READY, SECRET_MISSING, ConditionState
from credop.domain.slots import ACTIVE, INACTIVE, LIMIT_REACHED, ClientView, allocate_slots
from credop.domain.tokens import invalidation_instant

if TYPE_CHECKING:
    from credop.controller.runtime import Runtime

logger = logging.getLogger(__name__)
PLURAL = names.API_CLIENTS
Body = dict[str, Any]


@dataclass(frozen=True)
class ClientFacts:
    """What the ApiClient controller found: may it hold a slot, and if not, what should it show."""

    eligible: bool
    phase: str
    reason: str
    message: str
    limit: int
    generation: int
    secret_missing: bool = False

    @classmethod
    def failed(cls, reason: str, message: str, generation: int, *, secret_missing: bool = False) -> ClientFacts:
        return cls(False, "Failed", reason, message, 0, generation, secret_missing)


class SlotActor:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
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
        items = await self._runtime.kube.list_objects(PLURAL, namespace)
        bodies = {item["metadata"]["name"]: item for item in items if not item["metadata"].get("deletionTimestamp")}
        views = [self._view(namespace, body) for body in bodies.values()]
        plan = allocate_slots(views)
        demoted = await asyncio.gather(*(self._write(bodies[name], demoted=True) for name in plan.demote))
        if not all(demoted):
            return  # a demotion was not written (the client changed): no promotion before it is
        settled = set(plan.demote) | set(plan.promote)
        others = [name for name in bodies if name not in settled and self._facts_of(namespace, name) is not None]
        await asyncio.gather(*(self._write(bodies[name], waiting=name in plan.waiting) for name in others))
        await asyncio.gather(*(self._write(bodies[name], promoted=True) for name in plan.promote))

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

    async def _write(self, body: Body, *, demoted: bool = False, promoted: bool = False, waiting: bool = False) -> bool:
        """Write the client's phase; False when its status changed since it was listed (the namespace goes again)."""
        meta = body["metadata"]
        facts = self._facts_of(meta["namespace"], meta["name"])
        if facts is None:
            return True
        now = self._runtime.now()
        status = body.get("status") or {}
        if promoted:
            phase, reason, message = ACTIVE, "Active", ""
        elif waiting:
            phase, reason = INACTIVE, LIMIT_REACHED
            message = f"{facts.limit} ApiClients are already Active (the KeyPolicy's maxActiveClients); waiting for a free slot"
        elif facts.eligible and not demoted:
            phase, reason, message = (
                status.get("phase") or INACTIVE,
                status.get("reason") or "",
                status.get("message") or "",
            )
        else:
            phase, reason, message = facts.phase, facts.reason, facts.message
            if demoted and facts.eligible:
                phase, reason = INACTIVE, LIMIT_REACHED
                message = "the KeyPolicy's maxActiveClients was lowered; waiting for a free slot"
        ready = phase == ACTIVE or (phase == INACTIVE and reason == "Deactivated")
        conditions = (
            ConditionState(READY, ready, reason or phase, message),
            ConditionState(
                SECRET_MISSING, facts.secret_missing, "SecretDeleted" if facts.secret_missing else "SecretPresent"
            ),
        )
        requested = status.get("activationRequestedAt")
        if phase == ACTIVE or not facts.eligible:
            requested = None if phase != ACTIVE else requested
        elif requested is None:
            requested = precise_timestamp(now)
        desired = {
            "phase": phase,
            "reason": reason or None,
            "message": message or None,
            "observedGeneration": facts.generation,
            "activationRequestedAt": requested,
            "conditions": merge_conditions(
                status.get("conditions") or [], conditions, now=now, generation=facts.generation
            ),
        }
        if status.get("phase") != phase or status.get("observedGeneration") != facts.generation:
            desired["lastUpdated"] = timestamp(now)
        if status.get("phase") == ACTIVE and phase != ACTIVE:
            desired["tokensInvalidBefore"] = timestamp(invalidation_instant(now))  # reactivation revives no token
        for event in phase_events(status, desired):
            self._runtime.events.record(body, **event)
        if waiting and status.get("reason") != LIMIT_REACHED:
            self._runtime.events.record(body, type="Warning", reason=LIMIT_REACHED, message=message)
        found = status_transitions(body, desired, policy=status.get("policy"))
        try:
            await apply_status(self._runtime, PLURAL, body, desired, history=found)
        except StaleStatusError:
            self._dirty.add(meta["namespace"])  # another write came first: decide again from a fresh list
            return False
        self._runtime.notifier.review(PLURAL, written(body, desired))
        return True
