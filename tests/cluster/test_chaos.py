"""Chaos: credentials created, rotated and deleted while the operator is killed 20 times and the API server is down 30 s.

Afterwards every credential has exactly one Secret and one record in credop's
namespace, no Secret was minted twice (one secret value per key generation,
one create per owner), none is orphaned (records of deleted credentials are
swept), status agrees with the Secret and the record, and no namespace ever
showed more Active ApiClients than its limit. Runs on its own control plane
(it stops the API server). CREDOP_CHAOS_COUNT sets the number of credentials
(default 1000), CREDOP_CHAOS_SEED the random seed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.cluster.kube import REPO, Cluster, existing_cluster_requested, wait_for

COUNT = int(os.environ.get("CREDOP_CHAOS_COUNT", "1000"))
SEED = int(os.environ.get("CREDOP_CHAOS_SEED", "20261123"))
"""The workload's and the kills' random seed (``benchmarks/chaos_seeds.py`` runs several)."""
RESYNC_SECONDS = 20
"""The operator's resync interval here: the safety net that finds what a killed process left undone."""
KILLS = 20
OUTAGE_SECONDS = 30
NAMESPACES = ("chaos-a", "chaos-b")
CLIENT_LIMIT = 5
GROUP, VERSION = "credop.dev", "v1alpha1"

pytestmark = pytest.mark.skipif(
    existing_cluster_requested(), reason="stops the API server: needs its own control plane"
)


@dataclass
class Recorder:
    """Everything the watches saw: Secret values per (owner, generation), Secret creates, active clients."""

    values: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    history: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    creates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    active: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    most_active: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stop: threading.Event = field(default_factory=threading.Event)

    def secret_event(self, kind: str, secret: Any) -> None:
        owners = secret.metadata.owner_references or []
        if not owners:
            return
        uid = owners[0].uid
        generation = (secret.metadata.annotations or {}).get("credop.dev/key-generation", "?")
        data = secret.data or {}
        value = data.get("secretKey") or data.get("clientSecret") or ""
        digest = hashlib.sha256(value.encode()).hexdigest()
        self.values[(uid, generation)].add(digest)
        annotations = secret.metadata.annotations or {}
        self.history[uid].append(
            f"{kind} {secret.metadata.namespace}/{secret.metadata.name} rv={secret.metadata.resource_version} "
            f"gen={generation} value={digest[:8]} minted={annotations.get('credop.dev/minted-at')} "
            f"request={annotations.get('credop.dev/rotation-request')} kind={owners[0].kind}"
        )
        if kind == "ADDED":
            self.creates[uid] += 1

    def client_event(self, kind: str, client: dict[str, Any]) -> None:
        namespace, name = client["metadata"]["namespace"], client["metadata"]["name"]
        if kind != "DELETED" and (client.get("status") or {}).get("phase") == "Active":
            self.active[namespace].add(name)
        else:
            self.active[namespace].discard(name)
        self.most_active[namespace] = max(self.most_active[namespace], len(self.active[namespace]))


def watch_forever(
    list_call: Callable[..., Any], on_event: Callable[[str, Any], None], stop: threading.Event, **kwargs: Any
) -> None:
    """List, then watch from that version; on any break (API server down, 410) list and watch again."""
    seen: set[str] = set()
    while not stop.is_set():
        try:
            listing = list_call(**kwargs)
            items = listing["items"] if isinstance(listing, dict) else listing.items
            version = (
                listing["metadata"]["resourceVersion"]
                if isinstance(listing, dict)
                else listing.metadata.resource_version
            )
            for item in items:
                uid = item["metadata"]["uid"] if isinstance(item, dict) else item.metadata.uid
                on_event("ADDED" if uid not in seen else "MODIFIED", item)
                seen.add(uid)
            for event in kubernetes.watch.Watch().stream(
                list_call, resource_version=version, timeout_seconds=30, **kwargs
            ):
                obj = event["object"]
                uid = obj["metadata"]["uid"] if isinstance(obj, dict) else obj.metadata.uid
                kind = "MODIFIED" if event["type"] == "ADDED" and uid in seen else event["type"]
                seen.add(uid)
                on_event(kind, obj)
                if stop.is_set():
                    return
        except Exception:  # the API server is down or the watch expired: start over
            time.sleep(0.5)


