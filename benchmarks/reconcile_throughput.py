"""Reconcile throughput: N ServiceAccountKeys until all are Active, beside a floor doing the same writes by hand.

    .venv/bin/python -m benchmarks.reconcile_throughput [--count 1000] [--concurrency 32]

credop's run: the keys are created (concurrency 32) with the operator in its
own process; its figure is the time from the first create until the last key
shows phase Active (one watch, no polling), plus the Events it posts.

The floor, in the same run on the same control plane, after credop's: a plain
client makes exactly the writes credop made for each key, with bodies copied
from what credop wrote (so the same sizes): create the key (concurrency 32, as
in credop's run) and, as each create returns, 32 writers (the operator's
client threads) create its record Secret in credop's namespace, create the
tenant's Secret (owned by the key), patch the status and post the Event(s).
Nothing watches or reacts in the floor run: it is credop's pipeline with the
watch latency and all processing taken out.

Both runs print the API requests per key by verb and resource (the API
server's own ``apiserver_request_total``), and the watch events per key that
an operator watching what credop watches receives (ServiceAccountKeys, and
Secrets labelled ``app.kubernetes.io/managed-by=credop``), counted by a
watcher of the benchmark's own. The last line is ``GOALS`` and a JSON list.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import copy
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import psutil

from benchmarks.harness import OPERATOR_NAMESPACE, OperatorProcess, bounded, control_plane, key_body, kubectl
from credop import names
from credop.kube.client import Kube, load_configuration

GOAL = 1.5
OPERATOR_THREADS = 32
"""The operator's Kubernetes client threads (``Kube``'s default): the floor's writers get as many."""
REQUESTS = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
COUNTED = ("serviceaccountkeys", "secrets", "events")
CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-controller-manager")


# Counting what the API server serves and what watches deliver -------------------------------
def api_requests(kubeconfig: Path) -> collections.Counter[tuple[str, str]]:
    """The API server's request counter for the counted resources, by (verb, resource)."""
    text = kubectl(kubeconfig, "get", "--raw", "/metrics").stdout
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in text.splitlines():
        match = REQUESTS.match(line)
        if not match:
            continue
        labels = dict(item.split("=", 1) for item in match["labels"].split(","))
        resource = labels.get("resource", "").strip('"')
        subresource = labels.get("subresource", "").strip('"')
        if resource in COUNTED:
            key = resource + (f"/{subresource}" if subresource else "")
            counts[labels.get("verb", "").strip('"'), key] += int(float(match["value"]))
    return counts


def per_key(
    before: collections.Counter[tuple[str, str]], after: collections.Counter[tuple[str, str]], count: int
) -> str:
    delta = {key: after[key] - before.get(key, 0) for key in after}
    shown = [
        f"{verb} {resource} {value / count:.2f}"
        for (verb, resource), value in sorted(delta.items())
        if value > 0 and verb not in ("WATCH",)
    ]
    total = sum(value for (verb, _), value in delta.items() if verb not in ("WATCH", "LIST", "GET"))
    return f"{total / count:.2f} writes/key ({', '.join(shown)})"


class WatchCounter:
    """Counts the watch events an operator watching what credop watches would receive."""

    def __init__(self, kubeconfig: Path) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self._api = kubernetes.client.ApiClient(load_configuration(kubeconfig))
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._keys, daemon=True),
            threading.Thread(target=self._secrets, daemon=True),
        ]
        self._streams: list[Any] = []
        self._ready = threading.Barrier(3)

    def __enter__(self) -> WatchCounter:
        for thread in self._threads:
            thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(1.0)  # the last events in flight
        self._stop.set()
        for stream in list(self._streams):
            stream.stop()

    def _follow(self, kind: str, call: Any, *args: Any, **kwargs: Any) -> None:
        listing = call(*args, **kwargs, _preload_content=False)
        version = json.loads(listing.data)["metadata"]["resourceVersion"]
        self._ready.wait(30)
        while not self._stop.is_set():
            stream = kubernetes.watch.Watch()
            self._streams.append(stream)
            try:
                for event in stream.stream(call, *args, resource_version=version, timeout_seconds=60, **kwargs):
                    if self._stop.is_set():
                        return
                    version = event["raw_object"]["metadata"]["resourceVersion"]
                    self.counts[f"{kind} {event['type']}"] += 1
            except Exception as error:  # a watch that broke: resume from the last version seen
                self.errors[f"{kind} {type(error).__name__}"] += 1
                time.sleep(0.1)

    def _keys(self) -> None:
        custom = kubernetes.client.CustomObjectsApi(self._api)
        self._follow(
            "serviceaccountkeys", custom.list_cluster_custom_object, "credop.dev", "v1alpha1", "serviceaccountkeys"
        )

    def _secrets(self) -> None:
        core = kubernetes.client.CoreV1Api(self._api)
        self._follow("secrets", core.list_secret_for_all_namespaces, label_selector=names.MANAGED_SELECTOR)

    def per_key(self, count: int) -> str:
        total = sum(self.counts.values())
        shown = ", ".join(f"{name} {value / count:.2f}" for name, value in sorted(self.counts.items()))
        broken = f"; watches resumed: {dict(self.errors)}" if self.errors else ""
        return f"{total / count:.2f} events/key ({shown}){broken}"


