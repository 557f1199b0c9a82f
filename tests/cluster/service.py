"""A credential service replica in its own thread and event loop, as a pod would run it, for cluster tests."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from credop.config import Config
from credop.service import CredentialService
from credop.service._state import ServiceSettings
from tests.cluster.operator import OPERATOR_NAMESPACE, TEST_ENDPOINT

FLUSH_INTERVAL = 2.0


class Replica:
    """One credential service replica in its own thread and event loop."""

    def __init__(
        self,
        kubeconfig: Path,
        name: str,
        *,
        namespace: str = OPERATOR_NAMESPACE,
        settings: ServiceSettings | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.config = Config(
            namespace=namespace,
            endpoint=TEST_ENDPOINT,
            kubeconfig=kubeconfig,
            usage_flush_interval=FLUSH_INTERVAL,
        )
        self.settings = settings
        self.host = host
        self.service: CredentialService | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"credop-service-{name}", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # surfaced by start()
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with CredentialService(self.config, host=self.host, port=0, settings=self.settings) as service:
            self.service = service
            await service.wait_ready()
            self._ready.set()
            await self._stop.wait()

    def start(self) -> Replica:
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError("the credential service did not become ready") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    @property
    def url(self) -> str:
        assert self.service is not None
        return f"http://127.0.0.1:{self.service.port}"

    @property
    def usage_writes(self) -> list[tuple[str, Any]]:
        assert self.service is not None
        return list(self.service.state.usage_writes)
