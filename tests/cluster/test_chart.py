"""The Helm chart and the plain manifests: lint, schema, server-side validation, install, upgrade, uninstall.

The install tests run on a control plane of their own: the chart's webhook
configurations (failurePolicy Fail, and no pods to serve them without a
kubelet) would otherwise refuse every credential write of the other tests.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import render_manifests
from credop.controller.metrics import NOTABLE_CONDITIONS, OperatorMetrics
from credop.controller.store import Store
from credop.webhooks import app as admission_handlers
from tests.cluster.charting import (
    CHART,
    DEPLOY,
    FOREIGN_CRDS,
    MONITORING_APIS,
    Manifest,
    helm,
    named,
    of_kind,
    plain_manifests,
    private_control_plane,
    render,
)
from tests.cluster.kube import Cluster, wait_for

NAMESPACE = "credop-system"
SOURCES = ("helm", "cert-manager", "operator")
MONITORED = tuple(f"--api-versions={api}" for api in MONITORING_APIS)


@pytest.fixture(scope="module")
def plane() -> Iterator[Cluster]:
    """A control plane with the Prometheus Operator's and cert-manager's kinds (as stand-ins) and the namespace."""
    with private_control_plane() as cluster:
        cluster.apply(FOREIGN_CRDS)
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        cluster.core.create_namespace({"metadata": {"name": NAMESPACE}})
        yield cluster


def source(name: str) -> tuple[str, str]:
    return ("--set", f"webhook.certificate.source={name}")


# Lint and values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("certificates", SOURCES)
def test_the_chart_lints_strictly(certificates: str) -> None:
    result = helm("lint", "--strict", str(CHART), *source(certificates))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (("--set", "bogus=1"), "additional properties 'bogus' not allowed"),
        (source("vault"), "/webhook/certificate/source"),
        (("--set", "webhook.failurePolicy=Sometimes"), "/webhook/failurePolicy"),
        (("--set", "webhook.port=80"), "/webhook/port"),
        (("--set", "endpoint=credop.example.com"), "/endpoint"),
        (("--set", "operator.replicas=-1"), "/operator/replicas"),
    ],
)
def test_the_values_schema_refuses_bad_values(values: tuple[str, ...], complaint: str) -> None:
    result = helm("template", "credop", str(CHART), *values, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


# What the chart renders ---------------------------------------------------------------------------


def pod_specs(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return [deployment["spec"]["template"]["spec"] for deployment in of_kind(manifests, "Deployment")]


@pytest.mark.parametrize("certificates", SOURCES)
def test_every_pod_runs_locked_down(certificates: str) -> None:
    manifests = render("credop", NAMESPACE, *source(certificates))
    assert len(of_kind(manifests, "Deployment")) == 2
    for pod in pod_specs(manifests):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys()
        assert all("hostPath" not in volume for volume in pod.get("volumes", []))
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["privileged"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["limits"]["memory"]
            assert container["command"] == ["credop"]


def test_the_components_and_their_settings() -> None:
    manifests = render("credop", NAMESPACE)
    operator = named(manifests, "Deployment", "credop-operator")["spec"]
    service = named(manifests, "Deployment", "credop-service")["spec"]
    assert operator["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert operator["replicas"] == 2, "every replica serves the webhooks: two leave no gap"
    assert operator["template"]["spec"]["containers"][0]["args"][0] == "operator"
    assert service["template"]["spec"]["containers"][0]["args"][0] == "service"
    assert service["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in service["template"]["spec"]["containers"][0]["env"]}
    assert env["CREDOP_ENDPOINT"]["value"] == "https://credop.credop-system.svc"
    assert env["CREDOP_TLS_DIR"]["value"] == "/etc/credop/tls"
    assert service["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert env["CREDOP_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    operator_env = {e["name"]: e.get("value") for e in operator["template"]["spec"]["containers"][0]["env"]}
    assert (operator_env["CREDOP_METRICS_PORT"], operator_env["CREDOP_HEALTH_PORT"]) == ("8081", "8082")
    assert operator_env["CREDOP_WEBHOOK_PORT"] == "9443"
    probe = operator["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": "webhook", "scheme": "HTTPS"}, "every replica answers it"
    assert named(manifests, "PodDisruptionBudget", "credop-operator")["spec"]["minAvailable"] == 1
    budget = named(manifests, "PodDisruptionBudget", "credop-service")["spec"]
    assert budget["selector"]["matchLabels"] == service["selector"]["matchLabels"]
    assert named(manifests, "Service", "credop")["spec"]["selector"] == service["selector"]["matchLabels"]
    assert named(manifests, "Service", "credop-webhook")["spec"]["selector"] == operator["selector"]["matchLabels"]


def chart_webhooks(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    """Each webhook of the rendered configurations by its URL path."""
    found = {}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for webhook in named(manifests, kind, "credop")["webhooks"]:
            found[webhook["clientConfig"]["service"]["path"]] = webhook
    return found


def test_the_webhook_configurations_call_every_handler_the_operator_serves() -> None:
    webhooks = chart_webhooks(render("credop", NAMESPACE))
    for plural in admission_handlers.CREDENTIAL_PLURALS:
        validating = webhooks.pop(f"/{admission_handlers.validating_id(plural)}")
        mutating = webhooks.pop(f"/{admission_handlers.mutating_id(plural)}")
        assert validating["rules"][0]["operations"] == list(admission_handlers.VALIDATED_OPERATIONS)
        assert mutating["rules"][0]["operations"] == list(admission_handlers.MUTATED_OPERATIONS)
        for webhook in (validating, mutating):
            assert webhook["rules"][0]["resources"] == [plural]
            assert webhook["failurePolicy"] == "Fail"
            assert webhook["sideEffects"] == "None"
    assert webhooks == {}


def test_the_helm_made_certificate_is_the_one_the_webhooks_trust() -> None:
    manifests = render("credop", NAMESPACE)
    secret = named(manifests, "Secret", "credop-webhook-tls")["data"]
    bundles = {webhook["clientConfig"]["caBundle"] for webhook in chart_webhooks(manifests).values()}
    assert bundles == {secret["ca.crt"]}
    operator = render("credop", NAMESPACE, *source("operator"), "--set", "service.tls.source=operator")
    assert of_kind(operator, "Secret") == []
    assert all("caBundle" not in webhook["clientConfig"] for webhook in chart_webhooks(operator).values())
    managed = render("credop", NAMESPACE, *source("cert-manager"))
    assert named(managed, "Certificate", "credop-webhook")["spec"]["secretName"] == "credop-webhook-tls"
    annotations = named(managed, "ValidatingWebhookConfiguration", "credop")["metadata"]["annotations"]
    assert annotations["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/credop-webhook"


def test_monitoring_objects_only_where_the_prometheus_operator_is() -> None:
    assert not {"ServiceMonitor", "PrometheusRule"} & {m["kind"] for m in render("credop", NAMESPACE)}
    monitored = render("credop", NAMESPACE, *MONITORED)
    for component, ports in (("operator", ["metrics"]), ("service", ["https", "metrics"])):
        monitor = named(monitored, "ServiceMonitor", f"credop-{component}")
        assert monitor["spec"]["endpoints"][0] == {"port": "metrics", "path": "/metrics", "interval": "30s"}
        scraped = [s for s in of_kind(monitored, "Service") if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]  # fmt: skip
        assert [p["name"] for s in scraped for p in s["spec"]["ports"]] == ports
    alerts = {rule["alert"] for group in named(monitored, "PrometheusRule", "credop")["spec"]["groups"] for rule in group["rules"]}  # fmt: skip
    assert {"CredopKeyExpiringSoon", "CredopKeyRotationDue", "CredopKeyUnused", "CredopApiClientActiveLimitReached"} <= alerts  # fmt: skip


class _Runtime:
    """Just enough of the operator's runtime for its metrics to describe themselves."""

    store = Store()
    scheduler: list[Any] = []  # noqa: RUF012


