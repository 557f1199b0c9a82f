"""Running one credential service replica: watches, the HTTP server and the periodic chores."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

from credop.clock import utc_now
from credop.config import Config
from credop.kube.client import Kube, load_configuration
from credop.service._http import build_app, build_metrics_app
from credop.service._kube import ConfigMapRevocations, StatusUsageWriter
from credop.service._state import Clock, ServiceSettings, ServiceState
from credop.service._watches import WatchLoop, all_feeds
from credop.tls import CertificateFiles, ServingCertificate

logger = logging.getLogger("credop.service")
Flag = asyncio.Event | threading.Event
HOUSEKEEPING_SECONDS = 60.0
CERTIFICATE_CHECK_SECONDS = 10.0


class CredentialService:
    """One replica against a cluster: ``async with CredentialService(config) as service: ...``."""

    def __init__(
        self,
        config: Config,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - a service in a pod listens on every interface
        port: int = 8080,
        settings: ServiceSettings | None = None,
        clock: Clock = utc_now,
        kube: Kube | None = None,
        reuse_port: bool = False,
        metrics_host: str | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        """Listen with SO_REUSEPORT (``--workers``: several processes on one port)."""
        self.metrics_host = metrics_host or host
        self.metrics_port: int | None = None
        self.kube = kube or Kube(load_configuration(config.kubeconfig))
        settings = settings or ServiceSettings()
        self.state = ServiceState(
            config,
            settings=settings,
            clock=clock,
            publisher=ConfigMapRevocations(self.kube, namespace=config.namespace),
            usage_writer=StatusUsageWriter(self.kube),
        )
        self._watches: list[WatchLoop] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None
        self.certificate: ServingCertificate | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._watches = [
            WatchLoop(feed, loop=loop, state=self.state) for feed in all_feeds(self.kube, self.state, self.config)
        ]
        for watch in self._watches:
            watch.start()
        settings = self.state.settings
        self.certificate = (
            ServingCertificate(CertificateFiles.in_directory(settings.tls_directory))
            if settings.tls_directory
            else None
        )
        separate_metrics = settings.metrics_port is not None
        self._runner = web.AppRunner(build_app(self.state, metrics=not separate_metrics), access_log=None)
        await self._runner.setup()
        context = self.certificate.context if self.certificate is not None else None
        if self.reuse_port:
            # One of several workers on a port: the kernel hands connections to any worker that listens
            # (the pod's readiness probe cannot tell them apart), so listen only once the watches listed.
            await self.wait_ready()
        reuse = self.reuse_port or None
        await web.TCPSite(self._runner, self.host, self.port, ssl_context=context, reuse_port=reuse).start()
        self.port = _bound_port(self._runner, self.port)
        if separate_metrics:
            self._metrics_runner = web.AppRunner(build_metrics_app(self.state), access_log=None)
            await self._metrics_runner.setup()
            await web.TCPSite(self._metrics_runner, self.metrics_host, settings.metrics_port).start()
            self.metrics_port = _bound_port(self._metrics_runner, settings.metrics_port or 0)
        flush_every = min(1.0, self.config.usage_flush_interval / 4)
        self._tasks = [
            asyncio.create_task(_every(flush_every, self._flush_usage)),
            asyncio.create_task(_every(HOUSEKEEPING_SECONDS, self._housekeeping)),
        ]
        if self.certificate is not None:
            self._tasks.append(asyncio.create_task(_every(CERTIFICATE_CHECK_SECONDS, self._reload_certificate)))
        scheme = "https" if context is not None else "http"
        logger.info("credential service listening on %s://%s:%s", scheme, self.host, self.port)

    async def wait_ready(self) -> None:
        while not self.state.ready:  # noqa: ASYNC110 - readiness is derived state, polled cheaply
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._flush_usage()
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()
        for watch in self._watches:
            watch.stop()
        for watch in self._watches:
            await asyncio.to_thread(watch.join, 5.0)
        self.state.close()
        self.kube.close()

    async def __aenter__(self) -> CredentialService:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    async def _reload_certificate(self) -> None:
        if self.certificate is not None:
            self.certificate.reload_if_changed()

    async def _flush_usage(self) -> None:
        await self.state.flush_usage()

    async def _housekeeping(self) -> None:
        now = self.state.now()
        instant = now.timestamp()
        self.state.revoked.forget_expired(now=instant)
        self.state.authenticator.by_client.forget_refilled(now=instant)
        self.state.authenticator.by_address.forget_refilled(now=instant)
        self.state.authenticator.ceiling.forget_refilled(now=instant)
        self.state.revocations.forget_refilled(now=instant)
        for namespace, expired in self.state.revoked.expired(now=instant).items():
            await self.state.publisher.prune(namespace, expired)


def _bound_port(runner: web.AppRunner, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


async def _every(seconds: float, chore: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await chore()
        except Exception:
            logger.exception("a periodic chore of the credential service failed")


async def _wait_for(flag: Flag | None) -> None:
    if flag is None:
        await asyncio.Event().wait()
    elif isinstance(flag, asyncio.Event):
        await flag.wait()
    else:
        while not flag.is_set():  # noqa: ASYNC110 - a threading.Event set from another thread
            await asyncio.sleep(0.1)


async def run_service(
    config: Config,
    *,
    host: str = "0.0.0.0",  # noqa: S104 - a service in a pod listens on every interface
    port: int = 8080,
    stop_flag: Flag | None = None,
    ready_flag: Flag | None = None,
    settings: ServiceSettings | None = None,
) -> None:
    """Serve until ``stop_flag`` is set (or forever); set ``ready_flag`` once every watch has listed."""
    settings = settings or ServiceSettings.from_environment()
    async with CredentialService(config, host=host, port=port, settings=settings) as service:
        await service.wait_ready()
        if ready_flag is not None:
            ready_flag.set()
        await _wait_for(stop_flag)
