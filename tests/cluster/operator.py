"""Running credop's operator in-process against the test bed, in its own thread and event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from credop.cli.serve import operator_with_webhooks
from credop.config import Config
from credop.controller.main import build_runtime
from credop.controller.runtime import Runtime

OPERATOR_NAMESPACE = "credop-system"
TEST_ENDPOINT = "https://credop.example.test"


class LogCapture(logging.Handler):
    """Every log line the operator writes, formatted, for the no-secrets-in-logs checks."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class OperatorThread:
    def __init__(self, kubeconfig: Path, *, config: Config | None = None) -> None:
        self.config = config or Config(
            namespace=OPERATOR_NAMESPACE, endpoint=TEST_ENDPOINT, kubeconfig=kubeconfig, leader_election=False
        )
        self.runtime: Runtime | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="credop-operator", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # surfaced by start()/stop()
            self.error = error
            self._ready.set()

    async def _main(self) -> None:
        self.runtime = build_runtime(self.config)
        await operator_with_webhooks(self.config, stop_flag=self._stop, ready_flag=self._ready, runtime=self.runtime)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self, timeout: float = 60, *, wait: bool = True) -> OperatorThread:
        self._thread.start()
        if wait and not self._ready.wait(timeout):
            raise TimeoutError("the operator did not become ready")
        if self.error:
            raise RuntimeError("the operator failed to start") from self.error
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the operator did not stop")


class SessionOperator:
    """The session's operator, which a test may pause (e.g. to run a crashing one alone)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.thread = OperatorThread(kubeconfig).start()

    @property
    def runtime(self) -> Runtime | None:
        return self.thread.runtime

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.thread.stop()
        try:
            yield
        finally:
            self.thread = OperatorThread(self.kubeconfig).start()

    def stop(self) -> None:
        self.thread.stop()
