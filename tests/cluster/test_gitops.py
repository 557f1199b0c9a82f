"""Argo CD and Flux friendliness: credop never writes spec, its Secrets are not drift, Ready works everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from credop import names
from tests.cluster.helpers import client_manifest, key_manifest, policy_manifest
from tests.cluster.kube import Cluster, wait_for

pytestmark = pytest.mark.usefixtures("operator")
KINDS = {"KeyPolicy": "keypolicies", "ServiceAccountKey": "serviceaccountkeys", "ApiClient": "apiclients"}
USER_MANAGERS = ("kubectl", "argocd-controller")


def manifests(namespace: str) -> list[dict[str, Any]]:
    return [
        policy_manifest(namespace, maxActiveClients=3),
        key_manifest("deploy-bot", namespace, serviceAccount="deployer", roles=[{"name": "GlobalViewer"}]),
        client_manifest("portal", namespace, permissionLevel="CanEdit"),
    ]


def live(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return cluster.get(KINDS[kind], namespace, name)


def ready(cluster: Cluster, manifest: dict[str, Any]) -> dict[str, Any] | None:
    body = live(cluster, manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"])
    conditions = (body.get("status") or {}).get("conditions") or []
    return body if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None


def apply_as_gitops(cluster: Cluster, items: list[dict[str, Any]]) -> None:
    text = "\n---\n".join(json.dumps(item) for item in items)
    cluster.kubectl("apply", "--server-side", "--field-manager=argocd-controller", "-f", "-", input=text)


def test_credop_writes_status_only_never_spec_or_metadata(cluster: Cluster, namespace: str) -> None:
    items = manifests(namespace)
    apply_as_gitops(cluster, items)
    before = {item["kind"]: wait_for(lambda item=item: ready(cluster, item), what=f"{item['kind']} Ready") for item in items}  # fmt: skip
    cluster.kubectl(
        "annotate", "sak", "deploy-bot", "-n", namespace, f"{names.ROTATE}=r1", f"{names.INVALIDATE_TOKENS}=i1"
    )
    cluster.kubectl("annotate", "apic", "portal", "-n", namespace, f"{names.ROTATE}=r1")
    wait_for(lambda: live(cluster, "ServiceAccountKey", namespace, "deploy-bot")["status"].get("keyGeneration") == 2, what="the rotation")  # fmt: skip
    wait_for(lambda: live(cluster, "ApiClient", namespace, "portal")["status"].get("keyGeneration") == 2, what="the rotation")  # fmt: skip
    for kind, earlier in before.items():
        now = live(cluster, kind, namespace, earlier["metadata"]["name"])
        assert now["spec"] == earlier["spec"], kind
        assert now["metadata"]["generation"] == 1, kind
        assert now["status"]["observedGeneration"] == 1, kind
        assert not now["metadata"].get("finalizers"), kind
        assert now["metadata"].get("labels") == earlier["metadata"].get("labels"), kind
        for entry in now["metadata"]["managedFields"]:
            by_user = entry["manager"].startswith(USER_MANAGERS)
            assert by_user or entry.get("subresource") == "status", (kind, entry["manager"], entry.get("subresource"))


def test_reapplying_the_manifests_finds_no_drift(cluster: Cluster, namespace: str) -> None:
    items = manifests(namespace)
    apply_as_gitops(cluster, items)
    for item in items:
        wait_for(lambda item=item: ready(cluster, item), what=f"{item['kind']} Ready")
    versions = {item["kind"]: live(cluster, item["kind"], namespace, item["metadata"]["name"])["metadata"]["resourceVersion"] for item in items}  # fmt: skip
    text = "\n---\n".join(json.dumps(item) for item in items)
    diff = cluster.kubectl("diff", "--server-side", "--field-manager=argocd-controller", "-f", "-", input=text, check=False)  # fmt: skip
    assert diff.returncode == 0, diff.stdout
    apply_as_gitops(cluster, items)
    for item in items:
        assert live(cluster, item["kind"], namespace, item["metadata"]["name"])["metadata"]["resourceVersion"] == versions[item["kind"]]  # fmt: skip


def test_generated_secrets_tell_argo_cd_they_are_not_drift(cluster: Cluster, namespace: str) -> None:
    items = manifests(namespace)
    apply_as_gitops(cluster, items)
    for item in items[1:]:
        owner = wait_for(lambda item=item: ready(cluster, item), what=f"{item['kind']} Ready")
        secret = cluster.core.read_namespaced_secret(owner["status"]["secretRef"]["name"], namespace).metadata
        assert names.GITOPS_ANNOTATIONS.items() <= (secret.annotations or {}).items()
        assert secret.annotations["argocd.argoproj.io/compare-options"] == "IgnoreExtraneous"
        assert secret.annotations["argocd.argoproj.io/sync-options"] == "Prune=false"
        assert secret.labels[names.MANAGED_BY] == names.MANAGED_BY_VALUE
        reference = secret.owner_references[0]
        assert (reference.kind, reference.name, reference.uid) == (item["kind"], owner["metadata"]["name"], owner["metadata"]["uid"])  # fmt: skip
        assert reference.controller is True
        assert "argocd.argoproj.io/instance" not in (secret.labels or {}), "not tracked as part of the Argo CD app"


def test_kubectl_wait_for_ready_works_on_every_kind(cluster: Cluster, namespace: str) -> None:
    apply_as_gitops(cluster, manifests(namespace))
    waited = cluster.kubectl(
        "wait", "--for=condition=Ready", "--timeout=60s", "-n", namespace,
        "keypolicy/default", "serviceaccountkey/deploy-bot", "apiclient/portal",
    )  # fmt: skip
    assert waited.stdout.count("condition met") == 3
    for kind, plural in KINDS.items():
        listed = json.loads(cluster.kubectl("get", plural, "-n", namespace, "-o", "json").stdout)["items"]
        for body in listed:
            assert body["status"]["observedGeneration"] == body["metadata"]["generation"], kind
