"""helm uninstall leaves nothing of the release behind but the CRDs, the credentials they hold, and credop's data."""

from __future__ import annotations

import contextlib

import pytest

from tests.e2e.conftest import E2E, RELEASE, SYSTEM_NAMESPACE, wait_until

pytestmark = pytest.mark.e2e
NAMESPACED = "deployments,replicasets,pods,services,serviceaccounts,secrets,configmaps,roles,rolebindings,poddisruptionbudgets,leases"
CLUSTER_SCOPED = "clusterroles,clusterrolebindings,validatingwebhookconfigurations,mutatingwebhookconfigurations"
ALWAYS_THERE = {"configmap/kube-root-ca.crt", "serviceaccount/default"}
DATA_PREFIXES = ("secret/credop-record-", "configmap/credop-revocations-", "configmap/credop-admitted-")


def names(e2e: E2E, kinds: str, namespace: str | None = None, selector: str | None = None) -> set[str]:
    args = (
        ["get", kinds, "-o", "name"] + (["-n", namespace] if namespace else []) + (["-l", selector] if selector else [])
    )
    return set(e2e.kubectl(*args).stdout.split())


def test_helm_uninstall_removes_the_release_and_keeps_the_crds(e2e: E2E) -> None:
    e2e.helm("uninstall", RELEASE, "--namespace", SYSTEM_NAMESPACE, "--wait", "--timeout=5m")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    with contextlib.suppress(AssertionError):  # the assertion below names what is left
        wait_until(
            lambda: not names(e2e, NAMESPACED, SYSTEM_NAMESPACE, selector),
            timeout=120,
            interval=1,
            what="the release's objects to go",
        )
    left = names(e2e, NAMESPACED, SYSTEM_NAMESPACE, selector)
    assert not left, f"the release's objects left in {SYSTEM_NAMESPACE}: {sorted(left)}"
    cluster_wide = {name for name in names(e2e, CLUSTER_SCOPED) if "credop" in name}
    assert cluster_wide == set(), f"cluster-scoped objects left: {sorted(cluster_wide)}"
    crds = {name for name in names(e2e, "customresourcedefinitions") if name.endswith(".credop.dev")}
    assert crds == {
        "customresourcedefinition.apiextensions.k8s.io/apiclients.credop.dev",
        "customresourcedefinition.apiextensions.k8s.io/keypolicies.credop.dev",
        "customresourcedefinition.apiextensions.k8s.io/serviceaccountkeys.credop.dev",
    }


def test_helm_uninstall_keeps_only_credops_data(e2e: E2E) -> None:
    """What stays is data the credentials still need after a reinstall: the keyring, the records, the revocations.

    (Deleting them would make every credential in the cluster unusable: back the keyring up with
    `credop keyring export` before deleting the namespace.)
    """
    left = names(e2e, NAMESPACED, SYSTEM_NAMESPACE) - ALWAYS_THERE
    data = {name for name in left if name == "secret/credop-keys" or name.startswith(DATA_PREFIXES)}
    assert left == data, f"left in {SYSTEM_NAMESPACE} after helm uninstall: {sorted(left - data)}"
    assert "secret/credop-keys" in left
