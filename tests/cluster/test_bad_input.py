"""Bad input never crashes or wedges the operator and never loses a credential.

Hypothesis throws arbitrary specs at the real API server: each is refused with
a message naming a field, or accepted and reconciled to a phase. Then the
operator meets tampered Secrets, deleted policies and a namespace being
deleted, and still mints a canary key afterwards.
"""

from __future__ import annotations

import time
from typing import Any

import kubernetes
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cluster.helpers import (
    APIC,
    SAK,
    key_manifest,
    policy_manifest,
    secret_data,
    status_of,
    wait_gone,
    wait_policy,
    wait_status,
)
from tests.cluster.kube import Cluster, wait_for

pytestmark = pytest.mark.usefixtures("operator")
SETTLED_PHASES = ("Active", "Inactive", "Failed", "Expired", "Disabled")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.text(max_size=30),
    st.sampled_from(["30d", "Never", "None", "0s", "2099-01-01T00:00:00Z", "*"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)),
    max_leaves=6,
)
key_fields = st.sampled_from(
    [
        "serviceAccount",
        "description",
        "roles",
        "expiresAt",
        "expiresIn",
        "neverExpires",
        "keyType",
        "format",
        "active",
        "secretName",
        "secretTemplate",
        "policyName",
        "rotation",
        "deletionProtection",
        "bogus",
    ]
)
client_fields = st.sampled_from(
    [
        "clientId",
        "clientSecretRef",
        "tokenValiditySeconds",
        "permissionLevel",
        "active",
        "secretName",
        "secretTemplate",
        "policyName",
        "bogus",
    ]
)


def assert_refused_naming_a_field(error: kubernetes.client.ApiException) -> None:
    assert error.status in (400, 422), error.body
    assert "spec" in error.body or "Invalid value" in error.body, error.body


def settles(cluster: Cluster, namespace: str, plural: str, name: str) -> None:
    def phase() -> str | None:
        current = status_of(cluster, namespace, name, plural).get("phase")
        return current if current in SETTLED_PHASES else None

    wait_for(phase, timeout=30, what=f"{plural}/{name} to settle")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    spec=st.dictionaries(key_fields, values, max_size=5), client_spec=st.dictionaries(client_fields, values, max_size=4)
)
def test_arbitrary_specs_are_refused_or_reconciled(
    cluster: Cluster, namespace: str, spec: dict[str, Any], client_spec: dict[str, Any]
) -> None:
    for plural, kind, body_spec in (
        (SAK, "ServiceAccountKey", spec),
        (APIC, "ApiClient", client_spec),
    ):
        name = f"fuzz-{time.monotonic_ns() % 10**9}"
        body = {"apiVersion": "credop.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": body_spec}
        try:
            cluster.custom.create_namespaced_custom_object("credop.dev", "v1alpha1", namespace, plural, body)
        except kubernetes.client.ApiException as error:
            assert_refused_naming_a_field(error)
            continue
        settles(cluster, namespace, plural, name)
        status = status_of(cluster, namespace, name, plural)
        if status["phase"] == "Failed":
            assert status.get("message"), "a failure says why"


def test_operator_still_works_after_the_fuzzing(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("canary", namespace))
    wait_status(cluster, namespace, "canary", lambda s: s.get("phase") == "Active")


def test_tampered_secret_annotations_do_not_stop_rotation(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("tampered", namespace))
    first = wait_status(cluster, namespace, "tampered", lambda s: s.get("phase") == "Active")
    patch = {"metadata": {"annotations": {"credop.dev/key-generation": "garbage", "credop.dev/minted-at": "yesterday"}}}
    cluster.core.patch_namespaced_secret("tampered", namespace, patch)
    cluster.kubectl("annotate", "sak", "tampered", "-n", namespace, "credop.dev/rotate=after-tamper")
    rotated = wait_status(cluster, namespace, "tampered", lambda s: s.get("rotateHandled") == "manual:after-tamper")
    assert rotated["keyGeneration"] == 2
    assert rotated["accessKeyId"] == first["accessKeyId"]
    assert (
        cluster.core.read_namespaced_secret("tampered", namespace).metadata.annotations["credop.dev/key-generation"]
        == "2"
    )


def test_a_user_secret_in_the_way_is_never_overwritten(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "taken"}, "stringData": {"mine": "do-not-touch-1"}}
    )
    cluster.apply(key_manifest("taken", namespace))
    failed = wait_status(cluster, namespace, "taken", lambda s: s.get("phase") == "Failed")
    assert failed["reason"] == "SecretConflict"
    assert 'Secret "taken"' in failed["message"]
    assert secret_data(cluster, namespace, "taken") == {"mine": "do-not-touch-1"}


def test_deleted_policy_fails_clearly_and_loses_nothing(cluster: Cluster, namespace: str) -> None:
    cluster.apply(policy_manifest(namespace, "team"))
    wait_policy(cluster, namespace, "team")
    cluster.apply(key_manifest("governed", namespace, policyName="team"))
    wait_status(cluster, namespace, "governed", lambda s: s.get("phase") == "Active")
    data = secret_data(cluster, namespace, "governed")
    cluster.kubectl("delete", "kpol", "team", "-n", namespace)
    failed = wait_status(cluster, namespace, "governed", lambda s: s.get("phase") == "Failed")
    assert failed["reason"] == "PolicyNotFound"
    assert '"team"' in failed["message"]
    cluster.apply(policy_manifest(namespace, "team"))
    wait_status(cluster, namespace, "governed", lambda s: s.get("phase") == "Active")
    assert secret_data(cluster, namespace, "governed") == data


def test_namespace_deletion_does_not_wedge_the_operator(cluster: Cluster, namespace: str) -> None:
    doomed = f"{namespace}-doomed"
    cluster.core.create_namespace({"metadata": {"name": doomed}})
    for index in range(10):
        cluster.apply(key_manifest(f"k{index}", doomed))
    wait_status(cluster, doomed, "k9", lambda s: s.get("phase") == "Active")
    cluster.core.delete_namespace(doomed)
    cluster.apply(key_manifest("after", namespace))
    wait_status(cluster, namespace, "after", lambda s: s.get("phase") == "Active")
    wait_gone(lambda: cluster.core.read_namespace(doomed), timeout=90, what="the namespace to be deleted")
