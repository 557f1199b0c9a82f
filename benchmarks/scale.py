"""Scale: the operator (and the credential service) with 1k … 100k credentials under management.

For each size it restarts the operator (its own process) and measures startup
time until every credential is known (reconciled once), resident memory, idle
CPU, API writes while idle (write amplification: goal 0), and how late
deadlines fire while all of them are in the scheduler (a second namespace of
keys whose expiry notices and expiries fall due during the measurement). The
idle window runs from one periodic resync to the next (the operator runs with
``--resync`` seconds, 60 by default: ten times as often as the default 600,
so the figure is an upper bound of what the resync adds). Then the credential
service: startup until /readyz answers 200, and its resident memory.

    .venv/bin/python -m benchmarks.scale [--sizes 1000,5000,10000] [--idle 30]
    .venv/bin/python -m benchmarks.scale --sizes 100000 --populate direct     # the 100k mode (not CI)

``--populate operator`` (the default) creates keys and lets the operator mint
them; ``--populate direct`` mints one key through the operator, then writes
every other key the way credop would have left it (the key, its record
Secret, its tenant Secret and its status, bodies copied from the minted one)
with a plain client at concurrency 64: the fastest honest way to reach 100k.
The API server's and etcd's CPU and etcd's database size are printed.
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

from benchmarks.harness import (
    OPERATOR_NAMESPACE,
    RESULTS,
    OperatorProcess,
    bounded,
    control_plane,
    free_port,
    key_body,
    kubectl,
)
from benchmarks.reconcile_throughput import CONTROL_PLANE, _clean, cpu_delta, cpu_seconds
from credop import names
from credop.kube.client import Kube, load_configuration

LATE_BUCKET = re.compile(r'credop_deadline_lateness_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)')
RECONCILED = re.compile(r'credop_reconciles_total\{kind="serviceaccountkeys",outcome="ok"\} ([0-9.e+]+)')
RESYNCS = re.compile(r"credop_resyncs_total ([0-9.e+]+)")
DIRECT_CONCURRENCY = 64


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
    service_startup_seconds: float = float("nan")
    service_rss_mb: float = float("nan")


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


async def populate_direct(kube: Kube, kubeconfig: Path, namespace: str, start: int, stop: int) -> None:
    """Key ``start`` minted by the operator (when 0), then the rest written as credop leaves them."""
    if start == 0:
        minting = OperatorProcess.start(kubeconfig)
        try:
            minting.wait_serving()
            await populate(kube, namespace, 0, 1)
        finally:
            minting.stop()
        start = 1
    key = await kube.get_object("serviceaccountkeys", namespace, "k00000")
    record = _clean(await kube.read_secret(OPERATOR_NAMESPACE, names.record_name(key["metadata"]["uid"])))
    tenant = _clean(await kube.read_secret(namespace, key["status"]["secretRef"]["name"]))
    status = key["status"]

    async def one(index: int) -> None:
        name = f"k{index:05d}"
        created = await kube.create_object("serviceaccountkeys", namespace, key_body(name, namespace))
        uid = created["metadata"]["uid"]
        owned = json.loads(json.dumps(record))
        owned["metadata"]["name"] = names.record_name(uid)
        owned["metadata"]["labels"][names.OWNER_UID_LABEL] = uid
        owned["metadata"]["annotations"][names.OWNER_ANNOTATION] = f"{namespace}/{name}"
        owned["metadata"]["annotations"][names.SECRET_NAME_ANNOTATION] = name
        await kube.create_secret(OPERATOR_NAMESPACE, owned)
        delivered = json.loads(json.dumps(tenant))
        owner = {"apiVersion": "credop.dev/v1alpha1", "kind": "ServiceAccountKey", "name": name, "uid": uid}
        delivered["metadata"].update(
            name=name, ownerReferences=[{**owner, "controller": True, "blockOwnerDeletion": True}]
        )
        await kube.create_secret(namespace, delivered)
        await kube.patch_status(
            "serviceaccountkeys", namespace, name, {"status": {**status, "secretRef": {"name": name}}}
        )

    started = time.monotonic()
    await bounded(DIRECT_CONCURRENCY, [one(index) for index in range(start, stop)])
    elapsed = time.monotonic() - started
    print(
        f"populated keys {start}..{stop - 1} directly in {elapsed:.0f} s ({(stop - start) / elapsed:.0f}/s)", flush=True
    )


def wait_all_known(operator: OperatorProcess, count: int, started: float) -> float:
    while True:
        if operator.process.poll() is not None:
            raise RuntimeError(f"the operator exited with {operator.process.returncode}")
        try:
            match = RECONCILED.search(operator.metrics())
        except OSError:  # the operator's /metrics can answer 500 while its store changes under it
            match = None
        if match and float(match.group(1)) >= count:
            return time.monotonic() - started
        time.sleep(poll_interval(count))


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


def metrics_text(operator: OperatorProcess) -> str:
    for _ in range(50):
        try:
            return operator.metrics()
        except OSError:
            time.sleep(0.2)
    return operator.metrics()


def resyncs(operator: OperatorProcess) -> int:
    try:
        match = RESYNCS.search(operator.metrics())
    except OSError:
        return 0
    return int(float(match.group(1))) if match else 0


def wait_resync(operator: OperatorProcess, after: int, count: int) -> None:
    while resyncs(operator) <= after:
        time.sleep(poll_interval(count))


def poll_interval(count: int) -> float:
    """How often to read the operator's /metrics: it lists every key's expiry, so at 100k one read costs the
    operator about a second of CPU, and reading it often would be what the benchmark measures."""
    return 0.2 if count < 5000 else 5.0


async def measure_point(
    kubeconfig: Path, kube: Kube, namespace: str, size: int, idle: float, resync: float
) -> ScalePoint:
    started = time.monotonic()
    operator = OperatorProcess.start(kubeconfig, env={"CREDOP_RESYNC_INTERVAL": str(resync)})
    try:
        operator.wait_serving()
        startup = wait_all_known(operator, size, started)
        print(f"  {size}: all known after {startup:.1f} s", flush=True)
        wait_resync(operator, 0, size)  # the first resync looks again at what changed while starting
        wait_resync(operator, 1, size)
        cpu, writes = idle_measure(operator, kubeconfig, namespace, max(idle, resync))
        rss = psutil.Process(operator.process.pid).memory_info().rss / 2**20
        await deadline_load(kube, kubeconfig, 200)
        await asyncio.sleep(35)
        checks, p99, worst = lateness(metrics_text(operator))
    finally:
        operator.stop()
    per_hour = writes / size * 3600 / max(idle, resync)
    service_startup, service_rss = service_at_scale(kubeconfig)
    return ScalePoint(size, startup, rss, cpu, per_hour, checks, p99, worst, service_startup, service_rss)


def service_at_scale(kubeconfig: Path) -> tuple[float, float]:
    """``credop service`` started against the cluster: seconds until /readyz is 200, and its RSS then."""
    import os
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "CREDOP_NAMESPACE": OPERATOR_NAMESPACE}
    command = [sys.executable, "-m", "credop.cli", "service", "--host", "127.0.0.1", "--port", str(port)]
    started = time.monotonic()
    service = subprocess.Popen([*command, "--log-level", "WARNING"], env=env)
    try:
        while service.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        ready = time.monotonic() - started
        rss = psutil.Process(service.pid).memory_info().rss / 2**20
    finally:
        service.terminate()
        service.wait(30)
    print(f"  credential service: ready after {ready:.1f} s, RSS {rss:.0f} MB", flush=True)
    return ready, rss


async def run(sizes: list[int], idle: float, *, direct: bool, resync: float) -> list[ScalePoint]:
    points = []
    with control_plane() as kubeconfig:
        kube = Kube(load_configuration(kubeconfig), threads=DIRECT_CONCURRENCY + 8)
        namespace = f"bench-scale-{uuid.uuid4().hex[:5]}"
        kubectl(kubeconfig, "create", "namespace", namespace)
        have = 0
        for size in sizes:
            before = cpu_seconds(CONTROL_PLANE, kubeconfig.parent)
            if direct:
                await populate_direct(kube, kubeconfig, namespace, have, size)
            else:
                minting = OperatorProcess.start(kubeconfig)
                try:
                    minting.wait_serving()
                    await populate(kube, namespace, have, size)
                finally:
                    minting.stop()
            print(
                f"  control plane CPU seconds while populating: {cpu_delta(before, cpu_seconds(CONTROL_PLANE, kubeconfig.parent))}"
            )
            have = size
            before = cpu_seconds(CONTROL_PLANE, kubeconfig.parent)
            point = await measure_point(kubeconfig, kube, namespace, size, idle, resync)
            print(
                f"  control plane CPU seconds while measuring: {cpu_delta(before, cpu_seconds(CONTROL_PLANE, kubeconfig.parent))}"
            )
            print(f"  etcd database: {etcd_size(kubeconfig)}", flush=True)
            print(json.dumps(asdict(point)), flush=True)
            points.append(point)
        kube.close()
    return points


def etcd_size(kubeconfig: Path) -> str:
    text = kubectl(kubeconfig, "get", "--raw", "/metrics").stdout
    match = re.search(r"^apiserver_storage_size_bytes\{[^}]*\} ([0-9.e+]+)$", text, re.MULTILINE)
    return f"{float(match.group(1)) / 2**20:.0f} MB" if match else "unknown"


def table(points: list[ScalePoint]) -> str:
    lines = [
        "| credentials | startup to all known (s) | RSS (MB) | idle CPU incl. a resync (% of a core) | idle writes / credential / h | deadline checks | deadline lateness p99 (s, bucket) | service ready (s) | service RSS (MB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in points:
        lines.append(
            f"| {p.credentials} | {p.startup_seconds:.1f} | {p.rss_mb:.0f} | {p.idle_cpu_percent:.2f} | {p.idle_writes_per_credential_hour:.2f} | {p.deadline_checks} | ≤ {p.deadline_p99_seconds:g} | {p.service_startup_seconds:.1f} | {p.service_rss_mb:.0f} |"
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
    parser.add_argument("--populate", choices=("operator", "direct"), default="operator")
    parser.add_argument("--resync", type=float, default=60.0, help="the operator's resync interval while measured")
    parser.add_argument("--output-name", default="scale", help="results/<name>.md and .png")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    points = asyncio.run(run(sizes, args.idle, direct=args.populate == "direct", resync=args.resync))
    RESULTS.mkdir(parents=True, exist_ok=True)
    markdown = table(points)
    (RESULTS / f"{args.output_name}.md").write_text(markdown + "\n")
    try:
        plot(points, RESULTS / f"{args.output_name}.png")
    except ImportError:
        print("(matplotlib not installed: no plot)")
    print(markdown)
    print("GOALS " + json.dumps(goals(points)))


def goals(points: list[ScalePoint]) -> list[dict[str, object]]:
    """The 100k goals, for the largest size measured; below 100k they are information (target ``-``)."""
    largest = max(points, key=lambda point: point.credentials)
    at = f"at {largest.credentials:,} credentials"
    full = largest.credentials >= 100_000
    checks = [
        (f"operator startup to all known {at} (s)", largest.startup_seconds, 300.0),
        (f"operator RSS {at} (MB)", largest.rss_mb, 1024.0),
        (f"operator idle CPU incl. a resync {at} (% of a core)", largest.idle_cpu_percent, 2.0),
        (f"deadline lateness p99 {at} (s)", largest.deadline_p99_seconds, 2.0),
    ]
    return [
        {
            "goal": name if full else f"{name} (the goal is at 100,000)",
            "measured": round(value, 3),
            "target": f"<= {target:g}" if full else "-",
            "met": value <= target,
        }
        for name, value, target in checks
    ]


if __name__ == "__main__":
    main()
