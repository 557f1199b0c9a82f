"""Everything one operator process shares: the API, the store, the scheduler, the slot actor, the keys.

Kopf hands it to every handler as ``memo``; the scheduler and the slot actor
get it at construction. Tests build one against the real API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import urllib3

from credop import names
from credop.clock import Clock, utc_now
from credop.config import Config
from credop.controller.events import EventRecorder
from credop.controller.metrics import OperatorMetrics
from credop.controller.notices import NoticeMetrics, Notifier, NotifySettings
from credop.controller.scheduler import Scheduler
from credop.controller.secrets import CredentialSecrets
from credop.controller.slots import SlotActor
from credop.controller.status import StatusWriter
from credop.controller.store import ObjectRef, Store
from credop.domain.keyformat import RandomBytes
from credop.domain.keyring import Keyring
from credop.kube.client import Kube, KubeApiError, NotFoundError

VANISHED_SWEEP_BACKSTOP = datetime.timedelta(hours=1)
logger = logging.getLogger(__name__)
Reconciler = Callable[["Runtime", ObjectRef], Awaitable[None]]


@dataclass
class Runtime:
    config: Config
    kube: Kube
    store: Store = field(default_factory=Store)
    clock: Clock = utc_now
    random_bytes: RandomBytes = os.urandom
    keyring: Keyring = field(default_factory=Keyring)
    service_ca: str | None = None
    """The CA of the service certificate credop keeps itself (``service_tls_secret``), once loaded."""
    keyring_missing: bool = False
    """The keyring Secret is gone while credentials exist: no minting or rotating until it is restored."""
    reconcilers: dict[str, Reconciler] = field(default_factory=dict)
    notify: NotifySettings = field(default_factory=NotifySettings.from_environment)
    """How notices are delivered (CREDOP_NOTIFY_*: the destination allow-list, rate limits, retries)."""

    def __post_init__(self) -> None:
        self.events = EventRecorder(self.kube)
        self.secrets = CredentialSecrets(self.kube, namespace=self.config.namespace, on_written=self.store.note_written)
        self.status = StatusWriter(self.kube, self.store, clock=self.now)
        self.scheduler: Scheduler[ObjectRef] = Scheduler(self._fire, clock=self.clock)
        self.slots = SlotActor(
            self.kube, status=self.status, events=self.events, notices=self._review_notices, clock=self.now
        )
        self.metrics = OperatorMetrics()
        self.metrics.watch(self)
        self.notifier = Notifier(
            kube=self.kube,
            store=self.store,
            clock=self.now,
            metrics=NoticeMetrics(self.metrics.notices, self.metrics.notices_queued),
            settings=self.notify,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._listed_since_sweep = True
        """A watch listed credentials since the last vanished-credential sweep (a listing hides deletions)."""
        self._last_sweep: datetime.datetime | None = None

    def now(self) -> datetime.datetime:
        return self.clock()

    def _review_notices(self, plural: str, body: dict[str, Any]) -> None:
        self.notifier.review(plural, body)

    def token_ca(self) -> str | None:
        """The credential service's CA for clients (``tokenCA``): the one credop keeps, else the mounted file."""
        return self.service_ca or self.config.service_ca()

    async def _fire(self, ref: ObjectRef, lateness: float | None) -> None:
        if lateness is not None:
            self.metrics.lateness.observe(lateness)
        await self.reconcile(ref)

    async def reconcile(self, ref: ObjectRef) -> None:
        reconciler = self.reconcilers.get(ref.plural)
        if reconciler is None:
            return
        kind = ref.plural
        version, epoch = self.store.version(ref), self.store.epoch(ref)  # before the reconcile reads anything
        with self.metrics.reconcile_seconds.labels(kind).time():
            try:
                await reconciler(self, ref)
            except Exception:
                self.metrics.reconciles.labels(kind, "error").inc()
                raise
        self.metrics.reconciles.labels(kind, "ok").inc()
        self.store.note_reconciled(ref, version, epoch)

    def reconcile_soon(self, ref: ObjectRef) -> None:
        """Ask the scheduler to look at ``ref`` now (e.g. its policy or Secret changed)."""
        self.scheduler.schedule(ref, self.now(), deadline=False)

    def start(self, *extra: Callable[[], Coroutine[Any, Any, None]]) -> None:
        for runner in (self.scheduler.run, self.events.run, self.notifier.run, self._resync, *extra):
            self._tasks.append(asyncio.create_task(runner()))

    async def _resync(self) -> None:
        """Every ``resync_interval``, schedule a look at every known credential whose inputs changed since its
        last completed reconcile, spread over half the interval.

        A credential whose body is the one its last reconcile read (or the status credop wrote then),
        with no policy, Secret, record or keyring event since, would be reconciled into exactly the same
        decision: deadlines are the scheduler's. Any event the store took in, even one whose handling
        was lost, makes it count as changed, so a swallowed event is still made good within an interval.
        At 100,000 idle credentials this is what keeps the resync from costing a core."""
        interval = self.config.resync_interval
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            await self._resync_step(self.sweep_vanished_credentials)
            self.resync_all(spread=datetime.timedelta(seconds=interval / 2), everything=False)
            await self._resync_step(self.forget_orphaned_records)

    async def _resync_step(self, step: Callable[[], Awaitable[int]]) -> None:
        """One step of the resync; a failure (the API server away) waits for the next resync, never ends it."""
        try:
            await step()
        except Exception:  # the safety net must outlive any one failure
            self.metrics.resync_failures.inc()
            logger.exception("resync: %s failed; the next resync tries again", step.__name__)

    def resync_all(self, *, spread: datetime.timedelta, everything: bool = True) -> int:
        """Schedule every credential in the store (or, with ``everything=False``, those whose inputs changed
        since their last completed reconcile) within ``spread`` from now; returns how many."""
        store = self.store
        refs = [
            ref
            for ref in store.refs()
            if ref.plural in self.reconcilers and (everything or not store.unchanged_since_reconcile(ref))
        ]
        now = self.now()
        step = spread / max(len(refs), 1)
        for index, ref in enumerate(refs):
            self.scheduler.schedule_by(ref, now + step * index)
        self.metrics.resyncs.inc()
        return len(refs)

    async def forget_credential(self, ref: ObjectRef, uid: str) -> None:
        """``ref`` was deleted: stop looking at it and delete its record (the sweep retries a failed delete)."""
        self.store.forget(ref)
        self.scheduler.cancel(ref)
        if ref.plural == names.API_CLIENTS:
            self.slots.forget(ref)
        try:
            await self.secrets.forget(uid)
        except Exception as error:
            logger.warning("deleting the record of %s failed (%s); the resync will retry", uid, type(error).__name__)
            return
        self.store.forget_record(uid)

    def note_listing(self) -> None:
        """A watch listed credentials (kopf's ``None`` events): it may have missed a deletion meanwhile."""
        self._listed_since_sweep = True

    async def sweep_vanished_credentials(self) -> int:
        """:meth:`forget_vanished_credentials`, when a listing since the last sweep may hide a deletion, or
        an hour has passed (a listing of nothing at all sends no event). A watch that only resumes sends
        every DELETED; listing 100,000 credentials' metadata each resync cost a few % of a core."""
        now = self.now()
        recent = self._last_sweep is not None and now - self._last_sweep < VANISHED_SWEEP_BACKSTOP
        if recent and not self._listed_since_sweep:
            return 0
        self._listed_since_sweep = False
        try:
            vanished = await self.forget_vanished_credentials()
        except BaseException:
            self._listed_since_sweep = True  # not swept: the next resync tries again
            raise
        self._last_sweep = now
        return vanished

    async def forget_vanished_credentials(self) -> int:
        """Forget credentials the store holds that the API no longer has; returns how many.

        A watch that resumes after the API server restarted lists again, and a
        listing says nothing of what was deleted meanwhile: without this, a
        credential whose DELETED event was lost would stay in the store, keep its
        record and be reconciled for ever. Each one missing from a metadata-only
        listing is read once more before it is forgotten (it may have just been created).
        """
        vanished = 0
        for plural in self.reconcilers:
            listed = await self.kube.list_object_uids(plural)
            for ref in [ref for ref in self.store.refs() if ref.plural == plural]:
                uid = self.store.uid_of(ref)
                if uid is None or uid in listed or not await self._is_gone(ref, uid):
                    continue
                logger.info("%s was deleted while no watch said so; forgetting it", ref)
                await self.forget_credential(ref, uid)
                vanished += 1
        return vanished

    async def _is_gone(self, ref: ObjectRef, uid: str) -> bool:
        """Whether ``ref`` no longer names the object ``uid`` (deleted, or re-created as another)."""
        try:
            body = await self.kube.get_object(ref.plural, ref.namespace, ref.name)
        except NotFoundError:
            return True
        return str(body["metadata"].get("uid")) != uid

    async def forget_orphaned_records(self) -> int:
        """Delete the records of credentials that are gone (their deletion was missed); returns how many.

        A record whose owner cannot be looked up now (the API server is away) is
        left for the next resync: one failure never ends the sweep, nor the resync loop.
        """
        live = self.store.uids()
        forgotten = 0
        for uid, info in list(self.store.records.items()):
            if uid in live:
                continue
            try:
                if not await self._owner_is_gone(uid, info.owner):
                    continue
                await self.secrets.forget(uid)
            except (KubeApiError, OSError, urllib3.exceptions.HTTPError) as error:
                self.metrics.resync_failures.inc()
                logger.warning("resync: the record of %s stays until the next resync: %s", info.owner, error)
                continue
            self.store.forget_record(uid)
            forgotten += 1
        return forgotten

    async def _owner_is_gone(self, uid: str, owner: str) -> bool:
        """Whether no credential of any kind named ``owner`` (``namespace/name``) has ``uid``."""
        namespace, _, name = owner.partition("/")
        for plural in self.reconcilers:
            if not await self._is_gone(ObjectRef(plural, namespace, name), uid):
                return False
        return True

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self.events.drain()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
