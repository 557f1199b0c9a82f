"""kopf's webhook server, on credop's certificate files (never kopf's self-signed helper)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import kopf

from credop.controller.scheduler import Clock
from credop.kube.client import Kube
from credop.webhooks.settings import WebhookSettings
from credop.webhooks.tls import CertificateFiles, certificate_files, files_directory, uses_mounted_files

logger = logging.getLogger(__name__)


class CredopWebhookServer:
    """Prepares the certificate (see :mod:`credop.webhooks.tls`), then serves HTTPS with :class:`kopf.WebhookServer`.

    kopf reloads the files when their content changes: a renewed mounted Secret,
    or a certificate credop keeps and renews itself (checked every ``recheck_every``).
    """

    def __init__(
        self, settings: WebhookSettings, *, kube: Kube, namespace: str, clock: Clock, recheck_every: float = 600.0
    ) -> None:
        self._settings = settings
        self._kube = kube
        self._namespace = namespace
        self._clock = clock
        self._recheck_every = recheck_every
        self._directory = files_directory(settings)

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        settings = self._settings
        files = await self._certificate_files()
        server = kopf.WebhookServer(
            addr=settings.address,
            port=settings.port,
            certfile=files.cert,
            pkeyfile=files.key,
            cafile=files.ca,
        )
        keeper = None if uses_mounted_files(settings) else asyncio.create_task(self._keep_certificate())
        logger.info("serving admission webhooks on %s:%d", settings.address, settings.port)
        try:
            async with server:
                async for client_config in server(fn):
                    yield client_config
        finally:
            if keeper is not None:
                keeper.cancel()

    async def _certificate_files(self) -> CertificateFiles:
        return await certificate_files(
            self._settings, kube=self._kube, namespace=self._namespace, now=self._clock(), directory=self._directory
        )

    async def _keep_certificate(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_every)
            try:
                await self._certificate_files()
            except Exception as error:
                logger.warning("could not check the webhook certificate (%s); retrying later", type(error).__name__)


class NoWebhookServer:
    """Stands in when no webhook server is configured: kopf refuses to start with webhook handlers and no server.

    The handlers are registered when :mod:`credop.webhooks.handlers` is imported,
    for every operator in the process; this one serves none of them.
    """

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield {}  # never reached: the generator waits until the operator stops
