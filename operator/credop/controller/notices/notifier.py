"""The notifier: reconcilers hand it each status they wrote; it sends what is owed, in the background.

``review`` is synchronous and cheap (a pure decision, a heap push): it never
waits for a receiver. The ``run`` task takes due jobs off the heap, at most
``workers`` at a time, and for each: reads the credential fresh from the API,
checks the notice is still owed (the status records every delivery, so a
restarted or newly elected operator finds the same answer), waits for the
receiver's rate limit, sends, and records the delivery on the credential's
status with a JSON patch that tests the record it read. A failure is retried
with jittered exponential backoff; after ``max_attempts`` it is recorded as
failed, so it is not retried for ever. The same delivery ID goes with every
retry, so a receiver can drop the duplicate a crash after sending but before
recording may cause.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import heapq
import itertools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from credop import audit, names
from credop.api.keypolicy import KeyPolicySpec
from credop.api.notifications import Notifications, Receiver
from credop.controller.notices import transports
from credop.controller.notices.settings import NotifySettings
from credop.controller.notices.transports import DeliveryError, HttpPost, Mail, SmtpServer
from credop.controller.store import ObjectRef
from credop.domain import notices
from credop.domain.destinations import DestinationRefused
from credop.domain.notices import Due, Message, NoticeFacts
from credop.domain.policy import resolve_policy
from credop.kube.client import KubeApiError, NotFoundError

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge

    from credop.controller.store import Store
    from credop.kube.client import Kube

logger = logging.getLogger(__name__)
Body = dict[str, Any]
SECRET_OPT_IN_LABEL = "credop.dev/notifications"
LEDGER_WRITE_TRIES = 5
REMEMBERED_DONE = 20_000


@dataclass(frozen=True)
class Job:
    ref: ObjectRef
    uid: str
    item: Due
    attempt: int = 0

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.uid, self.item.notice, self.item.generation, self.item.receiver)


@dataclass(frozen=True)
class NoticeMetrics:
    """``credop_notices_total{receiver_kind,notice,result}`` and ``credop_notices_pending``."""

    deliveries: Counter
    pending: Gauge


class Notifier:
    def __init__(
        self,
        *,
        kube: Kube,
        store: Store,
        clock: Callable[[], datetime.datetime],
        metrics: NoticeMetrics,
        settings: NotifySettings | None = None,
    ) -> None:
        self._kube, self._store, self._clock, self._metrics = kube, store, clock, metrics
        self.settings = settings or NotifySettings.from_environment()
        self._heap: list[tuple[float, int, Job]] = []
        self._pending: set[tuple[str, str, int, str]] = set()
        self._done: OrderedDict[tuple[str, str, int, str], None] = OrderedDict()
        self._sequence = itertools.count()
        self._wake = asyncio.Event()
        self._buckets: dict[tuple[str, str, str], notices.TokenBucket] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.random = random.random

    def __len__(self) -> int:
        return len(self._pending)

    # Reconcilers ---------------------------------------------------------------------------
    def review(self, plural: str, body: Body) -> int:
        """Queue every notice ``body``'s status owes; returns how many were new. Never waits."""
        if not self.settings.enabled:
            return 0
        context = self._context(plural, body)
        if context is None:
            return 0
        facts, notifications, _policy = context
        added = 0
        for item in notices.due(facts, notifications, (body.get("status") or {}).get("notices") or []):
            added += self._submit(Job(ObjectRef.of(plural, body), facts.uid, item), delay=0.0)
        return added

    def _context(self, plural: str, body: Body) -> tuple[NoticeFacts, Notifications, str] | None:
        meta = body["metadata"]
        resolved = resolve_policy(
            (body.get("spec") or {}).get("policyName"), self._store.policies.get(meta["namespace"], {})
        )
        if resolved.spec is None or resolved.spec.notifications is None:
            return None
        facts = NoticeFacts(
            kind=names.KIND_OF_PLURAL.get(plural, plural),
            namespace=meta["namespace"],
            name=meta["name"],
            uid=str(meta.get("uid") or ""),
            status=body.get("status") or {},
            annotations=meta.get("annotations") or {},
        )
        return facts, resolved.spec.notifications, resolved.name

    def _submit(self, job: Job, *, delay: float) -> int:
        if job.key in self._done or (job.attempt == 0 and job.key in self._pending):
            return 0
        self._pending.add(job.key)
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._sequence), job))
        self._wake.set()
        self._metrics.pending.set(len(self._pending))
        return 1

    # The delivery task ----------------------------------------------------------------------
    async def run(self) -> None:
        slots = asyncio.Semaphore(self.settings.workers)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                job = await self._next_due()
                await slots.acquire()
                task = asyncio.create_task(self._guarded(job, slots))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _next_due(self) -> Job:
        while True:
            self._wake.clear()
            if self._heap and self._heap[0][0] <= time.monotonic():
                return heapq.heappop(self._heap)[2]
            wait = self._heap[0][0] - time.monotonic() if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _guarded(self, job: Job, slots: asyncio.Semaphore) -> None:
        try:
            await self._deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("delivering %s for %s failed unexpectedly; retrying", job.item.notice, job.ref)
            self._retry(job, "unexpected error")
        finally:
            slots.release()

    def _finish(self, job: Job) -> None:
        self._pending.discard(job.key)
        self._done[job.key] = None
        while len(self._done) > REMEMBERED_DONE:
            self._done.popitem(last=False)
        self._metrics.pending.set(len(self._pending))

    def _drop(self, job: Job) -> None:
        self._pending.discard(job.key)
        self._metrics.pending.set(len(self._pending))

    async def _deliver(self, job: Job) -> None:
        body = await self._fresh(job)
        context = self._context(job.ref.plural, body) if body is not None else None
        if body is None or context is None:
            self._drop(job)
            return
        facts, notifications, policy = context
        ledger = (body.get("status") or {}).get("notices") or []
        receiver = notifications.receiver(job.item.receiver)
        if receiver is None or notices.recorded(ledger, *_ledger_key(job)) or not notices.still_due(facts, job.item):
            self._drop(job)
            return
        wait = self._bucket(job, policy).take(now=time.monotonic())
        if wait > 0:
            self._requeue(job, wait)
            return
        message = notices.compose(
            facts,
            job.item,
            recipients=notices.recipients(receiver, notifications, facts),
            policy=policy,
            owner=self._owner(job.ref.namespace, policy),
            now=self._clock(),
        )
        try:
            await self._send(receiver, message, namespace=job.ref.namespace)
        except (DeliveryError, DestinationRefused) as error:
            self._count(receiver, job, "error")
            self._retry(job, str(error))
            return
        await self._record(job, delivered=True)
        self._count(receiver, job, "delivered")
        audit.record(
            "NoticeDelivered",
            kind=facts.kind,
            namespace=facts.namespace,
            name=facts.name,
            uid=facts.uid,
            notice=job.item.notice,
            generation=job.item.generation,
            receiver=receiver.name,
            receiver_kind=receiver.kind,
            delivery=message.id,
            recipients=list(message.document["recipients"]) or None,
        )

    async def _fresh(self, job: Job) -> Body | None:
        try:
            body = await self._kube.get_object(job.ref.plural, job.ref.namespace, job.ref.name)
        except NotFoundError:
            return None
        if body["metadata"].get("uid") != job.uid or body["metadata"].get("deletionTimestamp"):
            return None
        return body

    def _bucket(self, job: Job, policy: str) -> notices.TokenBucket:
        key = (job.ref.namespace, policy, job.item.receiver)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = notices.TokenBucket(self.settings.burst, self.settings.per_minute)
        return bucket

    def _owner(self, namespace: str, policy: str) -> str | None:
        spec: KeyPolicySpec | None = self._store.policies.get(namespace, {}).get(policy)
        return spec.owner if spec else None

    def _requeue(self, job: Job, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._sequence), job))
        self._wake.set()

    def _retry(self, job: Job, error: str) -> None:
        attempt = job.attempt + 1
        if attempt >= self.settings.max_attempts:
            logger.warning("giving up on %s for %s after %d attempts: %s", job.item.notice, job.ref, attempt, error)
            task = asyncio.create_task(self._give_up(job, error))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        delay = notices.backoff(attempt, random=self.random, base=self.settings.retry_base, cap=self.settings.retry_cap)
        logger.info("%s for %s not delivered (%s); retry %d in %.0fs", job.item.notice, job.ref, error, attempt, delay)
        self._requeue(replace(job, attempt=attempt), delay)

    async def _give_up(self, job: Job, error: str) -> None:
        try:
            await self._record(job, delivered=False, error=error)
        finally:
            self._drop(job)

    def _count(self, receiver: Receiver, job: Job, result: str) -> None:
        self._metrics.deliveries.labels(receiver.kind, job.item.notice, result).inc()

    # Sending ------------------------------------------------------------------------------
    async def _send(self, receiver: Receiver, message: Message, *, namespace: str) -> None:
        rules, limit = self.settings.rules, self.settings.timeout
        headers = {notices.DELIVERY_HEADER: message.id, notices.NOTICE_HEADER: message.notice}
        if receiver.webhook is not None:
            body = transports.json_body(message.document)
            reference = receiver.webhook.signing_secret_ref
            if reference is not None:
                key = await self._secret_value(namespace, reference.name, reference.key)
                headers[notices.SIGNATURE_HEADER] = notices.signature(body, key.encode(), at=int(time.time()))
            await transports.post_json(HttpPost(receiver.webhook.url, body, headers), rules, time_limit=limit)
        elif receiver.slack is not None:
            reference = receiver.slack.url_secret_ref
            url = (await self._secret_value(namespace, reference.name, reference.key)).strip()
            body = transports.json_body(notices.slack_document(message))
            await transports.post_json(HttpPost(url, body, headers), rules, time_limit=limit)
        elif receiver.email is not None:
            server = SmtpServer.of(await self._secret_data(namespace, receiver.email.smtp_secret_ref.name))
            mail = Mail(
                sender=receiver.email.sender,
                recipients=tuple(message.document["recipients"]),
                subject=f"{receiver.email.subject_prefix} {message.subject}".strip(),
                text=message.text,
                message_id=f"<{message.id}.{receiver.name}@credop.dev>",
                headers=headers,
            )
            await transports.send_mail(server, mail, rules, time_limit=limit)

    async def _secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret the policy names: in its namespace, opted in by label, never one credop manages."""
        try:
            secret = await self._kube.read_secret(namespace, name)
        except NotFoundError:
            raise DeliveryError(f'Secret "{name}" does not exist') from None
        labels = secret["metadata"].get("labels") or {}
        if labels.get(SECRET_OPT_IN_LABEL) != "true" or labels.get(names.MANAGED_BY) == names.MANAGED_BY_VALUE:
            raise DeliveryError(f'Secret "{name}" is not labelled {SECRET_OPT_IN_LABEL}: "true"')
        return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}

    async def _secret_value(self, namespace: str, name: str, key: str) -> str:
        value = (await self._secret_data(namespace, name)).get(key)
        if not value:
            raise DeliveryError(f'Secret "{name}" has no key "{key}"')
        return value

    # Recording ----------------------------------------------------------------------------
    async def _record(self, job: Job, *, delivered: bool, error: str | None = None) -> None:
        """Add the delivery to status.notices: a JSON patch that tests the list it read, written again on a race.

        Only the write is retried here (never the send): a notice delivered and
        not recorded would be sent again by the next operator to look.
        """
        lock = self._locks.setdefault(job.uid, asyncio.Lock())
        async with lock:
            for attempt in range(1, LEDGER_WRITE_TRIES + 1):
                try:
                    body = await self._fresh(job)
                    if body is None or await self._write_ledger(job, body, delivered=delivered, error=error):
                        break
                except (KubeApiError, OSError) as failure:
                    logger.warning("recording %s for %s failed (%s); again", job.item.notice, job.ref, failure)
                    await asyncio.sleep(min(2.0**attempt, 30.0))
        self._finish(job)

    async def _write_ledger(self, job: Job, body: Body, *, delivered: bool, error: str | None) -> bool:
        status = body.get("status") or {}
        ledger = status.get("notices")
        updated = notices.ledger_with(ledger or [], job.item, delivered=delivered, now=self._clock(), error=error)
        patch: list[Body] = [{"op": "test", "path": "/metadata/uid", "value": job.uid}]
        if ledger is not None:
            patch.append({"op": "test", "path": "/status/notices", "value": ledger})
        if "status" not in body:
            patch.append({"op": "add", "path": "/status", "value": {}})
        patch.append({"op": "add", "path": "/status/notices", "value": updated})
        try:
            await self._kube.json_patch_status(job.ref.plural, job.ref.namespace, job.ref.name, patch)
        except NotFoundError:
            return True
        except KubeApiError as failure:
            if failure.status == 422:
                return False  # the list changed since it was read: read again
            raise
        return True


def _ledger_key(job: Job) -> tuple[str, int, str]:
    return job.item.notice, job.item.generation, job.item.receiver