@contextlib.contextmanager
def operator_process(kubeconfig: Path) -> Iterator[Callable[[], None]]:
    """A `credop operator` process, and a function that SIGKILLs and restarts it."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "CREDOP_NAMESPACE": "credop-system",
        "CREDOP_LEADER_ELECTION": "false",
        "CREDOP_RESYNC_INTERVAL": str(RESYNC_SECONDS),
    }
    command = [sys.executable, "-m", "credop.cli", "operator", "--log-level", "INFO", "--log-format", "text"]
    path = Path(os.environ.get("CREDOP_CHAOS_OPERATOR_LOG") or kubeconfig.parent / "chaos-operator.log")
    with path.open("ab", buffering=0) as log:  # every run of the operator, in order
        print(f"operator log: {path}")

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)

        holder = {"process": start()}

        def kill_and_restart() -> None:
            holder["process"].send_signal(signal.SIGKILL)
            holder["process"].wait()
            log.write(f"--- operator killed at {time.strftime('%H:%M:%S')}, restarted ---\n".encode())
            holder["process"] = start()

        try:
            yield kill_and_restart
        finally:
            holder["process"].terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                holder["process"].wait(30)
            holder["process"].kill()


def retrying(call: Callable[[], Any]) -> Any:
    """Call until the API server answers (it may be down for the outage); 404/409 are answers."""
    for _ in range(240):
        try:
            return call()
        except kubernetes.client.ApiException as error:
            if error.status in (404, 409):
                return None
            time.sleep(0.5)
        except Exception:
            time.sleep(0.5)
    raise TimeoutError("the API server did not come back")


def workload(cluster: Cluster, rng: random.Random) -> dict[str, set[str]]:
    """Create COUNT credentials (one in ten an ApiClient), rotate one in five, delete one in ten."""
    custom = cluster.custom
    deleted: dict[str, set[str]] = defaultdict(set)

    def one(index: int) -> None:
        namespace = NAMESPACES[index % len(NAMESPACES)]
        plural, kind = ("apiclients", "ApiClient") if index % 10 == 0 else ("serviceaccountkeys", "ServiceAccountKey")
        name = f"c{index:05d}"
        spec = {} if kind == "ApiClient" else {"serviceAccount": "chaos"}
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        retrying(lambda: custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body))
        time.sleep(rng.random() * 2)
        if rng.random() < 0.2:
            patch = {"metadata": {"annotations": {"credop.dev/rotate": f"r{index}"}}}
            retrying(lambda: custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, patch))
        if rng.random() < 0.1:
            retrying(lambda: custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name))
            deleted[namespace].add(name)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(COUNT)))
    return deleted


def unsettled(cluster: Cluster) -> list[str]:
    """Credentials not yet Active/Inactive for their latest generation and rotation request."""
    pending = []
    for namespace in NAMESPACES:
        for plural in ("serviceaccountkeys", "apiclients"):
            for item in cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
                status = item.get("status") or {}
                annotations = item["metadata"].get("annotations") or {}
                wanted_rotation = annotations.get("credop.dev/rotate")
                name = f"{plural}/{namespace}/{item['metadata']['name']}"
                if (
                    status.get("phase") not in ("Active", "Inactive")
                    or status.get("observedGeneration") != item["metadata"]["generation"]
                ):
                    pending.append(
                        f"{name}: {status.get('phase')}/{status.get('reason')} observed {status.get('observedGeneration')}"
                    )
                elif wanted_rotation and status.get("rotateHandled") != f"manual:{wanted_rotation}":
                    pending.append(f"{name}: rotation {wanted_rotation} not handled ({status.get('rotateHandled')})")
    return pending


def test_nothing_is_lost_or_minted_twice_under_chaos() -> None:
    from testbed import ControlPlane

    rng = random.Random(SEED)
    with ControlPlane.start() as plane:
        cluster = Cluster(kubeconfig=plane.kubeconfig, workdir=plane.workdir)
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        for namespace in ("credop-system", *NAMESPACES):
            cluster.core.create_namespace({"metadata": {"name": namespace}})
        recorder = Recorder()
        api = kubernetes.client.ApiClient(cluster.api_client().configuration)
        watchers = [
            threading.Thread(
                target=watch_forever,
                args=(
                    kubernetes.client.CoreV1Api(api).list_secret_for_all_namespaces,
                    recorder.secret_event,
                    recorder.stop,
                ),
                kwargs={"label_selector": "app.kubernetes.io/managed-by=credop"},
                daemon=True,
            ),
            threading.Thread(
                target=watch_forever,
                args=(
                    kubernetes.client.CustomObjectsApi(api).list_cluster_custom_object,
                    recorder.client_event,
                    recorder.stop,
                ),
                kwargs={"group": GROUP, "version": VERSION, "plural": "apiclients"},
                daemon=True,
            ),
        ]
        for watcher in watchers:
            watcher.start()
        with operator_process(plane.kubeconfig) as kill_and_restart:
            load = ThreadPoolExecutor(max_workers=1).submit(workload, cluster, rng)
            outage_at = rng.randrange(KILLS // 2, KILLS)
            for round_ in range(KILLS):
                time.sleep(rng.uniform(0.5, 4.0))
                kill_and_restart()
                if round_ == outage_at:
                    plane.stop_apiserver()
                    time.sleep(OUTAGE_SECONDS)
                    plane.start_apiserver()
            deleted = load.result(timeout=1800)
            try:
                wait_for(lambda: not unsettled(cluster), timeout=600, interval=2, what="every credential to settle")
            except AssertionError:
                raise AssertionError(f"not settled after the chaos: {unsettled(cluster)[:20]}") from None
            # the checks run while the operator does: its resync sweeps the records of credentials
            # whose deletion a kill hid (one resync interval after its last start)
            time.sleep(5)
            recorder.stop.set()

            for namespace in NAMESPACES:
                credentials = {
                    item["metadata"]["uid"]: item
                    for plural in ("serviceaccountkeys", "apiclients")
                    for item in cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]
                }
                assert not {item["metadata"]["name"] for item in credentials.values()} & deleted[namespace]
                wait_for(
                    lambda namespace=namespace: _no_orphans(cluster, namespace),
                    timeout=120,
                    what="the garbage collector",
                )
                secrets = cluster.core.list_namespaced_secret(
                    namespace, label_selector="app.kubernetes.io/managed-by=credop"
                ).items
                owners = [s.metadata.owner_references[0].uid for s in secrets]
                assert sorted(owners) == sorted(credentials), (
                    "every credential has exactly one Secret, and every Secret an owner"
                )
                try:
                    records = wait_for(
                        lambda namespace=namespace, credentials=credentials: _records_match(
                            cluster, namespace, credentials
                        ),
                        timeout=RESYNC_SECONDS * 4,
                        what="exactly one record per credential (those of deleted ones swept by the resync)",
                    )
                except AssertionError:
                    raise AssertionError(_records_mismatch(cluster, namespace, credentials)) from None
                for secret in secrets:
                    owner = credentials[secret.metadata.owner_references[0].uid]
                    status = owner["status"]
                    annotations = secret.metadata.annotations
                    record = records[owner["metadata"]["uid"]]
                    assert str(status["keyGeneration"]) == annotations["credop.dev/key-generation"]
                    assert str(status["keyGeneration"]) == record["credop.dev/key-generation"]
                    if owner["kind"] == "ServiceAccountKey":
                        assert status["accessKeyId"] == annotations["credop.dev/access-key-id"]
                        assert status["accessKeyId"] == base64.b64decode(secret.data["accessKeyId"]).decode()
                        assert status["accessKeyId"] == record["credop.dev/identifier"]
        assert len(recorder.creates) >= COUNT * 0.8, "the Secret watch missed creations"
        twice = {key: len(values) for key, values in recorder.values.items() if len(values) > 1}
        assert not twice, f"secrets minted twice for the same generation: {twice}: " + "; ".join(
            line for uid, _generation in twice for line in recorder.history[uid]
        )
        created_again = [uid for uid, count in recorder.creates.items() if count > 1]
        assert not created_again, "a Secret was created more than once for one credential: " + "; ".join(
            line for uid in created_again for line in recorder.history[uid]
        )
        assert recorder.most_active, "the ApiClient watch saw nothing"
        assert max(recorder.most_active.values()) <= CLIENT_LIMIT


def _records_match(cluster: Cluster, namespace: str, credentials: dict[str, Any]) -> dict[str, dict[str, str]] | None:
    """credop's records for ``namespace`` (uid → annotations) when there is exactly one per credential."""
    records = cluster.core.list_namespaced_secret("credop-system", label_selector="credop.dev/record").items
    mine = {
        r.metadata.labels["credop.dev/owner-uid"]: r.metadata.annotations
        for r in records
        if r.metadata.annotations.get("credop.dev/owner", "").startswith(f"{namespace}/")
    }
    return mine if set(mine) == set(credentials) else None


def _records_mismatch(cluster: Cluster, namespace: str, credentials: dict[str, Any]) -> str:
    records = cluster.core.list_namespaced_secret("credop-system", label_selector="credop.dev/record").items
    mine = {
        r.metadata.labels["credop.dev/owner-uid"]: r.metadata.annotations.get("credop.dev/owner")
        for r in records
        if r.metadata.annotations.get("credop.dev/owner", "").startswith(f"{namespace}/")
    }
    orphans = sorted(owner for uid, owner in mine.items() if uid not in credentials)
    missing = sorted(f"{c['metadata']['name']} ({(c.get('status') or {}).get('phase')})" for uid, c in credentials.items() if uid not in mine)  # fmt: skip
    return f"records of {namespace} do not match its credentials: orphaned {orphans[:10]}, missing {missing[:10]}"


def _no_orphans(cluster: Cluster, namespace: str) -> bool:
    uids = {
        item["metadata"]["uid"]
        for plural in ("serviceaccountkeys", "apiclients")
        for item in cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]
    }
    secrets = cluster.core.list_namespaced_secret(namespace, label_selector="app.kubernetes.io/managed-by=credop").items
    return all(s.metadata.owner_references[0].uid in uids for s in secrets)
