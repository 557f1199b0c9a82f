"""The admission webhook server: HTTPS on credop's certificate, on every operator replica, leader or not.

The certificate is mounted (Helm, cert-manager) or kept by credop in a Secret
(:mod:`credop.webhooks.tls`); either way the files are reloaded when they
change, so a renewed certificate is served without a restart. Serving from
every replica means an operator restart or a leader change never leaves the
API server without a webhook to call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from credop.clock import Clock
from credop.config import WebhookSettings
from credop.kube.client import Kube, load_configuration
from credop.tls import CertificateFiles, ServingCertificate
from credop.webhooks.app import build_admission_app
from credop.webhooks.review import Admission
from credop.webhooks.tls import certificate_files, files_directory

logger = logging.getLogger(__name__)


class AdmissionServer:
    def __init__(
        self, settings: WebhookSettings, *, kube: Kube, namespace: str, clock: Clock, recheck_every: float = 60.0
    ) -> None:
        self._settings = settings
        self._kube = kube
        self._namespace = namespace
        self._clock = clock
        self._recheck_every = recheck_every
        self._directory = files_directory(settings)
        self.admission = Admission(kube, clock=clock, namespace=namespace)
        self._runner: web.AppRunner | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.port = settings.port

    async def start(self) -> None:
        certificate = ServingCertificate(await self._files())
        self._runner = web.AppRunner(build_admission_app(self.admission), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.address, self._settings.port, ssl_context=certificate.context)
        await site.start()
        self._keeper = asyncio.create_task(self._keep(certificate))
        logger.info("serving admission webhooks on %s:%d", self._settings.address, self._settings.port)

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._runner is not None:
            await self._runner.cleanup()

    async def _files(self) -> CertificateFiles:
        files = await certificate_files(
            self._settings, kube=self._kube, namespace=self._namespace, now=self._clock(), directory=self._directory
        )
        return CertificateFiles(files.cert, files.key)

    async def _keep(self, certificate: ServingCertificate) -> None:
        """Renew a certificate credop keeps (when due) and serve whatever the files hold now."""
        while True:
            await asyncio.sleep(self._recheck_every)
            try:
                await self._files()
            except Exception as error:
                logger.warning("could not check the webhook certificate (%s); retrying later", type(error).__name__)
            certificate.reload_if_changed()


@contextlib.asynccontextmanager
async def admission_webhooks(
    settings: WebhookSettings | None, *, kubeconfig: Path | None, namespace: str, clock: Clock
) -> AsyncIterator[AdmissionServer | None]:
    """Serve the webhooks (when ``settings`` say so) for as long as the block runs, with a client of their own."""
    if settings is None:
        yield None
        return
    kube = Kube(load_configuration(kubeconfig))
    server = AdmissionServer(settings, kube=kube, namespace=namespace, clock=clock)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        kube.close()
