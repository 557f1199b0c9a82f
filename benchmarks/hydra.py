"""Side by side with Ory Hydra: client-credentials tokens per second on the same pinned core, same load generator.

    .venv/bin/python -m benchmarks.hydra [--seconds 5] [--repeat 3] [--connections 32]

Builds Ory Hydra v2.3.0 at run time from the Go module proxy into the
git-ignored ``benchmarks/.hydra/`` (once; nothing of it is committed): the
module is copied out of the module cache, the ``replace`` that points at its
nested ``internal/httpclient`` module (not part of the module's zip) is dropped
so the published ``hydra-client-go`` is used instead, and it is built with CGO
and the ``sqlite`` tag. Hydra runs as ``DSN=memory hydra serve all --dev``,
listening on 127.0.0.1 only, pinned to CPU 0 (so Go uses one thread for
Go code, like credop's one process), with an access-token strategy of
``opaque`` and then ``jwt``. credop's service runs the benchmark server of
``benchmarks/token_endpoint.py`` (one worker) on the same core. The load
generator (``benchmarks/loadgen.py``) runs on CPU 1 and asks each for tokens
with HTTP Basic (``client_secret_basic``), closed loop.

What each side does per request:

- Hydra: parses the request, loads the client from its store and checks the
  secret with its hasher (bcrypt by default, on every request), makes the token
  (opaque: random token + HMAC signature; jwt: an RS256 JWT), and writes the
  token session to its database (SQLite in memory).
- credop: parses the request, finds the client in memory, checks the secret
  (an argon2id verifier, remembered by keyed fingerprint after its first
  success, so later requests cost a BLAKE2b hash), signs an ES256 JWT, and
  keeps nothing per token (tokens are stateless; revocation is a list).

The last line is ``GOALS`` and a JSON list (information only: no goal is set
against Hydra).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import token_endpoint as bench

HERE = Path(__file__).resolve().parent
HYDRA_DIR = HERE / ".hydra"
HYDRA_VERSION = "v2.3.0"
HYDRA_MODULE = "github.com/ory/hydra/v2"
CLIENT_MODULE = "github.com/ory/hydra-client-go/v2"
SECRET = "bench-secret-for-hydra-1"


def build() -> Path:
    """The hydra binary, built once from the Go module proxy."""
    binary = HYDRA_DIR / f"hydra-{HYDRA_VERSION}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise SystemExit("Go is needed to build Hydra")
    HYDRA_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=HYDRA_DIR) as scratch:
        subprocess.run([go, "mod", "init", "scratch"], cwd=scratch, check=True, capture_output=True)
        found = subprocess.run(
            [go, "mod", "download", "-json", f"{HYDRA_MODULE}@{HYDRA_VERSION}"],
            cwd=scratch,
            check=True,
            capture_output=True,
            text=True,
        )
        source = Path(scratch) / "src"
        shutil.copytree(json.loads(found.stdout)["Dir"], source)
        for path in [source, *source.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        subprocess.run([go, "mod", "edit", f"-dropreplace={CLIENT_MODULE}"], cwd=source, check=True)
        required = next(
            line.split()[1]
            for line in (source / "go.mod").read_text().splitlines()
            if line.strip().startswith(CLIENT_MODULE + " ")
        )
        env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "1"}
        subprocess.run([go, "get", f"{CLIENT_MODULE}@{required}"], cwd=source, env=env, check=True)
        print(f"building Hydra {HYDRA_VERSION} (a few minutes the first time)", flush=True)
        subprocess.run([go, "build", "-tags", "sqlite", "-o", str(binary), "."], cwd=source, env=env, check=True)
    return binary


class Hydra:
    """``hydra serve all --dev`` with an in-memory database, on loopback, pinned to one CPU."""

    def __init__(self, binary: Path, *, strategy: str, cpu: int) -> None:
        self.public, self.admin = bench.free_port(), bench.free_port()
        env = {
            **os.environ,
            "DSN": "memory",
            "SERVE_PUBLIC_HOST": "127.0.0.1",
            "SERVE_PUBLIC_PORT": str(self.public),
            "SERVE_ADMIN_HOST": "127.0.0.1",
            "SERVE_ADMIN_PORT": str(self.admin),
            "URLS_SELF_ISSUER": f"http://127.0.0.1:{self.public}",
            "STRATEGIES_ACCESS_TOKEN": strategy,
            "SECRETS_SYSTEM": "bench-system-secret-0123456789abcdef",
            "LOG_LEVEL": "error",
        }

        def pin() -> None:
            os.sched_setaffinity(0, {cpu})

        self.process = subprocess.Popen(
            [str(binary), "serve", "all", "--dev"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pin if hasattr(os, "sched_setaffinity") else None,
        )
        self._wait_ready()
        self._create_client()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/health/ready", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Hydra did not become ready")

    def _create_client(self) -> None:
        body = {
            "client_id": "bench",
            "client_secret": SECRET,
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "read write",
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin}/admin/clients",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def token_request(self) -> dict[str, str]:
        return {
            "method": "POST",
            "path": "/oauth2/token",
            "body": "grant_type=client_credentials&scope=read",
            "content_type": bench.FORM,
            "basic": f"bench:{SECRET}",
        }

    def check(self) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.public}/oauth2/token",
            data=b"grant_type=client_credentials&scope=read",
            headers={
                "Content-Type": bench.FORM,
                "Authorization": "Basic " + base64.b64encode(f"bench:{SECRET}".encode()).decode(),
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            token = json.loads(answer.read())["access_token"]
        return "JWT" if token.count(".") == 2 else "opaque"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run(*, seconds: float, repeat: int, connections: int) -> None:
    binary = build()
    print(f"Hydra {HYDRA_VERSION} ({binary.relative_to(HERE.parent)}) vs credop's token endpoint")
    print(
        f"each server pinned to CPU {bench.SERVER_CPU}, load generator on CPU {bench.LOAD_CPU}, "
        f"closed loop, {connections} connections, {seconds} s a run, {repeat} rounds"
    )
    print(f"load average before: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    results: dict[str, list[dict[str, Any]]] = {"credop": [], "hydra opaque": [], "hydra jwt": []}
    port = bench.free_port()
    credop, facts = bench.start_server(port)
    try:
        credop_request = bench.scenarios(port, facts)["token"]
        for round_ in range(repeat):
            bench.load(port, seconds=0.5, connections=connections, **credop_request)
            results["credop"].append(
                bench.load(port, seconds=seconds, connections=connections, server_pid=credop.pid, **credop_request)
            )
            for strategy in ("opaque", "jwt"):
                hydra = Hydra(binary, strategy=strategy, cpu=bench.SERVER_CPU)
                try:
                    kind = hydra.check()
                    request = hydra.token_request()
                    bench.load(hydra.public, seconds=0.5, connections=connections, **request)
                    measured = bench.load(
                        hydra.public, seconds=seconds, connections=connections, server_pid=hydra.process.pid, **request
                    )
                finally:
                    hydra.stop()
                measured["kind"] = kind
                results[f"hydra {strategy}"].append(measured)
            print(
                f"  round {round_ + 1}: "
                + ", ".join(f"{name} {runs[-1]['per_second']:,.0f}/s" for name, runs in results.items())
            )
    finally:
        bench.stop_server(credop)
    medians = {}
    for name, runs in results.items():
        middle = sorted(runs, key=lambda run: run["per_second"])[len(runs) // 2]
        medians[name] = middle
        print("  " + bench._row(f"{name} (median round)", middle))
    credop_rate = medians["credop"]["per_second"]
    goals = []
    for name in ("hydra opaque", "hydra jwt"):
        ratio = credop_rate / medians[name]["per_second"]
        print(f"  credop / {name}: {ratio:,.1f}x the tokens per second (Hydra's tokens: {medians[name]['kind']})")
        goals.append(
            {"goal": f"credop tokens/s / {name} (information)", "measured": round(ratio, 1), "target": "-", "met": True}
        )
    print(f"load average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print("GOALS " + json.dumps(goals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    if args.build_only:
        print(build())
        return
    run(seconds=args.seconds, repeat=args.repeat, connections=args.connections)


if __name__ == "__main__":
    sys.exit(main())
