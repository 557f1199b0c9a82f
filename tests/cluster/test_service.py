"""The credential service on the real control plane: two replicas against the operator.

Each replica is a :class:`~credop.service.CredentialService` in its own thread
and event loop, with its own watches, exactly as two pods would be.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import itertools
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import aiohttp
import kubernetes
import pytest
import urllib3

from credop.kube.client import Kube, load_configuration
from credop.service._kube import StatusUsageWriter
from credop.service._records import client_of
from tests.cluster.helpers import APIC, client_manifest, key_manifest, secret_data, wait_status
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE
from tests.cluster.service import (
    FLUSH_INTERVAL,
    FORM,
    Replica,
    active_client,
    call,
    revoke,
    token,
    token_on_every_replica,
    valid_on,
    verify,
)

pytestmark = pytest.mark.usefixtures("operator")
PROPAGATION = 2.0
"""Seconds within which every replica must see a deactivation, invalidation or revocation (the contract)."""


@pytest.fixture(scope="module")
def replicas(cluster: Cluster, operator_namespace: str) -> Iterator[tuple[Replica, Replica]]:
    first = Replica(cluster.kubeconfig, "a").start()
    second = Replica(cluster.kubeconfig, "b").start()
    yield first, second
    first.stop()
    second.stop()


def rejected_everywhere_within(replicas: tuple[Replica, ...], access_token: str, *, since: float, what: str) -> None:
    """Every replica rejects the token within :data:`PROPAGATION` seconds of ``since`` (a monotonic instant)."""
    for replica in replicas:
        remaining = max(0.0, since + PROPAGATION - time.monotonic())
        wait_for(
            lambda replica=replica: not valid_on(replica, access_token), timeout=remaining, interval=0.02, what=what
        )
    print(f"{what}: {time.monotonic() - since:.3f} s")


# Tests ------------------------------------------------------------------------------------------------
def test_a_token_from_one_replica_is_valid_on_the_other(
    cluster: Cluster, namespace: str, replicas: tuple[Replica, Replica]
) -> None:
    client_id, secret = active_client(cluster, namespace, "billing")
    second = replicas[1]
    from_first, from_second = token_on_every_replica(replicas, client_id, secret)
    for access_token in (from_first, from_second):
        for replica in replicas:
            answer = verify(replica, {"token": access_token, "method": "POST"})
            assert answer["valid"] and answer["tenant"] == namespace and answer["methodAllowed"] is False
    status, answer = call(
        f"{second.url}/oauth2/introspect",
        urllib.parse.urlencode({"token": from_first, "client_id": client_id, "client_secret": secret}).encode(),
        FORM,
    )
    assert status == 200 and answer["active"] is True and answer["client_id"] == f"{namespace}/billing"
    jwks = [json.loads(urllib.request.urlopen(f"{r.url}/.well-known/jwks.json", timeout=10).read()) for r in replicas]
    assert jwks[0] == jwks[1] and jwks[0]["keys"]


def test_invalidate_tokens_reaches_both_replicas_within_two_seconds(
    cluster: Cluster, namespace: str, replicas: tuple[Replica, Replica]
) -> None:
    client_id, secret = active_client(cluster, namespace, "inval")
    issued = token_on_every_replica(replicas, client_id, secret)
    assert all(valid_on(replica, access_token) for replica in replicas for access_token in issued)
    time.sleep(1.1)  # the invalidation instant is a whole second: leave the tokens' second behind
    changed = time.monotonic()
    cluster.custom.patch_namespaced_custom_object(
        "credop.dev",
        "v1alpha1",
        namespace,
        APIC,
        "inval",
        {"metadata": {"annotations": {"credop.dev/invalidate-tokens": "t1"}}},
    )
    for access_token in issued:
        rejected_everywhere_within(
            replicas, access_token, since=changed, what="every replica to reject the invalidated token"
        )
    wait_status(cluster, namespace, "inval", lambda status: status.get("invalidateTokensHandled") == "t1", plural=APIC)
    fresh = token_on_every_replica(replicas, client_id, secret)
    assert all(valid_on(replica, access_token) for replica in replicas for access_token in fresh)


def test_deactivation_reaches_both_replicas_within_two_seconds(
    cluster: Cluster, namespace: str, replicas: tuple[Replica, Replica]
) -> None:
    client_id, secret = active_client(cluster, namespace, "deact")
    issued = token_on_every_replica(replicas, client_id, secret)
    changed = time.monotonic()
    cluster.custom.patch_namespaced_custom_object(
        "credop.dev", "v1alpha1", namespace, APIC, "deact", {"spec": {"active": False}}
    )
    for access_token in issued:
        rejected_everywhere_within(
            replicas, access_token, since=changed, what="every replica to reject the deactivated client's token"
        )
    for replica in replicas:
        status, answer = token(replica, client_id, secret)
        assert (status, answer["error"]) == (401, "invalid_client")


def test_revocation_reaches_both_replicas_within_two_seconds(
    cluster: Cluster, namespace: str, replicas: tuple[Replica, Replica]
) -> None:
    client_id, secret = active_client(cluster, namespace, "revoker")
    revoked, kept = token_on_every_replica(replicas, client_id, secret)
    changed = time.monotonic()
    assert revoke(replicas[0], client_id, secret, revoked) == 200
    rejected_everywhere_within(replicas, revoked, since=changed, what="every replica to reject the revoked token")
    assert all(valid_on(replica, kept) for replica in replicas)
    shared = cluster.core.read_namespaced_config_map(f"credop-revocations-{namespace}", OPERATOR_NAMESPACE).data
    assert any(int(expiry) > time.time() for expiry in shared.values())


def test_an_access_key_and_a_chosen_secret_work_on_both_replicas(
    cluster: Cluster, namespace: str, replicas: tuple[Replica, Replica]
) -> None:
    cluster.apply(key_manifest("ci", namespace, roles=[{"name": "GlobalViewer"}]))
    status = wait_status(cluster, namespace, "ci", lambda status: status.get("phase") == "Active")
    secret_key = secret_data(cluster, namespace, "ci")["secretKey"]
    token_on_every_replica(replicas, status["accessKeyId"], secret_key)
    for replica in replicas:
        answer = verify(replica, {"accessKeyId": status["accessKeyId"], "secretKey": secret_key, "method": "GET"})
        assert (
            answer["valid"] and answer["roles"] == [{"name": "GlobalViewer", "scope": []}] and answer["methodAllowed"]
        )
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "mine"}, "stringData": {"clientSecret": "s3cret-Pass"}}
    )
    client_id = f"{namespace}/own"
    cluster.apply(client_manifest("own", namespace, clientSecretRef={"name": "mine"}))
    wait_status(cluster, namespace, "own", lambda status: status.get("phase") == "Active", plural=APIC)
    token_on_every_replica(replicas, client_id, "s3cret-Pass")
    for replica in replicas:
        assert token(replica, client_id, "s3cret-Wrong")[0] == 401


def test_ten_thousand_token_requests_write_last_used_at_once_per_flush_interval(
    cluster: Cluster, namespace: str, replicas: tuple[Replica, Replica]
) -> None:
    client_id, secret = active_client(cluster, namespace, "busy")
    token_on_every_replica(replicas, client_id, secret)
    uid = cluster.get(APIC, namespace, "busy")["metadata"]["uid"]
    observed: list[str] = []
    done = threading.Event()
    watching = threading.Thread(
        target=_record_last_used, args=(cluster, namespace, "busy", observed, done), daemon=True
    )
    watching.start()
    started = time.monotonic()
    statuses = asyncio.run(_hammer([r.url for r in replicas], client_id, secret, total=10_000))
    elapsed = time.monotonic() - started
    wait_for(
        lambda: (
            not any(uid in replica.unwritten_uses() for replica in replicas)
            and observed
            and observed[-1] == cluster.get(APIC, namespace, "busy")["status"].get("lastUsedAt")
        ),
        timeout=FLUSH_INTERVAL * 5,
        what="the last uses flushed and the watch to see the stored lastUsedAt",
    )
    done.set()
    cluster.custom.patch_namespaced_custom_object(  # one more event ends the watch
        "credop.dev", "v1alpha1", namespace, APIC, "busy", {"metadata": {"annotations": {"test/done": "1"}}}
    )
    watching.join(10)
    assert statuses == {200: 10_000}
    windows = int(elapsed / FLUSH_INTERVAL) + 3
    for replica in replicas:
        writes = [at for written_uid, at in replica.usage_writes if written_uid == uid]
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(writes)]
        assert all(gap >= FLUSH_INTERVAL for gap in gaps), gaps
        assert len(writes) <= windows
    total = sum(1 for replica in replicas for written_uid, _ in replica.usage_writes if written_uid == uid)
    print(f"10,000 token requests in {elapsed:.1f} s: {total} lastUsedAt writes by 2 replicas, {len(observed)} stored")
    assert 1 <= len(observed) <= total <= 2 * windows
    last_used = cluster.get(APIC, namespace, "busy")["status"]["lastUsedAt"]
    assert last_used == observed[-1]


def _record_last_used(cluster: Cluster, namespace: str, name: str, observed: list[str], done: threading.Event) -> None:
    """Every distinct lastUsedAt the API server stored, in order, until ``done``."""
    api = kubernetes.client.CustomObjectsApi(cluster.api_client())
    stream = kubernetes.watch.Watch()
    try:
        for event in stream.stream(
            api.list_namespaced_custom_object,
            "credop.dev",
            "v1alpha1",
            namespace,
            APIC,
            field_selector=f"metadata.name={name}",
            timeout_seconds=120,
        ):
            value = (event["object"].get("status") or {}).get("lastUsedAt")
            if value and (not observed or observed[-1] != value):
                observed.append(value)
            if done.is_set():
                stream.stop()
    except urllib3.exceptions.HTTPError:
        return


async def _hammer(urls: list[str], client_id: str, secret: str, *, total: int) -> dict[int, int]:
    """``total`` token requests spread over the replicas, 32 at a time."""
    body = urllib.parse.urlencode({"grant_type": "client_credentials"})
    authorization = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    headers = {"Content-Type": FORM, "Authorization": authorization}
    statuses: dict[int, int] = {}
    queue = iter(range(total))

    async def worker(session: aiohttp.ClientSession) -> None:
        for index in queue:
            async with session.post(f"{urls[index % len(urls)]}/oauth2/token", data=body, headers=headers) as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(32)))
    return statuses


def test_a_usage_write_never_lands_on_a_recreated_object(
    cluster: Cluster, namespace: str, replicas: tuple[Replica, Replica]
) -> None:
    """The status patch carries the uid it was meant for: a same-named successor is left alone."""
    cluster.apply(client_manifest("reborn", namespace))
    wait_status(cluster, namespace, "reborn", lambda status: status.get("phase") == "Active", plural=APIC)
    body = cluster.get(APIC, namespace, "reborn")
    predecessor = client_of({**body, "metadata": {**body["metadata"], "uid": "00000000-0000-0000-0000-000000000000"}})
    kube = Kube(load_configuration(cluster.kubeconfig))
    try:
        written = asyncio.run(StatusUsageWriter(kube).write(predecessor, datetime.datetime.now(datetime.UTC)))
    finally:
        kube.close()
    assert written is False
    assert "lastUsedAt" not in cluster.get(APIC, namespace, "reborn")["status"]