def operator_metric_names() -> set[str]:
    metrics = OperatorMetrics()
    metrics.watch(_Runtime())  # type: ignore[arg-type]
    return {family.name for family in metrics.registry.collect()}


def test_the_alerts_read_metrics_the_operator_exports() -> None:
    rule = named(render("credop", NAMESPACE, *MONITORED), "PrometheusRule", "credop")
    expressions = [rule["expr"] for group in rule["spec"]["groups"] for rule in group["rules"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for expr in expressions for name in re.findall(r"\b(credop_[a-z_]+)\b", expr)}  # fmt: skip
    exported = operator_metric_names()
    assert {"credop_credential_condition", "credop_credentials", "credop_api_clients_waiting"} <= used
    assert used <= exported, used - exported
    conditions = set(re.findall(r'condition="([A-Za-z]+)"', " ".join(expressions)))
    assert conditions <= set(NOTABLE_CONDITIONS)


# Plain manifests ----------------------------------------------------------------------------------


def test_network_policies_scope_each_port() -> None:
    rendered = render("credop", NAMESPACE, "--set", "networkPolicy.apiServerCIDRs={10.0.0.0/8}")
    operator = named(rendered, "NetworkPolicy", "credop-operator")["spec"]
    service = named(rendered, "NetworkPolicy", "credop-service")["spec"]
    webhook_rule, metrics_rule = operator["ingress"]
    assert webhook_rule == {"ports": [{"port": 9443, "protocol": "TCP"}], "from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert metrics_rule["from"] == [monitoring] and metrics_rule["ports"] == [{"port": 8081, "protocol": "TCP"}]
    open_to_all, service_metrics = service["ingress"]
    assert open_to_all == {"ports": [{"port": 8443, "protocol": "TCP"}], "from": [{"namespaceSelector": {}}]}
    assert service_metrics["from"] == [monitoring] and service_metrics["ports"] == [{"port": 9090, "protocol": "TCP"}]
    plain = render("credop", NAMESPACE, "--set", "service.tls.enabled=false", "--set", "service.port=80")
    env = named(plain, "Deployment", "credop-operator")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "CREDOP_ENDPOINT", "value": f"http://credop.{NAMESPACE}.svc"} in env
    assert not [m for m in plain if m["kind"] == "Secret" and m["metadata"]["name"] == "credop-service-tls"]
    assert not of_kind(render("credop", NAMESPACE, "--set", "networkPolicy.enabled=false"), "NetworkPolicy")


def test_the_plain_manifests_match_the_chart() -> None:
    assert render_manifests.drifted() == [], "run: hack/render-manifests"


def test_drift_of_the_plain_manifests_is_detected(tmp_path: Path) -> None:
    shutil.copytree(CHART, tmp_path / "charts" / "credop")
    for path, text in render_manifests.targets(tmp_path).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert render_manifests.drifted(tmp_path) == []
    victim = tmp_path / "deploy" / "credop.yaml"
    victim.write_text(victim.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1))
    assert render_manifests.drifted(tmp_path) == [victim]


