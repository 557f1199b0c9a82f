"""A small HTTP/1.1 load generator: keep-alive connections, prebuilt requests, latency percentiles.

Run it in its own process (and on its own core) so the server under test has
the other one. Two modes:

- closed loop (``--connections N``): each connection sends its next request as
  soon as the previous answer arrives; measures the most the server can do.
- open loop (``--rate R``): requests start on a fixed schedule whatever the
  answers do, and latency is measured from the scheduled start, so a slow
  answer is not hidden by the requests it delayed (no coordinated omission).

It speaks only what it needs: one request template, answers with
Content-Length. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field


def build_request(
    *, method: str, path: str, host: str, body: bytes = b"", content_type: str | None = None, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``send`` returns when the whole answer has arrived."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.needed = -1
        self.status = 0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.needed < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            self.status = int(head[9:12])
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.needed = end + 4 + length
        if len(self.buffer) >= self.needed:
            del self.buffer[: self.needed]
            self.needed = -1
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(self.status)

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


async def _open(host: str, port: int, count: int) -> list[Connection]:
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(count):
        _, protocol = await loop.create_connection(Connection, host, port)
        connections.append(protocol)
    return connections


def _count(results: Results, status: int) -> None:
    results.statuses[status] = results.statuses.get(status, 0) + 1


async def closed_loop(
    host: str, port: int, request: bytes, *, connections: int, seconds: float
) -> tuple[Results, float]:
    pool = await _open(host, port, connections)
    results = Results()
    started = time.perf_counter()
    deadline = started + seconds

    async def drive(connection: Connection) -> None:
        clock = time.perf_counter
        while (now := clock()) < deadline:
            status = await connection.send(request)
            results.latencies.append(clock() - now)
            _count(results, status)

    await asyncio.gather(*(drive(connection) for connection in pool))
    elapsed = time.perf_counter() - started
    for connection in pool:
        assert connection.transport is not None
        connection.transport.close()
    return results, elapsed


async def open_loop(
    host: str, port: int, request: bytes, *, rate: float, seconds: float, max_connections: int = 256
) -> tuple[Results, float]:
    """Requests start on schedule; each takes an idle connection, or opens one while fewer than
    ``max_connections`` exist, or waits for one (the wait counts in its latency). A connection the
    server closes is counted under status 0 and replaced."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in await _open(host, port, 64):
        idle.put_nowait(connection)
    opened = 64
    results = Results()
    total = int(rate * seconds)
    interval = 1.0 / rate
    started = time.perf_counter()
    tasks = []

    async def one(scheduled: float) -> None:
        nonlocal opened
        if idle.empty() and opened < max_connections:
            opened += 1
            connection = (await _open(host, port, 1))[0]
        else:
            connection = await idle.get()
        try:
            status = await connection.send(request)
        except ConnectionError:
            status = 0
            connection = (await _open(host, port, 1))[0]
        results.latencies.append(time.perf_counter() - scheduled)
        _count(results, status)
        idle.put_nowait(connection)

    for index in range(total):
        scheduled = started + index * interval
        delay = scheduled - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not idle.empty():
        transport = idle.get_nowait().transport
        if transport is not None:
            transport.close()
    return results, elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def summary(results: Results, elapsed: float) -> dict[str, object]:
    count = len(results.latencies)
    return {
        "requests": count,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(results.latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(results.latencies, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(results.latencies) * 1000, 3) if count else None,
        "statuses": {str(status): seen for status, seen in sorted(results.statuses.items())},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", default="/")
    parser.add_argument("--body", default="", help="request body (text)")
    parser.add_argument("--content-type", default=None)
    parser.add_argument("--basic", default=None, help="user:password for an Authorization: Basic header")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=None, help="open loop at this many requests per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    headers = {}
    if args.basic:
        headers["Authorization"] = "Basic " + base64.b64encode(args.basic.encode()).decode()
    request = build_request(
        method=args.method,
        path=args.path,
        host=f"{args.host}:{args.port}",
        body=args.body.encode(),
        content_type=args.content_type,
        headers=headers,
    )
    if args.rate:
        run = open_loop(args.host, args.port, request, rate=args.rate, seconds=args.seconds)
    else:
        run = closed_loop(args.host, args.port, request, connections=args.connections, seconds=args.seconds)
    results, elapsed = asyncio.run(run)
    json.dump(summary(results, elapsed), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
