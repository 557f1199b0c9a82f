"""Kubernetes Events for the activity log, posted in the background by a few posters.

Reconciles only queue an Event; :meth:`EventRecorder.run` posts them with
:data:`POSTERS` concurrent requests, so a burst (a thousand keys minted at
once) is posted within about as long as the mints themselves take.

Messages are fixed sentences with names and times in them, never secret values.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
from typing import Any, Literal

from credop import API_VERSION
from credop.domain.conditions import precise_timestamp, timestamp
from credop.kube.client import Kube

logger = logging.getLogger(__name__)
EventType = Literal["Normal", "Warning"]
COMPONENT = "credop"
POSTERS = 4


class EventRecorder:
    def __init__(self, kube: Kube, *, queue_size: int = 10_000) -> None:
        self._kube = kube
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self._instance = os.environ.get("POD_NAME") or socket.gethostname()

    def record(self, involved: dict[str, Any], *, type: EventType, reason: str, message: str) -> None:
        """Queue an Event about ``involved`` (a credential body); dropped with a log line if the queue is full."""
        metadata = involved["metadata"]
        now = datetime.datetime.now(datetime.UTC)
        body = {
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", API_VERSION),
                "kind": involved.get("kind"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": f"{COMPONENT}.dev/operator",
            "reportingInstance": self._instance,
            "action": reason,
            "firstTimestamp": timestamp(now),
            "lastTimestamp": timestamp(now),
            "eventTime": precise_timestamp(now),
            "count": 1,
        }
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            logger.warning("event queue full; dropped %s event for %s", reason, metadata["name"])

    async def run(self) -> None:
        """Post queued Events until cancelled, :data:`POSTERS` at a time."""
        await asyncio.gather(*(self._post() for _ in range(POSTERS)))

    async def _post(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                await self._kube.create_event(body["metadata"]["namespace"], body)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # an Event is best effort: never block reconciling on it
                logger.warning("could not post %s event: %s", body["reason"], error)
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued event is posted (callers bound it with ``asyncio.timeout``)."""
        await self._queue.join()
