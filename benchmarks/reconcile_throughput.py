"""Reconcile throughput: N ServiceAccountKeys until all are Active with their Secrets, beside the floor.

The floor is a plain client doing the same API writes directly, in the same
run on the same control plane: create the ServiceAccountKey, create its Secret,
patch its status. credop's figure is the time from the first create until
the last key shows phase Active, with the operator in its own process.

    .venv/bin/python -m benchmarks.reconcile_throughput [--count 1000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
import uuid
from pathlib import Path

from benchmarks.harness import OperatorProcess, bounded, control_plane, key_body, kubectl
from credop.kube.client import Kube, load_configuration


async def floor(kube: Kube, namespace: str, count: int, concurrency: int) -> float:
    async def one(index: int) -> None:
        name = f"floor-{index:05d}"
        created = await kube.create_object("serviceaccountkeys", namespace, key_body(name, namespace))
        owner = {
            "apiVersion": "credop.dev/v1alpha1",
            "kind": "ServiceAccountKey",
            "name": name,
            "uid": created["metadata"]["uid"],
            "controller": True,
        }
        secret = {
            "metadata": {"name": name, "ownerReferences": [owner]},
            "stringData": {"secretKey": secrets.token_urlsafe(30)},
        }
        await kube.create_secret(namespace, secret)
        await kube.patch_status(
            "serviceaccountkeys", namespace, name, {"status": {"phase": "Active", "accessKeyId": f"crak_{index}"}}
        )

    started = time.perf_counter()
    await bounded(concurrency, [one(i) for i in range(count)])
    return time.perf_counter() - started


async def credop_run(kube: Kube, namespace: str, count: int, concurrency: int) -> float:
    started = time.perf_counter()
    await bounded(
        concurrency,
        [
            kube.create_object("serviceaccountkeys", namespace, key_body(f"key-{i:05d}", namespace))
            for i in range(count)
        ],
    )
    while True:
        items = await kube.list_objects("serviceaccountkeys", namespace)
        if sum(1 for item in items if (item.get("status") or {}).get("phase") == "Active") == count:
            return time.perf_counter() - started
        await asyncio.sleep(0.25)


async def measure(kubeconfig: Path, count: int, concurrency: int) -> tuple[float, float]:
    kube = Kube(load_configuration(kubeconfig), threads=concurrency + 8)
    run = uuid.uuid4().hex[:6]
    floor_ns, credop_ns = f"bench-floor-{run}", f"bench-credop-{run}"
    for namespace in (floor_ns, credop_ns):
        kubectl(kubeconfig, "create", "namespace", namespace)
    floor_seconds = await floor(kube, floor_ns, count, concurrency)
    operator = OperatorProcess.start(kubeconfig)
    try:
        operator.wait_serving()
        credop_seconds = await credop_run(kube, credop_ns, count, concurrency)
    finally:
        operator.stop()
        kube.close()
    return floor_seconds, credop_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=int(os.environ.get("BENCH_COUNT", "1000")))
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with control_plane() as kubeconfig:
        floor_seconds, credop_seconds = asyncio.run(measure(kubeconfig, args.count, args.concurrency))
    print(f"reconcile throughput, {args.count} ServiceAccountKeys, client concurrency {args.concurrency}")
    print(
        f"  floor (plain client: create key + Secret + status): {floor_seconds:7.2f} s  {args.count / floor_seconds:7.1f}/s"
    )
    print(
        f"  credop (create key, operator mints, until Active):  {credop_seconds:7.2f} s  {args.count / credop_seconds:7.1f}/s"
    )
    print(f"  ratio credop/floor: {credop_seconds / floor_seconds:.2f}x  (goal <= 1.5x)")


if __name__ == "__main__":
    main()
