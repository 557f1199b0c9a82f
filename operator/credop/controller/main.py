"""Running the operator: the kopf loop with credop's runtime as its memo."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import socket
import threading
import uuid
from collections.abc import Coroutine
from typing import Any
from wsgiref.simple_server import WSGIServer

import kopf
import prometheus_client
from kopf._core.reactor.inventory import ResourceMemories, ResourceMemory  # the type of kopf.operator(memories=)

from credop.clock import Clock, utc_now
from credop.config import Config
from credop.controller import handlers
from credop.controller.leader import LeaderElector
from credop.controller.runtime import Runtime
from credop.domain.lease import LeaseTerms
from credop.kube.client import Kube, load_configuration

__all__ = ["handlers", "run_operator"]


@kopf.on.login()
def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo:
    """Log kopf in with the same identity as credop's own API calls."""
    configuration = handlers.runtime_of(memo).kube.configuration
    keys: dict[str, str] = configuration.api_key or {}
    authorization = keys.get("authorization") or keys.get("BearerToken") or ""
    scheme, _, token = authorization.partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme or None,
        token=token or None,
    )


class ForgetfulMemories(ResourceMemories):
    """kopf's per-object memory, made afresh for each event and never kept.

    kopf keeps a memory per object it has seen (about 1 KB: a memo copy, an error
    throttler, daemon and index state) for change handlers, daemons, timers and
    indexes. credop uses none of them: its event handlers read and write the
    store. At 100,000 credentials kopf would keep 300,000 memories (each
    credential, its Secret and its record), some 300 MB, for nothing.
    """

    async def recall(
        self,
        raw_body: Any,
        *,
        memobase: Any = None,
        noticed_by_listing: bool = False,
        ephemeral: bool = False,
    ) -> ResourceMemory:
        return await super().recall(raw_body, memobase=memobase, noticed_by_listing=noticed_by_listing, ephemeral=True)


def build_runtime(config: Config, *, clock: Clock = utc_now) -> Runtime:
    return Runtime(config=config, kube=Kube(load_configuration(config.kubeconfig)), clock=clock)


async def run_operator(
    config: Config,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    clock: Clock = utc_now,
    runtime: Runtime | None = None,
) -> None:
    """Run until ``stop_flag`` is set, or (with leader election) the lease is lost."""
    runtime = runtime or build_runtime(config, clock=clock)
    stop = asyncio.Event()
    helpers = [asyncio.create_task(_set_when_flagged(stop_flag, stop))] if stop_flag is not None else []
    elector = _elector(config, runtime) if config.leader_election else None
    metrics_server = _serve_metrics(config, runtime)
    try:
        if elector is not None:
            if not await _first_of(elector.acquire(), stop.wait()):
                return
            helpers.append(asyncio.create_task(_set_after(elector.hold(), stop)))
        await kopf.operator(
            clusterwide=True,
            standalone=True,
            memo=kopf.Memo(runtime=runtime),
            memories=ForgetfulMemories(),
            stop_flag=stop,
            ready_flag=ready_flag,
            liveness_endpoint=f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None,
        )
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        for helper in helpers:
            helper.cancel()
        if elector is not None:
            with contextlib.suppress(Exception):
                await elector.release()
        runtime.kube.close()


def _serve_metrics(config: Config, runtime: Runtime) -> WSGIServer | None:
    """Prometheus metrics on their own port, served by prometheus-client (also on standby replicas)."""
    if config.metrics_port is None:
        return None
    server, _thread = prometheus_client.start_http_server(config.metrics_port, registry=runtime.metrics.registry)
    return server


def _elector(config: Config, runtime: Runtime) -> LeaderElector:
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    terms = LeaseTerms(identity=identity, duration=datetime.timedelta(seconds=config.lease_seconds))
    return LeaderElector(runtime.kube, namespace=config.namespace, terms=terms, renew_every=config.lease_seconds / 3)


async def _first_of(wanted: Coroutine[Any, Any, None], other: Coroutine[Any, Any, Any]) -> bool:
    """Await both; True when ``wanted`` finished first (the other is cancelled)."""
    first, second = asyncio.create_task(wanted), asyncio.create_task(other)
    done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    for task in (first, second):
        task.cancel()
    return first in done and not first.cancelled() and first.exception() is None


async def _set_after(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    await work
    stop.set()


async def _set_when_flagged(flag: asyncio.Event | threading.Event, stop: asyncio.Event) -> None:
    if isinstance(flag, asyncio.Event):
        await flag.wait()
    else:
        while not flag.is_set():  # noqa: ASYNC110 - a threading.Event cannot be awaited
            await asyncio.sleep(0.1)
    stop.set()