def test_the_plain_manifests_hold_everything_and_no_secret() -> None:
    kinds = {manifest["kind"] for manifest in plain_manifests()}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "ClusterRole", "ValidatingWebhookConfiguration"} <= kinds  # fmt: skip
    assert "Secret" not in kinds
    assert {m["kind"] for m in plain_manifests("monitoring/credop.yaml")} == {"ServiceMonitor", "PrometheusRule"}


# Validated by the API server ----------------------------------------------------------------------


def dry_run(cluster: Cluster, text: str) -> None:
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=text)


@pytest.mark.parametrize("certificates", SOURCES)
def test_the_rendered_chart_is_accepted_by_the_api_server(plane: Cluster, certificates: str) -> None:
    text = helm("template", "credop", str(CHART), "--namespace", NAMESPACE, "--include-crds", *source(certificates), *MONITORED).stdout  # fmt: skip
    dry_run(plane, text)


def test_the_plain_manifests_are_accepted_by_the_api_server(plane: Cluster) -> None:
    dry_run(plane, (DEPLOY / "credop.yaml").read_text())
    dry_run(plane, (DEPLOY / "monitoring" / "credop.yaml").read_text())


# Install, upgrade, uninstall ----------------------------------------------------------------------


def get_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", *args, "-o", "json").stdout))


def exists(cluster: Cluster, *args: str) -> bool:
    return cluster.kubectl("get", *args, check=False).returncode == 0


