"""The test bed is a real Kubernetes control plane: CEL, GC, RBAC and version are the real thing."""

from __future__ import annotations

import json
import urllib.request

import kubernetes
import pytest

from tests.cluster.helpers import wait_gone
from tests.cluster.kube import Cluster, existing_cluster_requested, wait_for

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.testbed.credop.dev"},
    "spec": {
        "group": "testbed.credop.dev",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.min <= self.max", "message": "spec.min must not exceed spec.max"}
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_version_is_a_real_kubernetes_release(cluster: Cluster) -> None:
    version = kubernetes.client.VersionApi(cluster.api_client()).get_code()
    if not existing_cluster_requested():
        assert version.git_version.startswith("v1.37.")
        assert (version.major, version.minor.rstrip("+")) == ("1", "37")


def test_cel_rule_rejects_bad_input(cluster: Cluster, namespace: str) -> None:
    cluster.apply(WIDGET_CRD)
    cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.testbed.credop.dev", "--timeout=30s")
    good = {
        "apiVersion": "testbed.credop.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "good"},
        "spec": {"min": 1, "max": 2},
    }
    bad = {**good, "metadata": {"name": "bad"}, "spec": {"min": 3, "max": 2}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(good))
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert "spec.min must not exceed spec.max" in refused.stderr


def test_orphaned_secret_is_garbage_collected(cluster: Cluster, namespace: str) -> None:
    owner = cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    cluster.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            },
            "stringData": {"x": "y"},
        },
    )
    cluster.core.delete_namespaced_config_map("owner", namespace)
    wait_gone(
        lambda: cluster.core.read_namespaced_secret("owned", namespace),
        timeout=60,
        what="the garbage collector to delete the orphaned Secret",
    )


def test_non_admin_is_forbidden_by_rbac(cluster: Cluster, namespace: str) -> None:
    kubeconfig = cluster.service_account_kubeconfig(namespace, "nobody")
    restricted = kubernetes.client.CoreV1Api(cluster.api_client(kubeconfig))
    with pytest.raises(kubernetes.client.ApiException) as refused:
        restricted.list_namespaced_secret(namespace)
    assert refused.value.status == 403
    cluster.rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    cluster.rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "read-configmaps"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )
    wait_for(lambda: restricted.list_namespaced_config_map(namespace) is not None, what="the RoleBinding to apply")
    with pytest.raises(kubernetes.client.ApiException) as still_refused:
        restricted.list_namespaced_secret(namespace)
    assert still_refused.value.status == 403


def test_namespace_deletion_completes(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "leftover"}})
    cluster.core.delete_namespace(namespace)
    wait_gone(
        lambda: cluster.core.read_namespace(namespace), timeout=60, what="the namespace controller to finish deleting"
    )


def test_readyz_answers(cluster: Cluster) -> None:
    if existing_cluster_requested():
        pytest.skip("the existing cluster's certificates are not ours")
    import ssl

    import yaml

    config = yaml.safe_load(cluster.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    user = config["users"][0]["user"]
    context = ssl.create_default_context(cafile=config["clusters"][0]["cluster"]["certificate-authority"])
    context.load_cert_chain(user["client-certificate"], user["client-key"])
    with urllib.request.urlopen(f"{server}/readyz", context=context, timeout=5) as answer:
        assert answer.status == 200
