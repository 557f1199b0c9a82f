"""Running the credential service on an event loop, in one process or several (``--workers N``).

uvloop is used when it is installed (it takes about half of the event loop's
and the sockets' share of a request).

With ``workers > 1`` each worker is a process of its own (``spawn``): it lists
and watches the API itself, builds its own state and listens on the same port
with ``SO_REUSEPORT``, so the kernel spreads connections over the workers. They
share nothing but what the API server tells each of them, like replicas do.
So that a pod's failure and revocation budgets stay what one process allows,
each worker gets 1/N of every allowance: a guesser whose connections land on
every worker still gets no more than the configured burst and rate. Each
worker's ``/metrics`` listens on loopback only; the parent serves the metrics
port, with every sample labelled ``worker="<index>"`` (sum them without it).
If a worker exits, the parent stops the others and exits non-zero, so the
container restarts whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import signal
from collections.abc import Awaitable, Callable, Coroutine
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from aiohttp import ClientSession, ClientTimeout, web
from prometheus_client import CONTENT_TYPE_LATEST

from credop.config import Config
from credop.service._ratelimit import Allowance
from credop.service._state import ServiceSettings

T = TypeVar("T")
logger = logging.getLogger("credop.service.workers")
LOOPBACK = "127.0.0.1"
SCRAPE_TIMEOUT = ClientTimeout(total=5)


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def worker_settings(settings: ServiceSettings, workers: int) -> ServiceSettings:
    """One worker's share: every allowance divided by ``workers``, /metrics on a loopback port of its own."""

    def share(allowance: Allowance) -> Allowance:
        return Allowance(burst=allowance.burst / workers, per_second=allowance.per_second / workers)

    return dataclasses.replace(
        settings,
        revocations_per_client=share(settings.revocations_per_client),
        client_failures=share(settings.client_failures),
        address_failures=share(settings.address_failures),
        chosen_secret_ceiling=share(settings.chosen_secret_ceiling),
        metrics_port=0 if settings.metrics_port is not None else None,
    )


def run_workers(
    config: Config,
    *,
    host: str,
    port: int,
    workers: int,
    settings: ServiceSettings,
    log_level: str = "INFO",
    json_logs: bool = True,
) -> int:
    """Serve with ``workers`` processes until SIGTERM/SIGINT (0) or until one of them exits (1)."""
    if workers <= 1:
        from credop.service._service import run_service

        async def serve(stop: asyncio.Event) -> None:
            await run_service(config, host=host, port=port, settings=settings, stop_flag=stop)

        run_event_loop(_until_signalled(serve))
        return 0
    return run_event_loop(
        _supervise(config, host=host, port=port, workers=workers, settings=settings, log=(log_level, json_logs))
    )


async def _until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(stop)


async def _supervise(
    config: Config, *, host: str, port: int, workers: int, settings: ServiceSettings, log: tuple[str, bool]
) -> int:
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    share = worker_settings(settings, workers)
    processes: list[BaseProcess] = [
        context.Process(
            target=_worker_main,
            args=(config, host, port, share, index, ports, log),
            name=f"credop-service-worker-{index}",
            daemon=True,
        )
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    metrics_ports: dict[int, int] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = None
    if settings.metrics_port is not None:
        runner = web.AppRunner(_merged_metrics_app(metrics_ports), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, settings.metrics_port).start()
    logger.info("credential service: %d workers on port %d", workers, port)
    failed = False
    try:
        while not stop.is_set():
            while not ports.empty():
                index, bound = ports.get_nowait()
                metrics_ports[index] = bound
            ended = [process for process in processes if not process.is_alive()]
            if ended:
                logger.error("worker %s exited with %s; stopping the others", ended[0].name, ended[0].exitcode)
                failed = True
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()
        for process in processes:
            await asyncio.to_thread(process.join, 15.0)
            if process.is_alive():
                process.kill()
        if runner is not None:
            await runner.cleanup()
    return 1 if failed else 0


def _worker_main(
    config: Config,
    host: str,
    port: int,
    settings: ServiceSettings,
    index: int,
    ports: Any,
    log: tuple[str, bool],
) -> None:
    from credop.logs import configure_logging

    configure_logging(level=log[0], json_format=log[1])
    run_event_loop(_worker(config, host, port, settings, index, ports))


async def _worker(config: Config, host: str, port: int, settings: ServiceSettings, index: int, ports: Any) -> None:
    from credop.service._service import CredentialService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the parent decides; Ctrl-C reaches the whole group
    service = CredentialService(config, host=host, port=port, settings=settings, reuse_port=True, metrics_host=LOOPBACK)
    async with service:
        if service.metrics_port is not None:
            ports.put((index, service.metrics_port))
        await stop.wait()


def _merged_metrics_app(ports: dict[int, int]) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        texts = {}
        async with ClientSession(timeout=SCRAPE_TIMEOUT) as session:
            for index, bound in sorted(ports.items()):
                with contextlib.suppress(Exception):
                    async with session.get(f"http://{LOOPBACK}:{bound}/metrics") as answer:
                        texts[index] = await answer.text()
        return web.Response(body=merge_expositions(texts).encode(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


def merge_expositions(texts: dict[int, str]) -> str:
    """Prometheus text expositions of several workers as one, each sample labelled with its worker.

    A family is its ``# HELP`` and ``# TYPE`` lines (taken once) and every worker's samples of it."""
    families: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for index, text in sorted(texts.items()):
        family = ""
        for line in text.splitlines():
            if line.startswith("# HELP "):
                family = line.split(" ", 3)[2]
                if family not in families:
                    families[family] = [line]
                    samples[family] = []
            elif line.startswith("# TYPE "):
                if len(families.get(family, ())) == 1:
                    families[family].append(line)
            elif line and not line.startswith("#") and family:
                samples[family].append(_labelled(line, index))
    lines = []
    for family, head in families.items():
        lines += head + samples[family]
    return "\n".join(lines) + "\n"


def _labelled(sample: str, index: int) -> str:
    name_end = min((at for at in (sample.find("{"), sample.find(" ")) if at >= 0), default=len(sample))
    name, rest = sample[:name_end], sample[name_end:]
    if rest.startswith("{}"):
        return f'{name}{{worker="{index}"}}{rest[2:]}'
    if rest.startswith("{"):
        return f'{name}{{worker="{index}",{rest[1:]}'
    return f'{name}{{worker="{index}"}}{rest}'