CLUSTER_OBJECTS = [
    ("clusterrole", "credop-operator"),
    ("clusterrole", "credop-service"),
    ("clusterrole", "credop-admin"),
    ("clusterrole", "credop-editor"),
    ("clusterrole", "credop-viewer"),
    ("clusterrolebinding", "credop-operator"),
    ("validatingwebhookconfiguration", "credop"),
    ("mutatingwebhookconfiguration", "credop"),
]
NAMESPACED_OBJECTS = [
    ("deployment", "credop-operator"),
    ("deployment", "credop-service"),
    ("service", "credop"),
    ("service", "credop-webhook"),
    ("service", "credop-operator-metrics"),
    ("serviceaccount", "credop-operator"),
    ("serviceaccount", "credop-service"),
    ("role", "credop-operator"),
    ("rolebinding", "credop-service"),
    ("secret", "credop-webhook-tls"),
    ("secret", "credop-service-tls"),
    ("networkpolicy", "credop-operator"),
    ("poddisruptionbudget", "credop-operator"),
    ("networkpolicy", "credop-service"),
    ("poddisruptionbudget", "credop-service"),
    ("servicemonitor", "credop-operator"),
    ("servicemonitor", "credop-service"),
    ("prometheusrule", "credop"),
]


def webhook_ca(cluster: Cluster) -> str:
    return str(get_json(cluster, "secret", "credop-webhook-tls", "-n", NAMESPACE)["data"]["ca.crt"])


def test_install_upgrade_and_uninstall(plane: Cluster) -> None:
    release = ("credop", str(CHART), "--namespace", NAMESPACE)
    installed = helm("install", *release, kubeconfig=plane.kubeconfig)
    assert "credop 0.1.0 is installed in credop-system" in installed.stdout
    plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/serviceaccountkeys.credop.dev")
    for kind, name in CLUSTER_OBJECTS:
        assert exists(plane, kind, name), (kind, name)
    for kind, name in NAMESPACED_OBJECTS:
        assert exists(plane, kind, name, "-n", NAMESPACE), (kind, name)
    ca = webhook_ca(plane)
    validating = get_json(plane, "validatingwebhookconfiguration", "credop")
    assert {webhook["clientConfig"]["caBundle"] for webhook in validating["webhooks"]} == {ca}
    assert base64.b64decode(ca).startswith(b"-----BEGIN CERTIFICATE-----")
    service_ca = get_json(plane, "secret", "credop-service-tls", "-n", NAMESPACE)["data"]["ca.crt"]
    operator_env = get_json(plane, "deployment", "credop-operator", "-n", NAMESPACE)["spec"]["template"]["spec"]
    endpoint = next(e["value"] for e in operator_env["containers"][0]["env"] if e["name"] == "CREDOP_ENDPOINT")
    assert endpoint == f"https://credop.{NAMESPACE}.svc", "the default endpoint and issuer are https"
    assert base64.b64decode(service_ca).startswith(b"-----BEGIN CERTIFICATE-----")

    helm(
        "upgrade",
        *release,
        "--set",
        "service.replicas=3",
        "--set",
        "operator.logLevel=DEBUG",
        kubeconfig=plane.kubeconfig,
    )
    assert get_json(plane, "deployment", "credop-service", "-n", NAMESPACE)["spec"]["replicas"] == 3
    operator = get_json(plane, "deployment", "credop-operator", "-n", NAMESPACE)
    assert "--log-level=DEBUG" in operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert webhook_ca(plane) == ca, "an upgrade keeps the webhook certificate"
    kept = get_json(plane, "secret", "credop-service-tls", "-n", NAMESPACE)["data"]["ca.crt"]
    assert kept == service_ca, "an upgrade keeps the service certificate"
    status = json.loads(helm("status", "credop", "-n", NAMESPACE, "-o", "json", kubeconfig=plane.kubeconfig).stdout)
    assert status["version"] == 2

    helm("uninstall", "credop", "--namespace", NAMESPACE, "--wait", kubeconfig=plane.kubeconfig)
    for kind, name in CLUSTER_OBJECTS:
        wait_for(lambda kind=kind, name=name: not exists(plane, kind, name), what=f"{kind}/{name} to go")
    for kind, name in NAMESPACED_OBJECTS:
        wait_for(lambda kind=kind, name=name: not exists(plane, kind, name, "-n", NAMESPACE), what=f"{kind}/{name} to go")  # fmt: skip
    assert exists(plane, "crd", "serviceaccountkeys.credop.dev"), "Helm keeps CRDs (and so the credentials)"
