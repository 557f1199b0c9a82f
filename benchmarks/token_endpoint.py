"""Benchmark of the credential service's hot paths against floors measured in the same run.

    .venv/bin/python -m benchmarks.token_endpoint [--seconds 5] [--connections 32] [--repeat 3] [--quick]

Starts the service in a child process (in-memory state: an ApiClient with a
user-chosen, argon2id-hashed secret, already verified once so it is cached;
a ServiceAccountKey), on the event loop the service itself runs on, with two
routes added to the same application:

- ``/hello``: aiohttp's hello-world (what aiohttp itself costs per request);
- ``/floor``: the same, plus one ES256 signature with the service's signing key
  over a token-sized input: the irreducible work of issuing a token. The
  token endpoint's goal is a ratio against it.

The server is pinned to CPU 0 and the load generator (``benchmarks/loadgen.py``)
to CPU 1. Each endpoint is measured right after its floor, ``--repeat`` times,
and the median ratio reported. Server CPU per request is read from /proc for
the server's processes. Then token latency at 2,000 requests/s open loop beside
hello-world's, and token throughput with ``--workers`` 1 and 2 (SO_REUSEPORT
processes, as ``credop service --workers N``; with 2 the workers share both
CPUs with the load generator). The last line is ``GOALS`` and a JSON list for
``benchmarks.run_all``. Figures, not assertions.

The server logs as shipped: JSON lines at INFO, so every token issued writes
its audit line (to ``results/token_endpoint.log``, git-ignored, where the
service in a pod writes to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
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
TOKEN_GOAL, P99_GOAL = 0.6, 1.5


# The server (child processes) --------------------------------------------------------------
def _log_as_shipped() -> None:
    """INFO JSON lines, as ``credop service`` writes them (audit lines included), into a file."""
    from credop.logs import configure_logging

    configure_logging(level="INFO", stream=(HERE / "results" / "token_endpoint.log").open("w"))


def _serve(port: int, workers: int, *, ablation: bool = False) -> None:
    """Build the state's inputs once, then serve them from ``workers`` processes on one port."""
    import uuid

    _log_as_shipped()

    from tests.servicekit import api_client_object, key_object, sample_keyring

    from credop.clock import utc_now
    from credop.domain import keyformat
    from credop.domain.verifiers import password_verifier

    keyring = sample_keyring(utc_now())
    client = api_client_object("bench", permission="CanEdit", uid=str(uuid.uuid4()))
    access_key_id = keyformat.new_access_key_id(os.urandom)
    key = key_object("bench-key", access_key_id=access_key_id, uid=str(uuid.uuid4()))
    secret_key = keyformat.new_secret_key(os.urandom)
    password = password_verifier(BENCH_PASSWORD)
    children = []
    for _index in range(1, workers):
        pid = os.fork()
        if pid == 0:
            _worker(port, keyring, client, key, secret_key, password, announce=False, ablation=ablation)
            os._exit(0)
        children.append(pid)
    print(
        json.dumps({"client_id": "team-a/bench", "access_key_id": access_key_id, "secret_key": secret_key}),
        flush=True,
    )
    try:
        _worker(port, keyring, client, key, secret_key, password, announce=True, ablation=ablation)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)


def _worker(
    port: int, keyring: Any, client: Any, key: Any, secret_key: str, password: str, *, announce: bool, ablation: bool
) -> None:
    from credop.service._workers import run_event_loop

    run_event_loop(_serve_one(port, keyring, client, key, secret_key, password, announce=announce, ablation=ablation))


async def _serve_one(
    port: int, keyring: Any, client: Any, key: Any, secret_key: str, password: str, *, announce: bool, ablation: bool
) -> None:
    from aiohttp import web
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from tests.servicekit import feed_secret, hmac_verifier, in_memory_state

    from credop.clock import utc_now
    from credop.service import build_app
    from credop.service._records import API_CLIENT, SERVICE_ACCOUNT_KEY

    state = in_memory_state(clock=utc_now, keyring=keyring)
    state.put_object(API_CLIENT, client)
    feed_secret(state, client, verifier=password)
    state.put_object(SERVICE_ACCOUNT_KEY, key)
    feed_secret(state, key, verifier=hmac_verifier(state, secret_key))
    app = build_app(state)
    private = keyring.signing_keys[0].private_key()
    signing_input = b"e" * 330  # a token's header.payload is about this long
    algorithm = ec.ECDSA(hashes.SHA256())

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, world")

    async def floor(request: web.Request) -> web.Response:
        private.sign(signing_input, algorithm)
        return web.Response(text="Hello, world")

    app.router.add_get("/hello", hello)
    app.router.add_get("/floor", floor)
    if ablation:
        from benchmarks import token_ablation

        token_ablation.add_routes(app, state, lambda: private.sign(signing_input, algorithm))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if announce:
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    await stop.wait()
    await runner.cleanup()


