"""ApiClients on the real control plane: secrets, the active-client limit, actions."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import kubernetes
import pytest

from credop.domain.keyformat import CLIENT_SECRET, recognised_format
from tests.cluster.helpers import (
    APIC,
    client_manifest,
    condition,
    count_active,
    holds_for,
    phases,
    policy_manifest,
    record_data,
    secret_data,
    wait_policy,
    wait_status,
)
from tests.cluster.kube import Cluster, wait_for

pytestmark = pytest.mark.usefixtures("operator")


def test_generated_client_secret_and_status(cluster: Cluster, namespace: str) -> None:
    cluster.apply(client_manifest("billing", namespace, permissionLevel="CanEdit", tokenValiditySeconds=600))
    status = wait_status(cluster, namespace, "billing", lambda s: s.get("phase") == "Active", plural=APIC)
    assert status["clientId"] == "billing"
    assert status["tokenValiditySeconds"] == 600
    assert condition(status, "Ready") == "True"
    data = secret_data(cluster, namespace, "billing")
    assert data["clientId"] == "billing"
    assert recognised_format(data["clientSecret"]) is CLIENT_SECRET
    assert data["tokenUrl"].endswith("/oauth2/token")
    assert "verifier" not in data
    assert record_data(cluster, namespace, "billing", APIC)["verifier"].startswith("hmac-sha256$")
    printed = cluster.kubectl("get", "apic", "-n", namespace).stdout
    assert "billing" in printed
    assert "CanEdit" in printed
    assert "600" in printed


def test_user_supplied_secret_is_hashed_not_copied(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "mine"}, "stringData": {"clientSecret": "s3cret-Pass"}}
    )
    cluster.apply(client_manifest("own", namespace, clientSecretRef={"name": "mine"}))
    wait_status(cluster, namespace, "own", lambda s: s.get("phase") == "Active", plural=APIC)
    data = secret_data(cluster, namespace, "own")
    assert "clientSecret" not in data and "verifier" not in data
    assert record_data(cluster, namespace, "own", APIC)["verifier"].startswith("$argon2id$")
    assert "s3cret-Pass" not in str(cluster.get(APIC, namespace, "own"))


def test_seven_character_client_secret_is_refused(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "weak"}, "stringData": {"clientSecret": "Ab1!xyz"}}
    )
    cluster.apply(client_manifest("weak", namespace, clientSecretRef={"name": "weak"}))
    status = wait_status(cluster, namespace, "weak", lambda s: s.get("phase") == "Failed", plural=APIC)
    assert status["reason"] == "InvalidClientSecret"
    assert "8 to 30 characters" in status["message"], "the status states the policy's rules"
    assert "Ab1!xyz" not in status["message"] and "7" not in status["message"], "never the value or its length"


def test_six_clients_give_five_active_and_a_freed_slot_goes_to_the_oldest(cluster: Cluster, namespace: str) -> None:
    for index in range(6):
        cluster.apply(client_manifest(f"c{index}", namespace))
        time.sleep(1.1)  # distinct creation seconds: "oldest" is unambiguous
    wait_for(
        lambda: sorted(p for p in phases(cluster, namespace).values() if p) == ["Active"] * 5 + ["Inactive"],
        what="5 Active + 1 Inactive",
    )
    waiting = wait_status(cluster, namespace, "c5", lambda s: s.get("reason") == "ActiveLimitReached", plural=APIC)
    assert condition(waiting, "Ready") == "False"
    cluster.apply(client_manifest("c6", namespace))
    wait_status(cluster, namespace, "c6", lambda s: s.get("reason") == "ActiveLimitReached", plural=APIC)
    cluster.apply(client_manifest("c2", namespace, active=False))
    wait_status(cluster, namespace, "c5", lambda s: s.get("phase") == "Active", plural=APIC)
    assert phases(cluster, namespace)["c6"] == "Inactive"
    assert phases(cluster, namespace)["c2"] == "Inactive"
    cluster.apply(client_manifest("c2", namespace, active=True))
    holds_for(lambda: phases(cluster, namespace)["c2"] == "Inactive", 2, what="c2 queued behind the older request")
    assert phases(cluster, namespace)["c2"] == "Inactive", "a re-activated client queues behind the older request"
    assert count_active(cluster, namespace) == 5


def test_fifty_concurrent_creates_never_show_more_than_five_active(cluster: Cluster, namespace: str) -> None:
    observed: list[int] = []
    stop = threading.Event()
    watcher_api = kubernetes.client.CustomObjectsApi(cluster.api_client())

    listed = watcher_api.list_namespaced_custom_object("credop.dev", "v1alpha1", namespace, APIC)
    since = listed["metadata"]["resourceVersion"]  # the watch starts here, so it misses nothing however late it opens

    def watch() -> None:
        stream = kubernetes.watch.Watch()
        active: set[str] = set()
        for event in stream.stream(
            watcher_api.list_namespaced_custom_object,
            "credop.dev",
            "v1alpha1",
            namespace,
            APIC,
            resource_version=since,
            timeout_seconds=60,
        ):
            obj = event["object"]
            name = obj["metadata"]["name"]
            if (obj.get("status") or {}).get("phase") == "Active" and event["type"] != "DELETED":
                active.add(name)
            else:
                active.discard(name)
            observed.append(len(active))
            if stop.is_set():
                stream.stop()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda i: cluster.custom.create_namespaced_custom_object(
                    "credop.dev", "v1alpha1", namespace, APIC, client_manifest(f"burst-{i:02d}", namespace)
                ),
                range(50),
            )
        )
    wait_for(lambda: count_active(cluster, namespace) == 5, timeout=90, what="five Active clients")
    wait_for(
        lambda: all(phase in ("Active", "Inactive") for phase in phases(cluster, namespace).values()),
        timeout=90,
        what="every client settled",
    )
    holds_for(lambda: max(observed, default=0) <= 5, 1, what="the watch never seeing more than five Active")
    stop.set()
    cluster.apply(client_manifest("burst-00", namespace, active=False))  # one more event ends the watch loop
    watcher.join(10)
    assert observed, "the watch saw nothing"
    assert max(observed) <= 5
    # burst-00 was probably Active: its slot goes to the oldest waiting client, a moment later
    wait_for(lambda: count_active(cluster, namespace) == 5, timeout=60, what="five Active after burst-00 left")


def test_policy_limit_and_token_validity_bounds(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        policy_manifest(
            namespace, maxActiveClients=2, tokenValidity={"defaultSeconds": 900, "minSeconds": 60, "maxSeconds": 3600}
        )
    )
    wait_policy(cluster, namespace)
    for name in ("a", "b", "c"):
        cluster.apply(client_manifest(name, namespace))
    wait_for(
        lambda: count_active(cluster, namespace) == 2 and phases(cluster, namespace).get("c") == "Inactive",
        what="2 of 3 Active",
    )
    assert (
        wait_status(cluster, namespace, "a", lambda s: "tokenValiditySeconds" in s, plural=APIC)["tokenValiditySeconds"]
        == 900
    )
    cluster.apply(client_manifest("long", namespace, tokenValiditySeconds=7200))
    failed = wait_status(cluster, namespace, "long", lambda s: s.get("phase") == "Failed", plural=APIC)
    assert "spec.tokenValiditySeconds" in failed["message"]


def test_duplicate_client_id_fails_the_newer_client(cluster: Cluster, namespace: str) -> None:
    cluster.apply(client_manifest("first", namespace, clientId="shared-id"))
    wait_status(cluster, namespace, "first", lambda s: s.get("phase") == "Active", plural=APIC)
    time.sleep(1.1)  # distinct creation seconds: "the newer client" is unambiguous
    cluster.apply(client_manifest("second", namespace, clientId="shared-id"))
    failed = wait_status(cluster, namespace, "second", lambda s: s.get("phase") == "Failed", plural=APIC)
    assert "spec.clientId" in failed["message"]


def test_client_id_is_editable_without_reminting(cluster: Cluster, namespace: str) -> None:
    cluster.apply(client_manifest("rename", namespace, clientId="old-id"))
    wait_status(cluster, namespace, "rename", lambda s: s.get("phase") == "Active", plural=APIC)
    before = secret_data(cluster, namespace, "rename")
    cluster.apply(client_manifest("rename", namespace, clientId="new-id"))
    wait_status(cluster, namespace, "rename", lambda s: s.get("clientId") == "new-id", plural=APIC)
    after = wait_for(
        lambda: (d := secret_data(cluster, namespace, "rename"))["clientId"] == "new-id" and d,
        what="the Secret's clientId",
    )
    assert after["clientSecret"] == before["clientSecret"]


def test_invalidate_tokens_and_rotate(cluster: Cluster, namespace: str) -> None:
    cluster.apply(client_manifest("act", namespace))
    wait_status(cluster, namespace, "act", lambda s: s.get("phase") == "Active", plural=APIC)
    before = secret_data(cluster, namespace, "act")
    cluster.kubectl(
        "annotate", "apic", "act", "-n", namespace, "credop.dev/invalidate-tokens=t1", "credop.dev/rotate=r1"
    )
    status = wait_status(
        cluster,
        namespace,
        "act",
        lambda s: s.get("keyGeneration") == 2 and s.get("invalidateTokensHandled") == "t1",
        plural=APIC,
    )
    assert status["tokensInvalidBefore"]
    assert secret_data(cluster, namespace, "act")["clientSecret"] != before["clientSecret"]
    reasons = {e["reason"] for e in cluster.events(namespace) if e["involvedObject"]["name"] == "act"}
    assert {"Minted", "Rotated", "TokensInvalidated"} <= reasons


def test_client_id_over_49_characters_is_refused(cluster: Cluster, namespace: str) -> None:
    refused = cluster.apply(client_manifest("long-id", namespace, clientId="x" * 50), check=False)
    assert refused.returncode != 0
    assert "spec.clientId" in refused.stderr


def test_secret_data_is_plain_base64(cluster: Cluster, namespace: str) -> None:
    cluster.apply(client_manifest("b64", namespace))
    wait_status(cluster, namespace, "b64", lambda s: s.get("phase") == "Active", plural=APIC)
    raw = cluster.core.read_namespaced_secret("b64", namespace).data["clientId"]
    assert base64.b64decode(raw) == b"b64"


def test_the_leak_check_finds_a_planted_secret(cluster: Cluster, namespace: str) -> None:
    from tests.cluster.kube import secret_leaks

    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "planted"}, "stringData": {"v": "planted-Secret-1"}}
    )
    cluster.apply(client_manifest("plant", namespace))
    wait_status(cluster, namespace, "plant", lambda s: s.get("phase") == "Active", plural=APIC)
    cluster.kubectl("annotate", "apic", "plant", "-n", namespace, "leak=planted-Secret-1")
    assert secret_leaks(cluster, namespace, []) == ["apiclients/plant annotations"]
    assert secret_leaks(cluster, namespace, ["log planted-Secret-1"]) == [
        "apiclients/plant annotations",
        "operator log",
    ]
    cluster.kubectl("annotate", "apic", "plant", "-n", namespace, "leak-")


def test_deactivation_invalidates_earlier_tokens(cluster: Cluster, namespace: str) -> None:
    cluster.apply(client_manifest("pause", namespace))
    before = wait_status(cluster, namespace, "pause", lambda s: s.get("phase") == "Active", plural=APIC)
    assert "tokensInvalidBefore" not in before
    cluster.apply(client_manifest("pause", namespace, active=False))
    paused = wait_status(cluster, namespace, "pause", lambda s: s.get("phase") == "Inactive", plural=APIC)
    assert paused["tokensInvalidBefore"], "tokens issued while it was active must not come back with it"
    cluster.apply(client_manifest("pause", namespace, active=True))
    again = wait_status(cluster, namespace, "pause", lambda s: s.get("phase") == "Active", plural=APIC)
    assert again["tokensInvalidBefore"] == paused["tokensInvalidBefore"]
