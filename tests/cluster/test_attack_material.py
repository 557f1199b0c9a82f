"""Attacks on credential material: forged Secrets, tenant-chosen verifier costs, identifiers and grace deadlines.

Every attack is made by a tenant with the built-in ``edit`` role in its own
namespace (which includes the chart's credop-editor); each test checks that the
attack fails and that the victim keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import jwt
from argon2 import PasswordHasher

from credop.domain.verifiers import password_verifier
from tests.cluster.helpers import holds_for
from tests.cluster.hostile import API_VERSION, HostileBed, Tenant, active_client, active_key, client, key
from tests.cluster.kube import wait_for

ATTACKER = "127.0.0.2"
OBSERVATION = 3.0
"""Seconds an attack is given to take effect (watches deliver in milliseconds)."""


def never_within(seconds: float, happened: Callable[[], bool]) -> None:
    """``happened()`` stays false for ``seconds`` (an attack given time to work)."""
    holds_for(lambda: not happened(), seconds, interval=0.2, what="the attack had no effect")


def anchor(tenant: Tenant) -> dict[str, str]:
    """An object of the tenant's own, as a second owner that keeps a forged Secret from garbage collection."""
    tenant.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "anchor"}, "data": {}})
    uid = tenant.get("configmap", "anchor")["metadata"]["uid"]
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": "anchor", "uid": uid}


def test_a_forged_secret_in_another_namespace_does_not_impersonate_a_client(hostile: HostileBed) -> None:
    victim, attacker = hostile.tenant(prefix="victim"), hostile.tenant(prefix="attacker")
    client_id, secret = active_client(victim, "payments")
    issued = hostile.token_when_ready(client_id, secret).body["access_token"]
    uid = jwt.decode(issued, options={"verify_signature": False})["credential_uid"]
    chosen = "Attacker-Chosen-Secret-1!"
    owners = [{"apiVersion": API_VERSION, "kind": "ApiClient", "name": "payments", "uid": uid}, anchor(attacker)]
    labels = {"app.kubernetes.io/managed-by": "credop"}
    attacker.create_secret("forged", {"verifier": password_verifier(chosen)}, labels=labels, ownerReferences=owners)
    record_labels = {**labels, "credop.dev/record": "ApiClient", "credop.dev/owner-uid": uid}
    annotations = {"credop.dev/identifier": client_id.split("/")[1]}
    attacker.create_secret(
        f"credop-record-{uid}", {"verifier": password_verifier(chosen)}, labels=record_labels, annotations=annotations
    )
    never_within(OBSERVATION, lambda: hostile.token(client_id, chosen, source=ATTACKER).status == 200)
    assert hostile.token(client_id, secret).status == 200, "the victim's own secret must keep working"
    attacker.kubectl("delete", "secret", "forged", f"credop-record-{uid}")
    never_within(OBSERVATION, lambda: hostile.token(client_id, secret).status != 200)


def test_a_tampered_access_key_id_is_not_taken_over_by_a_rotation(hostile: HostileBed) -> None:
    victim, attacker = hostile.tenant(prefix="victim"), hostile.tenant(prefix="attacker")
    victim_id, victim_secret = active_key(victim, "deploy")
    own_id, _ = active_key(attacker, "mine")
    attacker.kubectl("annotate", "--overwrite", "secret", "mine", f"credop.dev/access-key-id={victim_id}")
    attacker.kubectl("annotate", "sak", "mine", "credop.dev/rotate=steal")
    wait_for(lambda: attacker.get("sak", "mine")["status"].get("rotateHandled") == "manual:steal", what="the rotation")
    assert attacker.get("sak", "mine")["status"]["accessKeyId"] == own_id
    assert attacker.secret("mine")["accessKeyId"] == own_id
    answer = hostile.verify({"accessKeyId": victim_id, "secretKey": victim_secret})
    assert answer.status == 200 and answer.body["valid"] is True, answer.body


def test_a_verifier_with_a_costly_argon2_cost_is_never_used(hostile: HostileBed) -> None:
    attacker = hostile.tenant(prefix="attacker")
    attacker.create_secret("chosen", {"clientSecret": "Own-Chosen-Secret-9!"})
    attacker.apply(client("costly", clientSecretRef={"name": "chosen"}))
    attacker.wait_phase("apiclients", "costly", "Active")
    client_id = f"{attacker.namespace}/costly"
    hostile.token_when_ready(client_id, "Own-Chosen-Secret-9!")
    costly = PasswordHasher(time_cost=8, memory_cost=64 * 1024, parallelism=1).hash("anything")
    attacker.kubectl(
        "patch",
        "secret",
        "costly",
        "--type=merge",
        "-p",
        json.dumps({"stringData": {"verifier": costly, "previousVerifier": costly}}),
    )
    assert hostile.service.service is not None
    state = hostile.service.service.state

    def costly_verifier_in_use() -> bool:
        credential = state.view.find(client_id)
        return credential is not None and costly in state.view.verifiers(credential, now=state.now())

    never_within(OBSERVATION, costly_verifier_in_use)
    assert hostile.token(client_id, "Own-Chosen-Secret-9!").status == 200


def test_a_grace_period_beyond_the_policy_is_refused_and_a_tampered_deadline_is_ignored(hostile: HostileBed) -> None:
    attacker = hostile.tenant(prefix="attacker")
    refused = attacker.apply(key("forever", rotation={"gracePeriod": "3650d"}), check=False)
    assert (
        refused.returncode != 0 and "spec.rotation.gracePeriod" in refused.stderr and "maxGracePeriod" in refused.stderr
    )
    access_key_id, old_secret = active_key(attacker, "brief", rotation={"gracePeriod": "4s"})
    attacker.kubectl("annotate", "sak", "brief", "credop.dev/rotate=r1")
    wait_for(lambda: attacker.get("sak", "brief")["status"].get("keyGeneration") == 2, what="the rotation")
    attacker.kubectl(
        "annotate", "--overwrite", "secret", "brief", "credop.dev/previous-valid-until=2100-01-01T00:00:00Z"
    )
    attacker.kubectl(
        "patch",
        "secret",
        "brief",
        "--type=merge",
        "-p",
        '{"stringData":{"previousVerifier":"hmac-sha256$x$' + "A" * 43 + '"}}',
    )
    wait_for(
        lambda: not hostile.verify({"accessKeyId": access_key_id, "secretKey": old_secret}).body["valid"],
        timeout=20,
        what="the old secret to stop working when its real grace period ends",
    )
    new_secret = attacker.secret("brief")["secretKey"]
    assert hostile.verify({"accessKeyId": access_key_id, "secretKey": new_secret}).body["valid"] is True
