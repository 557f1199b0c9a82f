"""API write amplification: writes per credential while idle (goal 0) and under token load (goal ≤ 1 per flush interval).

ApiClients are created and settle; then the API writes to them and their
Secrets are counted (a watch sees every write) over an idle window, and over
a window in which a credential service replica serves token requests for all
of them as fast as it can.

    .venv/bin/python -m benchmarks.write_amplification [--clients 50] [--requests 10000] [--flush 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from benchmarks.harness import REPO, OperatorProcess, bounded, control_plane, free_port, kubectl
from credop.kube.client import Kube, load_configuration

WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")
COUNTED_RESOURCES = ("apiclients", "secrets", "events")
REQUESTS = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")


def api_writes(kubeconfig: Path) -> int:
    """Mutating requests the API server has served for ApiClients, Secrets and Events (its own counter)."""
    text = kubectl(kubeconfig, "get", "--raw", "/metrics").stdout
    total = 0.0
    for line in text.splitlines():
        match = REQUESTS.match(line)
        if not match:
            continue
        labels = dict(item.split("=", 1) for item in match["labels"].split(","))
        if (
            labels.get("verb", "").strip('"') in WRITE_VERBS
            and labels.get("resource", "").strip('"') in COUNTED_RESOURCES
        ):
            total += float(match["value"])
    return int(total)


async def create_clients(kube: Kube, namespace: str, count: int) -> list[tuple[str, str]]:
    policy = {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": "KeyPolicy",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"maxActiveClients": count},
    }
    await kube.create_object("keypolicies", namespace, policy)
    await asyncio.sleep(1)
    bodies = [
        {
            "apiVersion": "credop.dev/v1alpha1",
            "kind": "ApiClient",
            "metadata": {"name": f"c{i:03d}", "namespace": namespace},
            "spec": {},
        }
        for i in range(count)
    ]
    await bounded(16, [kube.create_object("apiclients", namespace, body) for body in bodies])
    while (
        sum(
            1
            for item in await kube.list_objects("apiclients", namespace)
            if (item.get("status") or {}).get("phase") == "Active"
        )
        < count
    ):
        await asyncio.sleep(0.5)
    credentials = []
    for i in range(count):
        data = (await kube.read_secret(namespace, f"c{i:03d}"))["data"]
        credentials.append((f"{namespace}/c{i:03d}", base64.b64decode(data["clientSecret"]).decode()))
    return credentials


async def token_load(url: str, credentials: list[tuple[str, str]], requests: int) -> tuple[int, float]:
    ok = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:

        async def one(index: int) -> None:
            nonlocal ok
            client_id, secret = credentials[index % len(credentials)]
            form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
            async with session.post(f"{url}/oauth2/token", data=form) as answer:
                await answer.read()
                ok += answer.status == 200

        await bounded(32, [one(i) for i in range(requests)])
    return ok, time.perf_counter() - started


def start_service(kubeconfig: Path, port: int, flush: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "CREDOP_NAMESPACE": "credop-system",
        "CREDOP_USAGE_FLUSH_INTERVAL": str(flush),
        "CREDOP_ENDPOINT": f"http://127.0.0.1:{port}",
    }
    command = [
        sys.executable,
        "-m",
        "credop.cli",
        "service",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "WARNING",
    ]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{url}/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("the credential service did not become ready")


async def measure(kubeconfig: Path, clients: int, requests: int, flush: float, idle: float) -> None:
    namespace = f"bench-writes-{uuid.uuid4().hex[:5]}"
    kubectl(kubeconfig, "create", "namespace", namespace)
    kube = Kube(load_configuration(kubeconfig))
    operator = OperatorProcess.start(kubeconfig)
    port = free_port()
    service = start_service(kubeconfig, port, flush)
    url = f"http://127.0.0.1:{port}"
    try:
        operator.wait_serving()
        credentials = await create_clients(kube, namespace, clients)
        await wait_ready(url)
        await asyncio.sleep(3)
        before_idle = api_writes(kubeconfig)
        await asyncio.sleep(idle)
        idle_writes = api_writes(kubeconfig) - before_idle
        warm_ok, warm_seconds = await token_load(url, credentials, requests // 10)
        await asyncio.sleep(flush + 1)
        before_load = api_writes(kubeconfig)
        ok, seconds = await token_load(url, credentials, requests)
        window = max(seconds, flush)
        await asyncio.sleep(window - seconds + flush + 1)  # let the last batch be written
        load_writes = api_writes(kubeconfig) - before_load
        intervals = (window + flush + 1) / flush
    finally:
        service.terminate()
        operator.stop()
        kube.close()
    print(f"write amplification, {clients} ApiClients, flush interval {flush:g} s (API server's own request counter)")
    print(
        f"  idle {idle:g} s: {idle_writes} writes = {idle_writes / clients * 3600 / idle:.2f} per credential per hour (goal 0)"
    )
    print(
        f"  token load: {ok}/{requests} tokens in {seconds:.1f} s ({ok / seconds:.0f}/s) after a warm-up of {warm_ok} in {warm_seconds:.1f} s"
    )
    print(
        f"  {load_writes} writes in {intervals:.1f} flush intervals = {load_writes / clients / intervals:.2f} per credential per interval (goal <= 1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--flush", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    with control_plane() as kubeconfig:
        asyncio.run(measure(kubeconfig, args.clients, args.requests, args.flush, args.idle))


if __name__ == "__main__":
    main()
