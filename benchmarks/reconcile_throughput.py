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
import threading
import time
import uuid
from pathlib import Path

import kubernetes
import psutil

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


async def credop_run(kube: Kube, kubeconfig: Path, namespace: str, count: int, concurrency: int) -> float:
    """Create the keys, then follow one watch until every key has shown phase Active (no polling)."""
    done = threading.Event()
    watcher = threading.Thread(target=count_active, args=(kubeconfig, namespace, count, done), daemon=True)
    watcher.start()
    started = time.perf_counter()
    await bounded(
        concurrency,
        [
            kube.create_object("serviceaccountkeys", namespace, key_body(f"key-{i:05d}", namespace))
            for i in range(count)
        ],
    )
    await asyncio.get_running_loop().run_in_executor(None, done.wait)
    return time.perf_counter() - started


def count_active(kubeconfig: Path, namespace: str, count: int, done: threading.Event) -> None:
    api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(load_configuration(kubeconfig)))
    active: set[str] = set()
    stream = kubernetes.watch.Watch()
    for event in stream.stream(
        api.list_namespaced_custom_object,
        "credop.dev",
        "v1alpha1",
        namespace,
        "serviceaccountkeys",
        timeout_seconds=600,
    ):
        item = event["object"]
        if (item.get("status") or {}).get("phase") == "Active":
            active.add(item["metadata"]["name"])
        if len(active) >= count:
            stream.stop()
    done.set()


def cpu_seconds(names: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds used so far by the control plane's processes (and this one), by name."""
    used: dict[str, float] = {}
    for process in psutil.process_iter(["name", "cpu_times"]):
        name = process.info["name"] or ""
        if name in names:
            times = process.info["cpu_times"]
            used[name] = used.get(name, 0.0) + times.user + times.system
    return used


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> str:
    return ", ".join(f"{name} {after.get(name, 0) - before.get(name, 0):.1f}" for name in sorted(after))


CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-controller-manager")


async def measure(kubeconfig: Path, count: int, concurrency: int) -> tuple[float, float, str, str]:
    kube = Kube(load_configuration(kubeconfig), threads=concurrency + 8)
    run = uuid.uuid4().hex[:6]
    floor_ns, credop_ns = f"bench-floor-{run}", f"bench-credop-{run}"
    for namespace in (floor_ns, credop_ns):
        kubectl(kubeconfig, "create", "namespace", namespace)
    before = cpu_seconds(CONTROL_PLANE)
    floor_seconds = await floor(kube, floor_ns, count, concurrency)
    floor_cpu = cpu_delta(before, cpu_seconds(CONTROL_PLANE))
    operator = OperatorProcess.start(kubeconfig)
    try:
        operator.wait_serving()
        before = cpu_seconds(CONTROL_PLANE)
        operator_before = psutil.Process(operator.process.pid).cpu_times()
        credop_seconds = await credop_run(kube, kubeconfig, credop_ns, count, concurrency)
        operator_after = psutil.Process(operator.process.pid).cpu_times()
        used = operator_after.user + operator_after.system - operator_before.user - operator_before.system
        credop_cpu = f"{cpu_delta(before, cpu_seconds(CONTROL_PLANE))}, credop operator {used:.1f}"
    finally:
        operator.stop()
        kube.close()
    return floor_seconds, credop_seconds, floor_cpu, credop_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=int(os.environ.get("BENCH_COUNT", "1000")))
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with control_plane() as kubeconfig:
        floor_seconds, credop_seconds, floor_cpu, credop_cpu = asyncio.run(
            measure(kubeconfig, args.count, args.concurrency)
        )
    print(f"reconcile throughput, {args.count} ServiceAccountKeys, client concurrency {args.concurrency}")
    print(
        f"  floor (plain client: create key + Secret + status): {floor_seconds:7.2f} s  {args.count / floor_seconds:7.1f}/s"
    )
    print(
        f"  credop (create key, operator mints, until Active):  {credop_seconds:7.2f} s  {args.count / credop_seconds:7.1f}/s"
    )
    print(f"  ratio credop/floor: {credop_seconds / floor_seconds:.2f}x  (goal <= 1.5x)")
    print(f"  CPU seconds, floor run:  {floor_cpu}")
    print(f"  CPU seconds, credop run: {credop_cpu}")


if __name__ == "__main__":
    main()
