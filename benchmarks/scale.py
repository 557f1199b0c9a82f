"""Scale: the operator with 1k / 5k / 10k credentials under management.

For each size it restarts the operator (its own process) and measures startup
time until every credential is known (reconciled once), resident memory, idle
CPU, API writes while idle (write amplification: goal 0), and how late
deadlines fire while all of them are in the scheduler (a second namespace of
keys whose expiry notices and expiries fall due during the measurement).

    .venv/bin/python -m benchmarks.scale [--sizes 1000,5000,10000] [--idle 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import kubernetes
import psutil

from benchmarks.harness import RESULTS, OperatorProcess, bounded, control_plane, key_body, kubectl
from credop.kube.client import Kube, load_configuration

LATE_BUCKET = re.compile(r'credop_deadline_lateness_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)')
RECONCILED = re.compile(r'credop_reconciles_total\{kind="serviceaccountkeys",outcome="ok"\} ([0-9.e+]+)')


@dataclass
class ScalePoint:
    credentials: int
    startup_seconds: float
    rss_mb: float
    idle_cpu_percent: float
    idle_writes_per_credential_hour: float
    deadline_checks: int
    deadline_p99_seconds: float
    deadline_max_bucket_seconds: float


async def populate(kube: Kube, namespace: str, start: int, stop: int) -> None:
    """Create keys start..stop-1 and wait until the operator has minted them all."""
    await bounded(
        32,
        [
            kube.create_object("serviceaccountkeys", namespace, key_body(f"k{i:05d}", namespace))
            for i in range(start, stop)
        ],
    )
    while True:
        items = await kube.list_objects("serviceaccountkeys", namespace)
        if sum(1 for item in items if (item.get("status") or {}).get("phase") == "Active") >= stop:
            return
        await asyncio.sleep(1.0)


def wait_all_known(operator: OperatorProcess, count: int, started: float) -> float:
    while True:
        match = RECONCILED.search(operator.metrics()) if operator.process.poll() is None else None
        if match and float(match.group(1)) >= count:
            return time.monotonic() - started
        time.sleep(0.2)


def idle_measure(operator: OperatorProcess, kubeconfig: Path, namespace: str, seconds: float) -> tuple[float, int]:
    """CPU share of one core, and writes seen on the namespace's keys and Secrets, over ``seconds``."""
    writes = count_writes_in_background(kubeconfig, namespace, seconds)
    process = psutil.Process(operator.process.pid)
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    cpu = (after.user + after.system - before.user - before.system) / seconds * 100
    return cpu, writes()


def count_writes_in_background(kubeconfig: Path, namespace: str, seconds: float):  # type: ignore[no-untyped-def]
    api = kubernetes.client.ApiClient(load_configuration(kubeconfig))
    custom, core = kubernetes.client.CustomObjectsApi(api), kubernetes.client.CoreV1Api(api)
    seen = {"count": 0}

    def watch(list_call, *args) -> None:  # type: ignore[no-untyped-def]
        version = (
            list_call(*args, limit=1)["metadata"]["resourceVersion"]
            if list_call == custom.list_namespaced_custom_object
            else list_call(*args, limit=1).metadata.resource_version
        )
        for _event in kubernetes.watch.Watch().stream(
            list_call, *args, resource_version=version, timeout_seconds=int(seconds)
        ):
            seen["count"] += 1

    threads = [
        threading.Thread(
            target=watch,
            args=(custom.list_namespaced_custom_object, "credop.dev", "v1alpha1", namespace, "serviceaccountkeys"),
            daemon=True,
        ),
        threading.Thread(target=watch, args=(core.list_namespaced_secret, namespace), daemon=True),
    ]
    for thread in threads:
        thread.start()

    def result() -> int:
        for thread in threads:
            thread.join(seconds + 10)
        return seen["count"]

    return result