# The driver --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    port: int, *, workers: int = 1, cpus: set[int] | None = None, ablation: bool = False
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [sys.executable, "-m", "benchmarks.token_endpoint", "--serve", "--port", str(port)]
    command += ["--workers", str(workers)] + (["--ablation"] if ablation else [])
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(server.pid, cpus if cpus is not None else {SERVER_CPU})
    assert server.stdout is not None
    facts: dict[str, str] = json.loads(server.stdout.readline())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=2):
                break
        except OSError:
            time.sleep(0.05)
    if workers > 1:
        time.sleep(1.0)  # let every worker bind
    return server, facts


def stop_server(server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None
    server.stdin.close()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()


def server_cpu_seconds(pid: int) -> float:
    import psutil

    total = 0.0
    process = psutil.Process(pid)
    for each in [process, *process.children(recursive=True)]:
        times = each.cpu_times()
        total += times.user + times.system
    return total


def _post_form(port: int, path: str, fields: dict[str, str], *, basic: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=urllib.parse.urlencode(fields).encode(), method="POST"
    )
    request.add_header("Content-Type", FORM)
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def load(
    port: int,
    *,
    seconds: float,
    connections: int,
    rate: float | None = None,
    server_pid: int | None = None,
    **request: str,
) -> dict[str, Any]:
    """One load generator run; adds the server's CPU time per answered request when ``server_pid`` is given."""
    command = [sys.executable, str(HERE / "loadgen.py"), "--port", str(port), "--seconds", str(seconds)]
    command += ["--cpu", str(LOAD_CPU)] if hasattr(os, "sched_setaffinity") else []
    command += ["--rate", str(rate)] if rate else ["--connections", str(connections)]
    for name, value in request.items():
        command += [f"--{name.replace('_', '-')}", value]
    before = server_cpu_seconds(server_pid) if server_pid else 0.0
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    used = server_cpu_seconds(server_pid) - before if server_pid else 0.0
    measured: dict[str, Any] = json.loads(finished.stdout)
    measured["server_cpu_us"] = used / max(1, measured["requests"]) * 1e6
    return measured


def scenarios(port: int, facts: dict[str, str]) -> dict[str, dict[str, str]]:
    client = f"{facts['client_id']}:{BENCH_PASSWORD}"
    token = _post_form(port, "/oauth2/token", {"grant_type": "client_credentials"}, basic=client)["access_token"]
    return {
        "hello": {"method": "GET", "path": "/hello"},
        "floor": {"method": "GET", "path": "/floor"},
        "token": {
            "method": "POST",
            "path": "/oauth2/token",
            "body": "grant_type=client_credentials",
            "content_type": FORM,
            "basic": client,
        },
        "introspection": {
            "method": "POST",
            "path": "/oauth2/introspect",
            "body": urllib.parse.urlencode({"token": token}),
            "content_type": FORM,
            "basic": client,
        },
        "verify-token": {
            "method": "POST",
            "path": "/v1/verify",
            "body": json.dumps({"token": token, "method": "GET"}),
            "content_type": "application/json",
        },
        "verify-key": {
            "method": "POST",
            "path": "/v1/verify",
            "body": json.dumps({"accessKeyId": facts["access_key_id"], "secretKey": facts["secret_key"]}),
            "content_type": "application/json",
        },
    }


LABELS = {
    "token": "token (argon2id secret, cached)",
    "introspection": "introspection",
    "verify-token": "verify (token)",
    "verify-key": "verify (access key + secret)",
}


def _row(name: str, measured: dict[str, Any], floor: dict[str, Any] | None = None) -> str:
    ok = sum(count for status, count in measured["statuses"].items() if status.startswith("2"))
    text = (
        f"{name:<34} {measured['per_second']:>8,.0f}/s  p50 {measured['p50_ms']:>8.3f} ms  "
        f"p99 {measured['p99_ms']:>8.3f} ms  server CPU {measured['server_cpu_us']:>5.0f} us/request  "
        f"2xx {ok}/{measured['requests']}"
    )
    if floor is not None:
        text += f"  ({measured['per_second'] / floor['per_second']:.2f} of floor)"
    return text


def _goal(name: str, measured: float, target: float, *, at_most: bool = False, unit: str = "") -> dict[str, Any]:
    met = measured <= target if at_most else measured >= target
    return {
        "goal": name,
        "measured": round(measured, 3),
        "target": f"{'<=' if at_most else '>='} {target}{unit}",
        "met": met,
    }


def run_benchmark(*, seconds: float, connections: int, rate: float, repeat: int, workers_check: bool) -> None:
    port = free_port()
    server, facts = start_server(port)
    goals: list[dict[str, Any]] = []
    try:
        requests = scenarios(port, facts)
        pid = server.pid
        print(f"server on CPU {SERVER_CPU}, load generator on CPU {LOAD_CPU}; {os.cpu_count()} CPUs; {seconds} s a run")
        print(f"load average before: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
        print(
            f"closed loop, {connections} keep-alive connections; each endpoint right after its floor, {repeat} times:"
        )
        for each in [*requests.values()]:
            load(port, seconds=0.5, connections=connections, **each)  # warm-up
        for name, label in LABELS.items():
            ratios, cpu_ratios, rows = [], [], []
            for _ in range(repeat):
                hello = load(port, seconds=seconds, connections=connections, server_pid=pid, **requests["hello"])
                floor = load(port, seconds=seconds, connections=connections, server_pid=pid, **requests["floor"])
                measured = load(port, seconds=seconds, connections=connections, server_pid=pid, **requests[name])
                ratios.append(measured["per_second"] / floor["per_second"])
                cpu_ratios.append(floor["server_cpu_us"] / measured["server_cpu_us"])
                rows.append((hello, floor, measured))
            middle = sorted(range(repeat), key=lambda index: ratios[index])[repeat // 2]
            hello, floor, measured = rows[middle]
            ratio = statistics.median(ratios)
            print(f"  {label}")
            print("    " + _row("hello world", hello))
            print("    " + _row("floor (hello + one ES256 signature)", floor))
            print("    " + _row(label, measured, floor))
            print(
                f"    ratio to floor: throughput {ratio:.2f} (runs: {', '.join(f'{r:.2f}' for r in ratios)}); "
                f"by server CPU per request {statistics.median(cpu_ratios):.2f}"
            )
            goals.append(_goal(f"{label}: throughput / floor", ratio, TOKEN_GOAL))
        print(f"open loop at {rate:,.0f} requests/s (latency from the scheduled start), {repeat} times:")
        p99_ratios = []
        for _ in range(repeat):
            hello = load(port, seconds=seconds, connections=connections, rate=rate, server_pid=pid, **requests["hello"])
            token = load(port, seconds=seconds, connections=connections, rate=rate, server_pid=pid, **requests["token"])
            p99_ratios.append(token["p99_ms"] / hello["p99_ms"])
            print("    " + _row("hello world", hello))
            print("    " + _row(LABELS["token"], token))
        p99 = statistics.median(p99_ratios)
        print(f"    token p99 / hello p99: {p99:.2f} (runs: {', '.join(f'{r:.2f}' for r in p99_ratios)})")
        goals.append(_goal(f"token p99 at {rate:,.0f}/s open loop / hello p99", p99, P99_GOAL, at_most=True))
    finally:
        stop_server(server)
    if workers_check:
        print("workers (SO_REUSEPORT processes; closed loop, token):")
        by_workers = {}
        for workers in (1, 2):
            cpus = {SERVER_CPU} if workers == 1 else {0, 1}
            port = free_port()
            server, facts = start_server(port, workers=workers, cpus=cpus)
            try:
                token_request = scenarios(port, facts)["token"]
                load(port, seconds=0.5, connections=connections, **token_request)
                runs = [
                    load(port, seconds=seconds, connections=connections, server_pid=server.pid, **token_request)
                    for _ in range(repeat)
                ]
            finally:
                stop_server(server)
            best = sorted(runs, key=lambda run: run["per_second"])[repeat // 2]
            by_workers[workers] = best["per_second"]
            where = "CPU 0" if workers == 1 else "CPUs 0-1, beside the load generator on CPU 1"
            print(f"    {workers} worker{'s' if workers > 1 else ''} ({where}): " + _row("token", best))
        print(f"    2 workers / 1 worker: {by_workers[2] / by_workers[1]:.2f}")
    print(f"load average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print("GOALS " + json.dumps(goals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 s runs, once each (a smoke run)")
    parser.add_argument("--no-workers", action="store_true", help="skip the 1-and-2-workers comparison")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--ablation", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.port, args.workers, ablation=args.ablation)
        return
    seconds, repeat = (1.0, 1) if args.quick else (args.seconds, args.repeat)
    run_benchmark(
        seconds=seconds, connections=args.connections, rate=args.rate, repeat=repeat, workers_check=not args.no_workers
    )


if __name__ == "__main__":
    main()