# The two runs ----------------------------------------------------------------------------------
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
        timeout_seconds=900,
    ):
        item = event["object"]
        if (item.get("status") or {}).get("phase") == "Active":
            active.add(item["metadata"]["name"])
        if len(active) >= count:
            stream.stop()
    done.set()


async def templates(kube: Kube, namespace: str) -> dict[str, Any]:
    """What credop wrote for one of its keys: record, tenant Secret, status, Events (bodies to copy)."""
    key = await kube.get_object("serviceaccountkeys", namespace, "key-00000")
    uid = key["metadata"]["uid"]
    record = await kube.read_secret(OPERATOR_NAMESPACE, names.record_name(uid))
    tenant = await kube.read_secret(namespace, key["status"]["secretRef"]["name"])
    events = await kube._call(kube.core.list_namespaced_event, namespace, field_selector=f"involvedObject.uid={uid}")
    return {"status": key["status"], "record": record, "tenant": tenant, "events": events.get("items") or []}


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    for field in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences", "generateName"):
        meta.pop(field, None)
    return body


async def floor(
    kube: Kube, namespace: str, count: int, concurrency: int, template: dict[str, Any], *, writers: int
) -> float:
    """Create the keys at ``concurrency``; as each create returns, ``writers`` workers make credop's writes for it
    (pipelined as the operator is, with no watch and no processing in between)."""
    queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()

    async def create(index: int) -> None:
        name = f"floor-{index:05d}"
        created = await kube.create_object("serviceaccountkeys", namespace, key_body(name, namespace))
        queue.put_nowait((name, created["metadata"]["uid"]))

    async def write(name: str, uid: str) -> None:
        owner = {
            "apiVersion": "credop.dev/v1alpha1",
            "kind": "ServiceAccountKey",
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        record = _clean(copy.deepcopy(template["record"]))
        record["metadata"]["name"] = names.record_name(uid)
        record["metadata"]["labels"][names.OWNER_UID_LABEL] = uid
        record["metadata"]["labels"]["bench"] = "floor"
        record["metadata"]["annotations"][names.OWNER_ANNOTATION] = f"{namespace}/{name}"
        await kube.create_secret(OPERATOR_NAMESPACE, record)
        tenant = _clean(copy.deepcopy(template["tenant"]))
        tenant["metadata"].update(name=name, namespace=namespace, ownerReferences=[owner])
        await kube.create_secret(namespace, tenant)
        status = {**template["status"], "secretRef": {"name": name}}
        await kube.patch_status("serviceaccountkeys", namespace, name, {"status": status})
        for event in template["events"]:
            body = _clean(copy.deepcopy(event))
            body["metadata"] = {"generateName": f"{name}.", "namespace": namespace}
            body["involvedObject"] = {**body["involvedObject"], "name": name, "namespace": namespace, "uid": uid}
            await kube.create_event(namespace, body)

    async def writer() -> None:
        while (item := await queue.get()) is not None:
            await write(*item)

    started = time.perf_counter()
    workers = [asyncio.create_task(writer()) for _ in range(writers)]
    await bounded(concurrency, [create(i) for i in range(count)])
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return time.perf_counter() - started


def _py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the operator (raw collapsed stacks into ``output``) until interrupted."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "-p", str(pid), "-r", "200", "-f", "raw", "-o", str(output), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(names_: tuple[str, ...], plane: Path) -> dict[str, float]:
    """CPU seconds used so far by this control plane's processes (their command lines name its folder), by name."""
    used: dict[str, float] = {}
    for process in psutil.process_iter(["name", "cpu_times", "cmdline"]):
        name = process.info["name"] or ""
        if name in names_ and str(plane) in " ".join(process.info["cmdline"] or ()):
            times = process.info["cpu_times"]
            used[name] = used.get(name, 0.0) + times.user + times.system
    return used


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> str:
    return ", ".join(f"{name} {after.get(name, 0) - before.get(name, 0):.1f}" for name in sorted(after))


async def measure(
    kubeconfig: Path, count: int, concurrency: int, *, profile: Path | None = None, run: str = ""
) -> dict[str, Any]:
    kube = Kube(load_configuration(kubeconfig), threads=concurrency + 8)
    run = run or uuid.uuid4().hex[:6]
    floor_ns, credop_ns = f"bench-floor-{run}", f"bench-credop-{run}"
    for namespace in (floor_ns, credop_ns):
        kubectl(kubeconfig, "create", "namespace", namespace)
    figures: dict[str, Any] = {}
    operator = OperatorProcess.start(kubeconfig)
    try:
        operator.wait_serving()
        await asyncio.sleep(2)
        before, cpu_before = api_requests(kubeconfig), cpu_seconds(CONTROL_PLANE, kubeconfig.parent)
        operator_before = psutil.Process(operator.process.pid).cpu_times()
        sampler = _py_spy(operator.process.pid, profile) if profile else None
        with WatchCounter(kubeconfig) as watched:
            figures["credop_seconds"] = await credop_run(kube, kubeconfig, credop_ns, count, concurrency)
            await asyncio.sleep(3)  # Events are posted in the background: count them too
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(30)
        operator_after = psutil.Process(operator.process.pid).cpu_times()
        used = operator_after.user + operator_after.system - operator_before.user - operator_before.system
        plane_cpu = cpu_delta(cpu_before, cpu_seconds(CONTROL_PLANE, kubeconfig.parent))
        figures["credop_cpu"] = f"{plane_cpu}, credop operator {used:.1f}"
        figures["credop_requests"] = per_key(before, api_requests(kubeconfig), count)
        figures["credop_events"] = watched.per_key(count)
    finally:
        operator.stop()
    template = await templates(kube, credop_ns)
    figures["event_reasons"] = [event.get("reason") for event in template["events"]]
    before, cpu_before = api_requests(kubeconfig), cpu_seconds(CONTROL_PLANE, kubeconfig.parent)
    with WatchCounter(kubeconfig) as watched:
        figures["floor_seconds"] = await floor(kube, floor_ns, count, concurrency, template, writers=OPERATOR_THREADS)
    figures["floor_cpu"] = cpu_delta(cpu_before, cpu_seconds(CONTROL_PLANE, kubeconfig.parent))
    figures["floor_requests"] = per_key(before, api_requests(kubeconfig), count)
    figures["floor_events"] = watched.per_key(count)
    kube.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=int(os.environ.get("BENCH_COUNT", "1000")))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="credop then floor, this many times (median ratio)")
    parser.add_argument("--profile", type=Path, help="sample the operator with py-spy into this file (raw stacks)")
    args = parser.parse_args()
    count = args.count
    ratios = []
    print(f"reconcile throughput, {count} ServiceAccountKeys, client concurrency {args.concurrency}")
    with control_plane() as kubeconfig:
        for index in range(args.repeat):
            figures = asyncio.run(
                measure(kubeconfig, count, args.concurrency, profile=args.profile, run=f"{index}{uuid.uuid4().hex[:5]}")
            )
            ratio = figures["credop_seconds"] / figures["floor_seconds"]
            ratios.append(ratio)
            print(f" run {index + 1}:")
            print(
                f"  credop (create key, operator records, delivers, writes status, posts Events), until Active: "
                f"{figures['credop_seconds']:7.2f} s  {count / figures['credop_seconds']:7.1f}/s"
            )
            print(
                f"  floor (plain client: create key, record Secret, tenant Secret, status, "
                f"{len(figures['event_reasons'])} Event(s) {figures['event_reasons']}): "
                f"{figures['floor_seconds']:7.2f} s  {count / figures['floor_seconds']:7.1f}/s"
            )
            print(f"  ratio credop/floor: {ratio:.2f}x")
            print(f"  API requests per key, credop run: {figures['credop_requests']}")
            print(f"  API requests per key, floor run:  {figures['floor_requests']}")
            print(f"  watch events per key, credop run: {figures['credop_events']}")
            print(f"  watch events per key, floor run:  {figures['floor_events']}")
            print(f"  CPU seconds, credop run: {figures['credop_cpu']}")
            print(f"  CPU seconds, floor run:  {figures['floor_cpu']}")
    ratio = statistics.median(ratios)
    print(f"  median ratio credop/floor: {ratio:.2f}x (runs: {', '.join(f'{r:.2f}' for r in ratios)}; goal <= {GOAL}x)")
    goal = {"goal": "reconcile time / floor", "measured": round(ratio, 3), "target": f"<= {GOAL}", "met": ratio <= GOAL}
    print("GOALS " + json.dumps([goal]))


if __name__ == "__main__":
    main()
