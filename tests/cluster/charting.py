"""Helpers for the chart, RBAC and webhook tests: rendering the chart, private control planes, identities."""

from __future__ import annotations

import contextlib
import copy
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kube import REPO, Cluster, existing_cluster_requested

HELM = REPO / ".testbed" / "bin" / "helm"
CHART = REPO / "charts" / "credop"
DEPLOY = REPO / "deploy"
MONITORING_APIS = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
# The built-in controllers plus the one that fills aggregated ClusterRoles (admin/edit/view).
PRIVATE_CONTROLLERS = (
    "garbage-collector-controller,namespace-controller,serviceaccount-controller,"
    "serviceaccount-token-controller,clusterrole-aggregation-controller"
)
Manifest = dict[str, Any]


def helm(*args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(HELM), *args]
    if kubeconfig is not None:
        command.append(f"--kubeconfig={kubeconfig}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def render(release: str, namespace: str, *options: str) -> list[Manifest]:
    """The chart's objects as ``helm template`` renders them (CRDs left out unless asked for)."""
    text = helm("template", release, str(CHART), "--namespace", namespace, *options).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def plain_manifests(name: str = "credop.yaml") -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def webhook_configurations_at(
    manifests: list[Manifest], *, url: str, namespace_selector: dict[str, Any] | None = None
) -> list[Manifest]:
    """The chart's webhook configurations, calling ``url`` + each webhook's path instead of the Service.

    The test bed's API server runs on the host, so it reaches a webhook server in the test process.
    """
    configurations = []
    for manifest in manifests:
        if manifest["kind"] not in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            continue
        configuration = copy.deepcopy(manifest)
        for webhook in configuration["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": f"{url.rstrip('/')}{path}"}
            if namespace_selector is not None:
                webhook["namespaceSelector"] = namespace_selector
        configurations.append(configuration)
    return configurations


def deployment_env(manifests: list[Manifest], name: str) -> dict[str, str]:
    """The plain ``value`` environment variables of a Deployment's first container."""
    container = named(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    return {env["name"]: env["value"] for env in container.get("env", []) if "value" in env}


def can_i(cluster: Cluster, kubeconfig: Path, question: str, *, namespace: str | None = None) -> bool:
    """``kubectl auth can-i <question>`` as the kubeconfig's identity (the API server's authorizer answers).

    ``question`` is what follows ``can-i``: ``"create secrets"``, ``"update leases/credop-operator"``,
    ``"patch apiclients.credop.dev --subresource=status"``.
    """
    args = ["auth", "can-i", *question.split()]
    if namespace:
        args += ["-n", namespace]
    result = cluster.kubectl(*args, kubeconfig=kubeconfig, check=False)
    return result.stdout.strip() == "yes"


@contextlib.contextmanager
def private_control_plane() -> Iterator[Cluster]:
    """A control plane of its own (about three seconds to start), for tests that install cluster-wide
    objects (webhook configurations that would refuse every credential write, aggregated roles) or that
    must be the only operator acting on its objects."""
    if existing_cluster_requested():
        pytest.skip("needs a private test bed (a control plane started from hack/testbed.py)")
    import testbed

    controllers = testbed.CONTROLLERS
    testbed.CONTROLLERS = PRIVATE_CONTROLLERS
    try:
        with testbed.ControlPlane.start() as plane:
            yield Cluster(kubeconfig=plane.kubeconfig, workdir=Path(tempfile.mkdtemp(prefix="credop-private-")))
    finally:
        testbed.CONTROLLERS = controllers


def minimal_crd(group: str, kind: str, plural: str, version: str = "v1") -> Manifest:
    """A CRD that accepts any object of a kind, standing in for another project's CRD in dry-runs."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


FOREIGN_CRDS = [
    minimal_crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    minimal_crd("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
    minimal_crd("cert-manager.io", "Issuer", "issuers"),
    minimal_crd("cert-manager.io", "Certificate", "certificates"),
]
