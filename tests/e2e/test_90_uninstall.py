"""helm uninstall leaves nothing of the release behind but the CRDs (and the credentials they hold)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import E2E, RELEASE, SYSTEM_NAMESPACE

pytestmark = pytest.mark.e2e
NAMESPACED = "deployments,replicasets,pods,services,serviceaccounts,secrets,configmaps,roles,rolebindings,poddisruptionbudgets,leases"
CLUSTER_SCOPED = "clusterroles,clusterrolebindings,validatingwebhookconfigurations,mutatingwebhookconfigurations"
ALWAYS_THERE = {"configmap/kube-root-ca.crt", "serviceaccount/default"}


def names(e2e: E2E, kinds: str, namespace: str | None = None, selector: str | None = None) -> set[str]:
    args = (
        ["get", kinds, "-o", "name"] + (["-n", namespace] if namespace else []) + (["-l", selector] if selector else [])
    )
    return set(e2e.kubectl(*args).stdout.split())


def test_helm_uninstall_removes_the_release_and_keeps_the_crds(e2e: E2E) -> None:
    e2e.helm("uninstall", RELEASE, "--namespace", SYSTEM_NAMESPACE, "--wait", "--timeout=5m")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    deadline = time.monotonic() + 120
    while (left := names(e2e, NAMESPACED, SYSTEM_NAMESPACE, selector)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, f"the release's objects left in {SYSTEM_NAMESPACE}: {sorted(left)}"
    cluster_wide = {name for name in names(e2e, CLUSTER_SCOPED) if "credop" in name}
    assert cluster_wide == set(), f"cluster-scoped objects left: {sorted(cluster_wide)}"
    crds = {name for name in names(e2e, "customresourcedefinitions") if name.endswith(".credop.dev")}
    assert crds == {
        "customresourcedefinition.apiextensions.k8s.io/apiclients.credop.dev",
        "customresourcedefinition.apiextensions.k8s.io/keypolicies.credop.dev",
        "customresourcedefinition.apiextensions.k8s.io/serviceaccountkeys.credop.dev",
    }


@pytest.mark.xfail(
    strict=True,
    reason="the operator creates the Lease credop-operator and the Secret credop-keys at run time; "
    "helm does not know them, so they outlive the release",
)
def test_helm_uninstall_leaves_nothing_else_in_the_namespace(e2e: E2E) -> None:
    left = names(e2e, NAMESPACED, SYSTEM_NAMESPACE) - ALWAYS_THERE
    assert not left, f"left in {SYSTEM_NAMESPACE} after helm uninstall: {sorted(left)}"
