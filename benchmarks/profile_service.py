"""Per-request breakdown of the credential service's CPU, from py-spy samples of the running server.

    .venv/bin/python -m benchmarks.profile_service [--endpoint token|introspect|verify|floor] [--seconds 8]

Starts the benchmark server of ``benchmarks/token_endpoint.py`` on CPU 0,
drives one endpoint with ``benchmarks/loadgen.py`` (closed loop) on CPU 1,
samples the server with py-spy (``pip install py-spy``; root or ptrace
rights), and splits the server's measured CPU time per request into the
categories below: each sample goes to the first category one of its frames
matches. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import token_endpoint as bench

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ES256 signature (cryptography)", ("ECAlgorithm.sign ", "_es256_signature", "floor (benchmarks")),
    ("ES256 verification (cryptography)", ("ECAlgorithm.verify ", "_verify_es256")),
    ("pyjwt around the signature", ("(jwt/",)),
    ("JWS assembly (header, payload, base64)", ("TokenKeys.sign", "_b64")),
    ("token claims", ("AccessTokens.issue", "access_token_claims")),
    ("token checks (cache, claims, revocation)", ("AccessTokens.active", "AccessTokens.signed", "CheckedTokens")),
    ("authentication (lookup, verifier, limits)", ("Authenticator.", "refuse_if_limited")),
    ("form / JSON body parsing", ("parse_form", "presented_client", "_json_object", "_presented_pair")),
    ("metrics (prometheus-client)", ("prometheus_client",)),
    ("log and audit lines", ("credop/audit.py", "credop/logs.py", "logging/__init__.py")),
    ("JSON encoding of the answer", ("json_response", "JSONEncoder")),
    ("handler (rest)", ("Endpoints.", "guarded.")),
    ("aiohttp: writing the response", ("finish_response", "write_eof", "StreamResponse.prepare")),
    ("aiohttp: request parsing, routing", ("web_protocol.py", "web_app.py", "web_urldispatcher")),
    ("event loop, sockets", ("",)),
)


IDLE_LEAVES = ("_worker (concurrent/futures/thread.py",)
"""Frames py-spy counts as running on this VM though the thread waits there (an idle pool thread's
``work_queue.get``): counted, they inflated "event loop, sockets" and shrank every other share."""


def categorise(raw: Path) -> tuple[dict[str, int], int]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if stack.rpartition(";")[2].startswith(IDLE_LEAVES):
            continue
        samples = int(number)
        total += samples
        for name, needles in CATEGORIES:
            if any(needle in stack for needle in needles):
                counts[name] += samples
                break
    return dict(counts), total


def profile(endpoint: str, *, seconds: float, connections: int, keep: Path | None = None) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    port = bench.free_port()
    server, facts = bench.start_server(port)
    try:
        scenarios = bench.scenarios(port, facts)
        request = scenarios[endpoint]
        bench.load(port, seconds=1.0, connections=connections, **request)  # warm-up
        with tempfile.TemporaryDirectory() as folder:
            raw = Path(folder) / "samples.txt"
            sampler = subprocess.Popen(
                [
                    spy,
                    "record",
                    "-p",
                    str(server.pid),
                    "-r",
                    "400",
                    "-d",
                    str(int(seconds + 2)),
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            measured = bench.load(port, seconds=seconds, connections=connections, server_pid=server.pid, **request)
            sampler.wait(seconds + 30)
            counts, total = categorise(raw)
            if keep is not None:
                shutil.copy(raw, keep)
    finally:
        bench.stop_server(server)
    per_request = measured["server_cpu_us"]
    lines = [
        f"{endpoint}: {measured['per_second']:,.0f}/s closed loop ({connections} connections), "
        f"server CPU {per_request:.0f} us/request, {total} py-spy samples",
    ]
    for name, _ in CATEGORIES:
        share = counts.get(name, 0) / total if total else 0.0
        lines.append(f"  {name:<44} {share * 100:5.1f} %  {share * per_request:6.1f} us")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--endpoint", action="append", help="token, introspection, verify-token, verify-key, floor or hello"
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--keep", type=Path, help="a folder to keep py-spy's raw samples in (<endpoint>.txt)")
    args = parser.parse_args()
    for endpoint in args.endpoint or ["token"]:
        keep = args.keep / f"{endpoint}.txt" if args.keep else None
        print(profile(endpoint, seconds=args.seconds, connections=args.connections, keep=keep), flush=True)


if __name__ == "__main__":
    main()