async def deadline_load(kube: Kube, kubeconfig: Path, count: int) -> str:
    """Keys whose expiry notice (after 15 s) and expiry (after 25 s) fall due during the measurement."""
    namespace = f"bench-deadlines-{uuid.uuid4().hex[:5]}"
    kubectl(kubeconfig, "create", "namespace", namespace)
    policy = {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": "KeyPolicy",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"defaultExpiry": "25s", "expiryNotifyBefore": "10s"},
    }
    await kube.create_object("keypolicies", namespace, policy)
    await asyncio.sleep(1)
    await bounded(
        8, [kube.create_object("serviceaccountkeys", namespace, key_body(f"d{i:04d}", namespace)) for i in range(count)]
    )
    return namespace


def lateness(metrics: str) -> tuple[int, float, float]:
    buckets = [(float(le), float(count)) for le, count in LATE_BUCKET.findall(metrics)]
    total = max((count for _le, count in buckets), default=0.0)
    if not total:
        return 0, float("nan"), float("nan")
    p99 = next(le for le, count in buckets if count >= 0.99 * total)
    worst = next(le for le, count in buckets if count >= total)
    return int(total), p99, worst


async def measure_point(kubeconfig: Path, kube: Kube, namespace: str, size: int, idle: float) -> ScalePoint:
    started = time.monotonic()
    operator = OperatorProcess.start(kubeconfig)
    try:
        operator.wait_serving()
        startup = wait_all_known(operator, size, started)
        await asyncio.sleep(5)
        cpu, writes = idle_measure(operator, kubeconfig, namespace, idle)
        rss = psutil.Process(operator.process.pid).memory_info().rss / 2**20
        await deadline_load(kube, kubeconfig, 200)
        await asyncio.sleep(35)
        checks, p99, worst = lateness(operator.metrics())
    finally:
        operator.stop()
    per_hour = writes / size * 3600 / idle
    return ScalePoint(size, startup, rss, cpu, per_hour, checks, p99, worst)


async def run(sizes: list[int], idle: float) -> list[ScalePoint]:
    points = []
    with control_plane() as kubeconfig:
        kube = Kube(load_configuration(kubeconfig), threads=40)
        namespace = f"bench-scale-{uuid.uuid4().hex[:5]}"
        kubectl(kubeconfig, "create", "namespace", namespace)
        have = 0
        for size in sizes:
            minting = OperatorProcess.start(kubeconfig)
            try:
                minting.wait_serving()
                await populate(kube, namespace, have, size)
            finally:
                minting.stop()
            have = size
            point = await measure_point(kubeconfig, kube, namespace, size, idle)
            print(json.dumps(asdict(point)), flush=True)
            points.append(point)
        kube.close()
    return points


def table(points: list[ScalePoint]) -> str:
    lines = [
        "| credentials | startup to all known (s) | RSS (MB) | idle CPU (% of a core) | idle writes / credential / h | deadline checks | deadline lateness p99 (s, bucket) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in points:
        lines.append(
            f"| {p.credentials} | {p.startup_seconds:.1f} | {p.rss_mb:.0f} | {p.idle_cpu_percent:.2f} | {p.idle_writes_per_credential_hour:.2f} | {p.deadline_checks} | ≤ {p.deadline_p99_seconds:g} |"
        )
    return "\n".join(lines)


def plot(points: list[ScalePoint], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [p.credentials for p in points]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for axis, values, label, goal in (
        (axes[0], [p.rss_mb for p in points], "RSS (MB)", 250),
        (axes[1], [p.startup_seconds for p in points], "startup to all known (s)", 60),
        (axes[2], [p.idle_cpu_percent for p in points], "idle CPU (% of a core)", 2),
    ):
        axis.plot(sizes, values, marker="o")
        axis.axhline(goal, color="red", linestyle="--", linewidth=1, label=f"goal {goal}")
        axis.set_xlabel("credentials")
        axis.set_title(label)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    points = asyncio.run(run([int(size) for size in args.sizes.split(",")], args.idle))
    RESULTS.mkdir(parents=True, exist_ok=True)
    markdown = table(points)
    (RESULTS / "scale.md").write_text(markdown + "\n")
    try:
        plot(points, RESULTS / "scale.png")
    except ImportError:
        print("(matplotlib not installed: no plot)")
    print(markdown)


if __name__ == "__main__":
    main()
