"""Benchmark of the credential service's hot paths against an aiohttp hello-world ceiling.

    .venv/bin/python benchmarks/token_endpoint.py [--seconds 5] [--connections 32]

Starts the service in a child process (in-memory state: an ApiClient with a
user-chosen, argon2id-hashed secret, already verified once so it is cached;
a ServiceAccountKey), with a ``/hello`` route added to the same application,
and pinned to CPU 0. The load generator (``benchmarks/loadgen.py``) runs in
another process on CPU 1. Each endpoint is measured with the hello-world
endpoint in the same run, and printed beside it as a ratio: the ceiling is
what aiohttp itself does on this machine. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER_CPU, LOAD_CPU = 0, 1
FORM = "application/x-www-form-urlencoded"
BENCH_PASSWORD = "Bench-secret-1!"


# The server (child process) ---------------------------------------------------------------
async def _serve(port: int) -> None:
    from aiohttp import web

    from credop.controller.scheduler import utc_now
    from credop.service import build_app
    from credop.service.testing import add_client, add_key, in_memory_state

    state = in_memory_state(clock=utc_now)
    client = add_client(state, "bench", password=BENCH_PASSWORD, permission="CanEdit")
    key = add_key(state, "bench-key")
    app = build_app(state)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, world")

    async def cpu_seconds(request: web.Request) -> web.Response:
        return web.Response(text=repr(time.process_time()))

    app.router.add_get("/hello", hello)
    app.router.add_get("/_cpu", cpu_seconds)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(json.dumps({"client_id": client.identifier, "access_key_id": key.identifier, "secret_key": key.secret}))
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# The driver --------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [sys.executable, str(Path(__file__)), "--serve", "--port", str(port)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(server.pid, {SERVER_CPU})
    assert server.stdout is not None
    return server, json.loads(server.stdout.readline())


def _post_form(port: int, path: str, fields: dict[str, str], *, basic: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=urllib.parse.urlencode(fields).encode(), method="POST"
    )
    request.add_header("Content-Type", FORM)
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def _server_cpu(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_cpu", timeout=10) as answer:
        return float(answer.read())


def _load(port: int, *, seconds: float, connections: int, rate: float | None = None, **request: str) -> dict[str, Any]:
    """One load generator run; adds the server's CPU time per answered request."""
    command = [sys.executable, str(HERE / "loadgen.py"), "--port", str(port), "--seconds", str(seconds)]
    command += ["--cpu", str(LOAD_CPU)] if hasattr(os, "sched_setaffinity") else []
    command += ["--rate", str(rate)] if rate else ["--connections", str(connections)]
    for name, value in request.items():
        command += [f"--{name.replace('_', '-')}", value]
    before = _server_cpu(port)
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    used = _server_cpu(port) - before
    measured: dict[str, Any] = json.loads(finished.stdout)
    measured["server_cpu_us"] = used / max(1, measured["requests"]) * 1e6
    return measured


def _row(name: str, measured: dict[str, Any], ceiling: dict[str, Any]) -> str:
    ratio = measured["per_second"] / ceiling["per_second"] if ceiling["per_second"] else float("nan")
    ok = sum(count for status, count in measured["statuses"].items() if status.startswith("2"))
    return (
        f"{name:<34} {measured['per_second']:>8,.0f}/s  p50 {measured['p50_ms']:>8.3f} ms  "
        f"p99 {measured['p99_ms']:>8.3f} ms  {ratio:>5.2f} of ceiling ({ceiling['per_second']:,.0f}/s)  "
        f"server CPU {measured['server_cpu_us']:>5.0f} us/request ({ceiling['server_cpu_us']:.0f} for hello)  "
        f"2xx {ok}/{measured['requests']}"
    )


def run_benchmark(*, seconds: float, connections: int, rate: float) -> None:
    port = _free_port()
    server, facts = _start_server(port)
    try:
        client = f"{facts['client_id']}:{BENCH_PASSWORD}"
        token = _post_form(port, "/oauth2/token", {"grant_type": "client_credentials"}, basic=client)["access_token"]
        hello = {"method": "GET", "path": "/hello"}
        token_request = {
            "method": "POST",
            "path": "/oauth2/token",
            "body": "grant_type=client_credentials",
            "content_type": FORM,
            "basic": client,
        }
        scenarios = {
            "token (argon2id secret, cached)": token_request,
            "introspection": {
                "method": "POST",
                "path": "/oauth2/introspect",
                "body": urllib.parse.urlencode({"token": token}),
                "content_type": FORM,
                "basic": client,
            },
            "verify (token)": {
                "method": "POST",
                "path": "/v1/verify",
                "body": json.dumps({"token": token, "method": "GET"}),
                "content_type": "application/json",
            },
            "verify (access key + secret)": {
                "method": "POST",
                "path": "/v1/verify",
                "body": json.dumps({"accessKeyId": facts["access_key_id"], "secretKey": facts["secret_key"]}),
                "content_type": "application/json",
            },
        }
        print(f"server on CPU {SERVER_CPU}, load generator on CPU {LOAD_CPU}; {os.cpu_count()} CPUs; {seconds} s each")
        print(f"load average before: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
        print(f"closed loop, {connections} keep-alive connections:")
        for name, request in scenarios.items():
            ceiling = _load(port, seconds=seconds, connections=connections, **hello)
            measured = _load(port, seconds=seconds, connections=connections, **request)
            print("  " + _row(name, measured, ceiling))
        print(f"open loop at {rate:,.0f} requests/s (latency from the scheduled start):")
        ceiling = _load(port, seconds=seconds, connections=connections, rate=rate, **hello)
        measured = _load(port, seconds=seconds, connections=connections, rate=rate, **token_request)
        print("  " + _row("hello world", ceiling, ceiling))
        print("  " + _row("token (argon2id secret, cached)", measured, ceiling))
        print(f"load average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.port))
    else:
        run_benchmark(seconds=args.seconds, connections=args.connections, rate=args.rate)


if __name__ == "__main__":
    main()
