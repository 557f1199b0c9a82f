"""ServiceAccountKeys on the real control plane: mint once, status, rotation, timers, Secrets."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import kubernetes
import pytest

from credop.domain.keyformat import ACCESS_KEY_ID, SECRET_KEY, recognised_format
from credop.domain.keyring import decode_keyring
from credop.domain.tokens import KEY_TOKEN_AUDIENCE
from tests.cluster.helpers import (
    SAK,
    active,
    condition,
    deployment_manifest,
    key_manifest,
    policy_manifest,
    record_data,
    secret_data,
    status_of,
    wait_gone,
    wait_policy,
    wait_status,
)
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE, TEST_ENDPOINT, OperatorThread

pytestmark = pytest.mark.usefixtures("operator")


def test_key_is_minted_once_into_an_owned_secret(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("ci", namespace, description="CI uploads", roles=[{"name": "GlobalViewer"}]))
    status = wait_status(cluster, namespace, "ci", active)
    assert recognised_format(status["accessKeyId"]) is ACCESS_KEY_ID
    assert status["secretRef"] == {"name": "ci"}
    assert condition(status, "Ready") == "True"
    assert status["observedGeneration"] == 1
    assert status["keyGeneration"] == 1
    assert status["expiresAt"] and status["rotationDueAt"] and "lastUsedAt" not in status

    secret = cluster.core.read_namespaced_secret("ci", namespace)
    owner = cluster.get(SAK, namespace, "ci")
    assert secret.metadata.owner_references[0].uid == owner["metadata"]["uid"]
    assert secret.metadata.owner_references[0].controller is True
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "credop"
    data = secret_data(cluster, namespace, "ci")
    assert data["accessKeyId"] == status["accessKeyId"]
    assert recognised_format(data["secretKey"]) is SECRET_KEY
    assert "verifier" not in data, "verifiers live in credop's record, not in the tenant's Secret"
    assert record_data(cluster, namespace, "ci")["verifier"].startswith("hmac-sha256$")
    assert data["secretKey"] not in json.dumps(owner)

    cluster.kubectl("patch", "sak", "ci", "-n", namespace, "--type=merge", "-p", '{"spec":{"description":"edited"}}')
    wait_status(cluster, namespace, "ci", lambda s: s.get("observedGeneration") == 2)
    assert secret_data(cluster, namespace, "ci") == data


def test_key_secret_is_garbage_collected_with_its_key(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("gone", namespace))
    wait_status(cluster, namespace, "gone", active)
    cluster.kubectl("delete", "sak", "gone", "-n", namespace)
    wait_gone(lambda: cluster.core.read_namespaced_secret("gone", namespace), timeout=60, what="the garbage collector")


def test_secret_template_and_custom_secret_name(cluster: Cluster, namespace: str) -> None:
    template = {
        "data": {"credentials": "key:{{ .accessKeyId }}::{{ .secretKey }},tenant id:{{ .tenant }}"},
        "labels": {"team": "payments"},
        "annotations": {"credop.dev/endpoint": "{{ .endpoint }}"},
    }
    cluster.apply(key_manifest("tpl", namespace, secretName="tpl-credentials", secretTemplate=template))
    status = wait_status(cluster, namespace, "tpl", active)
    data = secret_data(cluster, namespace, "tpl-credentials")
    assert data["credentials"] == f"key:{status['accessKeyId']}::{data['secretKey']},tenant id:{namespace}"
    secret = cluster.core.read_namespaced_secret("tpl-credentials", namespace)
    assert secret.metadata.labels["team"] == "payments"
    assert secret.metadata.annotations["credop.dev/endpoint"] == TEST_ENDPOINT


def test_unknown_template_variable_fails_naming_the_field(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("badtpl", namespace, secretTemplate={"data": {"x": "{{ .password }}"}}))
    status = wait_status(cluster, namespace, "badtpl", lambda s: s.get("phase") == "Failed")
    assert "spec.secretTemplate.data.x" in status["message"]
    with pytest.raises(kubernetes.client.ApiException):
        cluster.core.read_namespaced_secret("badtpl", namespace)


def test_rotate_annotation_mints_once_per_value(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("rot", namespace))
    first = wait_status(cluster, namespace, "rot", active)
    before = secret_data(cluster, namespace, "rot")
    cluster.kubectl("annotate", "sak", "rot", "-n", namespace, "credop.dev/rotate=r1")
    rotated = wait_status(cluster, namespace, "rot", lambda s: s.get("keyGeneration") == 2)
    after = secret_data(cluster, namespace, "rot")
    assert rotated["accessKeyId"] == first["accessKeyId"]
    assert after["secretKey"] != before["secretKey"]
    assert rotated["rotateHandled"] == "manual:r1"
    assert "previousVerifier" not in record_data(cluster, namespace, "rot")
    cluster.kubectl("patch", "sak", "rot", "-n", namespace, "--type=merge", "-p", '{"spec":{"description":"again"}}')
    wait_status(cluster, namespace, "rot", lambda s: s.get("observedGeneration") == 2)
    assert secret_data(cluster, namespace, "rot") == after
    reasons = [e["reason"] for e in cluster.events(namespace) if e["involvedObject"]["name"] == "rot"]
    assert reasons.count("Rotated") == 1
    assert "Minted" in reasons


def test_grace_period_keeps_the_previous_secret_until_it_ends(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("grace", namespace, rotation={"gracePeriod": "4s"}))
    wait_status(cluster, namespace, "grace", active)
    old = record_data(cluster, namespace, "grace")
    cluster.kubectl("annotate", "sak", "grace", "-n", namespace, "credop.dev/rotate=now")
    status = wait_status(cluster, namespace, "grace", lambda s: s.get("keyGeneration") == 2)
    assert status["previousSecretValidUntil"]
    assert record_data(cluster, namespace, "grace")["previousVerifier"] == old["verifier"]
    wait_status(cluster, namespace, "grace", lambda s: "previousSecretValidUntil" not in s, timeout=10)
    assert "previousVerifier" not in record_data(cluster, namespace, "grace")


def test_expiry_notice_then_expired_on_time(cluster: Cluster, namespace: str) -> None:
    cluster.apply(policy_manifest(namespace, defaultExpiry="6s", expiryNotifyBefore="3s"))
    wait_policy(cluster, namespace)
    cluster.apply(key_manifest("short", namespace))
    status = wait_status(cluster, namespace, "short", active)
    expires = datetime.datetime.fromisoformat(status["expiresAt"].replace("Z", "+00:00"))
    soon = wait_status(cluster, namespace, "short", lambda s: condition(s, "ExpiringSoon") == "True", timeout=10)
    assert soon["phase"] == "Active"
    wait_status(cluster, namespace, "short", lambda s: s.get("phase") == "Expired", timeout=10)
    assert datetime.datetime.now(datetime.UTC) - expires < datetime.timedelta(seconds=3)
    reasons = [e["reason"] for e in cluster.events(namespace)]
    assert "ExpiringSoon" in reasons
    assert "Expired" in reasons


def test_rotation_policy_warns_then_disables(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        policy_manifest(namespace, "strict", rotation={"period": "5s", "notifyBefore": "3s", "action": "Disable"})
    )
    wait_policy(cluster, namespace, "strict")
    cluster.apply(key_manifest("old", namespace, policyName="strict"))
    wait_status(cluster, namespace, "old", active)
    wait_status(cluster, namespace, "old", lambda s: condition(s, "RotationDue") == "True", timeout=10)
    disabled = wait_status(cluster, namespace, "old", lambda s: s.get("phase") == "Disabled", timeout=10)
    assert disabled["reason"] == "RotationOverdue"
    cluster.kubectl("annotate", "sak", "old", "-n", namespace, "credop.dev/rotate=fix")
    wait_status(cluster, namespace, "old", lambda s: s.get("keyGeneration") == 2 and s.get("phase") == "Active")


def test_idle_key_is_flagged_then_disabled(cluster: Cluster, namespace: str) -> None:
    cluster.apply(policy_manifest(namespace, usage={"maxIdle": "5s", "notifyBefore": "3s", "action": "Disable"}))
    wait_policy(cluster, namespace)
    cluster.apply(key_manifest("idle", namespace))
    wait_status(cluster, namespace, "idle", active)
    wait_status(cluster, namespace, "idle", lambda s: condition(s, "Unused") == "True", timeout=10)
    disabled = wait_status(cluster, namespace, "idle", lambda s: s.get("phase") == "Disabled", timeout=10)
    assert disabled["reason"] == "Unused"


def test_deleted_secret_is_reported_and_rotation_restores_it(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("lost", namespace))
    first = wait_status(cluster, namespace, "lost", active)
    cluster.core.delete_namespaced_secret("lost", namespace)
    missing = wait_status(cluster, namespace, "lost", lambda s: condition(s, "SecretMissing") == "True")
    assert missing["phase"] == "Failed"
    cluster.kubectl("annotate", "sak", "lost", "-n", namespace, "credop.dev/rotate=restore")
    restored = wait_status(
        cluster, namespace, "lost", lambda s: s.get("phase") == "Active" and s.get("keyGeneration") == 2
    )
    assert restored["accessKeyId"] == first["accessKeyId"]
    assert secret_data(cluster, namespace, "lost")["secretKey"]


def test_deactivated_key_keeps_its_secret(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("off", namespace))
    wait_status(cluster, namespace, "off", active)
    data = secret_data(cluster, namespace, "off")
    cluster.apply(key_manifest("off", namespace, active=False))
    status = wait_status(cluster, namespace, "off", lambda s: s.get("phase") == "Inactive")
    assert condition(status, "Ready") == "True"
    assert secret_data(cluster, namespace, "off") == data


def test_invalidate_tokens_is_recorded_once_per_value(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("inv", namespace))
    wait_status(cluster, namespace, "inv", active)
    cluster.kubectl("annotate", "sak", "inv", "-n", namespace, "credop.dev/invalidate-tokens=1")
    status = wait_status(cluster, namespace, "inv", lambda s: s.get("invalidateTokensHandled") == "1")
    first = status["tokensInvalidBefore"]
    time.sleep(1.1)  # tokensInvalidBefore is a whole second: a second invalidation would now show a later one
    cluster.kubectl("patch", "sak", "inv", "-n", namespace, "--type=merge", "-p", '{"spec":{"description":"x"}}')
    wait_status(cluster, namespace, "inv", lambda s: s.get("observedGeneration") == 2)
    assert status_of(cluster, namespace, "inv")["tokensInvalidBefore"] == first


def test_jwt_format_key_is_a_signed_token_with_the_roles(cluster: Cluster, namespace: str) -> None:
    roles = [{"name": "CloudAccountViewer", "scope": ["acct-1"]}]
    cluster.apply(key_manifest("jwtkey", namespace, format="JWT", roles=roles, expiresIn="30d"))
    status = wait_status(cluster, namespace, "jwtkey", active)
    token = secret_data(cluster, namespace, "jwtkey")["secretKey"]
    keys_secret = cluster.core.read_namespaced_secret("credop-keys", OPERATOR_NAMESPACE)
    keyring = decode_keyring(keys_secret.data)
    header = jwt.get_unverified_header(token)
    assert header["kid"] not in {k.kid for k in keyring.signing_keys}, "access-token keys never sign key JWTs"
    key = next(k for k in keyring.key_signing_keys if k.kid == header["kid"])
    claims = jwt.decode(token, key.private_key().public_key(), algorithms=["ES256"], audience=KEY_TOKEN_AUDIENCE)
    assert claims["roles"] == roles
    assert claims["access_key_id"] == status["accessKeyId"]
    expires = datetime.datetime.fromisoformat(status["expiresAt"].replace("Z", "+00:00"))
    assert claims["exp"] == int(expires.timestamp())


def test_never_expiring_key_fails_where_the_policy_forbids_it(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("forever", namespace, neverExpires=True))
    status = wait_status(cluster, namespace, "forever", lambda s: s.get("phase") == "Failed")
    assert "spec.neverExpires" in status["message"]


def test_auto_rotate_restarts_the_workloads(cluster: Cluster, namespace: str) -> None:
    cluster.apps.create_namespaced_deployment(namespace, deployment_manifest("app"))
    cluster.apply(policy_manifest(namespace, rotation={"period": "9s", "notifyBefore": "None", "action": "None"}))
    wait_policy(cluster, namespace)
    rotation = {"autoRotate": True, "restartTargets": [{"kind": "Deployment", "name": "app"}]}
    cluster.apply(key_manifest("auto", namespace, rotation=rotation))
    first = wait_status(cluster, namespace, "auto", active)
    rotated = wait_status(cluster, namespace, "auto", lambda s: s.get("keyGeneration", 0) >= 2, timeout=15)
    assert rotated["rotateHandled"].startswith("auto:")
    assert rotated["lastRotatedAt"] > first["lastRotatedAt"]
    template = cluster.apps.read_namespaced_deployment("app", namespace).spec.template
    assert "kubectl.kubernetes.io/restartedAt" in (template.metadata.annotations or {})


def test_invalid_specs_are_refused_at_apply_naming_the_field(cluster: Cluster, namespace: str) -> None:
    cases = [
        (
            key_manifest("a", namespace, expiresIn="1d", neverExpires=True),
            "set at most one of expiresAt, expiresIn and neverExpires",
        ),
        (key_manifest("b", namespace, roles=[{"name": "CloudAccountViewer"}]), "spec.roles[0].scope"),
        (key_manifest("c", namespace, expiresIn="ten days"), "spec.expiresIn"),
        (key_manifest("d", namespace, format="PEM"), "spec.format"),
    ]
    for manifest, message in cases:
        refused = cluster.apply(manifest, check=False)
        assert refused.returncode != 0, manifest
        assert message in refused.stderr, refused.stderr
    cluster.apply(key_manifest("e", namespace))
    changed = cluster.apply(key_manifest("e", namespace, format="JWT"), check=False)
    assert "spec.format is immutable" in changed.stderr


def test_operator_restart_does_not_remint(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("keep", namespace))
    wait_status(cluster, namespace, "keep", active)
    data = secret_data(cluster, namespace, "keep")
    second = OperatorThread(cluster.kubeconfig).start()
    try:
        cluster.kubectl(
            "patch", "sak", "keep", "-n", namespace, "--type=merge", "-p", '{"spec":{"description":"bump"}}'
        )
        wait_status(cluster, namespace, "keep", lambda s: s.get("observedGeneration") == 2)
    finally:
        second.stop()
    assert secret_data(cluster, namespace, "keep") == data


def test_leaving_active_invalidates_earlier_tokens(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("pause", namespace))
    wait_status(cluster, namespace, "pause", active)
    cluster.apply(key_manifest("pause", namespace, active=False))
    paused = wait_status(cluster, namespace, "pause", lambda s: s.get("phase") == "Inactive")
    assert paused["tokensInvalidBefore"]


def test_a_rotate_annotation_present_at_creation_is_met_by_the_first_secret(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("born-rotated", namespace, annotations={"credop.dev/rotate": "from-the-start"}))
    status = wait_status(
        cluster, namespace, "born-rotated", lambda s: s.get("rotateHandled") == "manual:from-the-start"
    )
    assert status["keyGeneration"] == 1
    cluster.kubectl("annotate", "--overwrite", "sak", "born-rotated", "-n", namespace, "credop.dev/rotate=later")
    rotated = wait_status(cluster, namespace, "born-rotated", lambda s: s.get("rotateHandled") == "manual:later")
    assert rotated["keyGeneration"] == 2


@contextlib.contextmanager
def resyncing_every_2_seconds(cluster: Cluster, operator: Any) -> Iterator[OperatorThread]:
    """An operator of the test's own, resyncing every 2 s, while the session's operator is paused."""
    config = dataclasses.replace(operator.thread.config, resync_interval=2.0)
    with operator.paused():
        lossy = OperatorThread(cluster.kubeconfig, config=config).start()
        try:
            yield lossy
        finally:
            lossy.stop()


def test_a_swallowed_event_is_made_good_by_the_periodic_resync(cluster: Cluster, operator: Any, namespace: str) -> None:
    """Every watch event after the mint is dropped; the resync still finds the rotation request."""
    with resyncing_every_2_seconds(cluster, operator) as lossy:
        cluster.apply(key_manifest("lossy", namespace))
        wait_status(cluster, namespace, "lossy", active)
        assert lossy.runtime is not None
        lossy.runtime.store.is_own_write = lambda ref, body: True  # type: ignore[method-assign]
        cluster.kubectl("annotate", "sak", "lossy", "-n", namespace, "credop.dev/rotate=r1")
        status = wait_status(cluster, namespace, "lossy", lambda s: s.get("rotateHandled") == "manual:r1")
    assert status["keyGeneration"] == 2


def test_a_deletion_no_watch_reported_is_made_good_by_the_periodic_resync(
    cluster: Cluster, operator: Any, namespace: str
) -> None:
    """The key's DELETED event is lost (as after an API server restart: the watch lists again, and a
    listing says nothing of what went); the resync finds the key gone and deletes its record."""
    with resyncing_every_2_seconds(cluster, operator) as lossy:
        cluster.apply(key_manifest("ghost", namespace))
        wait_status(cluster, namespace, "ghost", active)
        uid = cluster.get(SAK, namespace, "ghost")["metadata"]["uid"]
        assert lossy.runtime is not None
        forget, lost = lossy.runtime.forget_credential, []

        async def lose_the_first(ref: Any, uid: str) -> None:
            if not lost:
                lost.append(ref)
                return
            await forget(ref, uid)

        lossy.runtime.forget_credential = lose_the_first  # type: ignore[method-assign]
        cluster.custom.delete_namespaced_custom_object("credop.dev", "v1alpha1", namespace, SAK, "ghost")
        lossy.runtime.note_listing()  # what the watch listing again (and so hiding the deletion) tells it
        record = f"credop-record-{uid}"
        wait_gone(lambda: cluster.core.read_namespaced_secret(record, OPERATOR_NAMESPACE), what="the record")
    assert [ref.name for ref in lost] == ["ghost"]


def test_a_key_minted_before_records_existed_is_migrated_once(cluster: Cluster, namespace: str) -> None:
    """A Secret as credop wrote it before records (verifier inside, no record) keeps working, moved to a record."""
    cluster.apply(key_manifest("legacy", namespace))
    wait_status(cluster, namespace, "legacy", active)
    uid = cluster.get(SAK, namespace, "legacy")["metadata"]["uid"]
    verifier = record_data(cluster, namespace, "legacy")["verifier"]
    patch = {"stringData": {"verifier": verifier}}
    cluster.core.patch_namespaced_secret("legacy", namespace, patch)
    cluster.core.delete_namespaced_secret(f"credop-record-{uid}", OPERATOR_NAMESPACE)
    cluster.kubectl("annotate", "sak", "legacy", "-n", namespace, "nudge=1")
    wait_for(
        lambda: record_data(cluster, namespace, "legacy").get("verifier") == verifier,
        what="the verifier moved into a new record",
    )
    wait_for(lambda: "verifier" not in secret_data(cluster, namespace, "legacy"), what="the tenant's copy removed")
    assert status_of(cluster, namespace, "legacy")["phase"] == "Active"


def test_a_verifier_credop_did_not_make_is_not_migrated(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("planted", namespace))
    wait_status(cluster, namespace, "planted", active)
    uid = cluster.get(SAK, namespace, "planted")["metadata"]["uid"]
    costly = "$argon2id$v=19$m=262144,t=20,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43
    cluster.core.patch_namespaced_secret("planted", namespace, {"stringData": {"verifier": costly}})
    cluster.core.delete_namespaced_secret(f"credop-record-{uid}", OPERATOR_NAMESPACE)
    cluster.kubectl("annotate", "sak", "planted", "-n", namespace, "nudge=1")
    status = wait_status(cluster, namespace, "planted", lambda s: s.get("reason") == "RecordMissing")
    assert status["phase"] == "Failed" and "rotate" in status["message"]
    cluster.kubectl("annotate", "sak", "planted", "-n", namespace, "credop.dev/rotate=fresh")
    restored = wait_status(cluster, namespace, "planted", lambda s: s.get("rotateHandled") == "manual:fresh")
    assert restored["phase"] == "Active" and restored["keyGeneration"] == 2
    assert record_data(cluster, namespace, "planted")["verifier"].startswith("hmac-sha256$")


def test_extending_an_expired_keys_expiry_brings_it_back_without_a_new_secret(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("brief", namespace, expiresIn="3s"))
    wait_status(cluster, namespace, "brief", lambda s: s.get("phase") == "Expired", timeout=20)
    before = secret_data(cluster, namespace, "brief")["secretKey"]
    patch = '{"spec":{"expiresIn":"1h"}}'
    cluster.kubectl("patch", "sak", "brief", "-n", namespace, "--type=merge", "-p", patch)
    status = wait_status(cluster, namespace, "brief", active)
    assert status["keyGeneration"] == 1 and secret_data(cluster, namespace, "brief")["secretKey"] == before
    assert "ExpiryExtended" in [entry["action"] for entry in status.get("history", [])]


def test_editing_a_jwt_keys_roles_or_expiry_mints_a_jwt_that_says_so(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("signed", namespace, format="JWT", roles=[{"name": "GlobalViewer"}], expiresIn="30d"))
    first = wait_status(cluster, namespace, "signed", active)
    assert first["claimsDigest"]
    cluster.kubectl("patch", "sak", "signed", "-n", namespace, "--type=merge", "-p", '{"spec":{"description":"x"}}')
    wait_status(cluster, namespace, "signed", lambda s: s.get("observedGeneration") == 2)
    assert status_of(cluster, namespace, "signed")["keyGeneration"] == 1, "a description is not a claim"
    roles = '{"spec":{"roles":[{"name":"GlobalAdmin"}]}}'
    cluster.kubectl("patch", "sak", "signed", "-n", namespace, "--type=merge", "-p", roles)
    second = wait_status(cluster, namespace, "signed", lambda s: s.get("keyGeneration") == 2)
    assert second["rotateHandled"].startswith("claims:") and second["claimsDigest"] != first["claimsDigest"]
    claims = jwt.decode(secret_data(cluster, namespace, "signed")["secretKey"], options={"verify_signature": False})
    assert claims["roles"] == [{"name": "GlobalAdmin", "scope": []}]
    cluster.kubectl("patch", "sak", "signed", "-n", namespace, "--type=merge", "-p", '{"spec":{"expiresIn":"60d"}}')
    third = wait_status(cluster, namespace, "signed", lambda s: s.get("keyGeneration") == 3)
    claims = jwt.decode(secret_data(cluster, namespace, "signed")["secretKey"], options={"verify_signature": False})
    assert claims["exp"] == int(datetime.datetime.fromisoformat(third["expiresAt"].replace("Z", "+00:00")).timestamp())
