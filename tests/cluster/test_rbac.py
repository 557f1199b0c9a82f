"""The chart's RBAC is enough for credop's work and no more, on a control plane of its own.

``deploy/credop.yaml`` (rendered from the chart) is applied as is; the operator
then runs in this process with a token of the ``credop-operator``
ServiceAccount, so every call it makes is authorised by exactly the chart's
ClusterRole, Role and bindings: leader election, minting, status, Events,
restarts, its own webhook certificate and the admission webhooks themselves.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from credop.config import Config, WebhookSettings
from testbed import free_port
from tests.cluster.charting import (
    DEPLOY,
    can_i,
    deployment_env,
    plain_manifests,
    private_control_plane,
    webhook_configurations_at,
)
from tests.cluster.helpers import Status, wait_status, webhooks_answer
from tests.cluster.helpers import key_manifest as key
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import TEST_ENDPOINT, LogCapture, OperatorThread

SYSTEM = "credop-system"
OPERATOR_SA, SERVICE_SA = "credop-operator", "credop-service"
ESCALATING_VERBS = {"escalate", "bind", "impersonate", "*"}


@dataclass(frozen=True)
class Installed:
    cluster: Cluster
    operator_kubeconfig: Path
    service_kubeconfig: Path
    logs: LogCapture


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    with private_control_plane() as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(DEPLOY / "credop.yaml"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=credop"
        )
        manifests = plain_manifests()
        port = free_port()
        configurations = webhook_configurations_at(manifests, url=f"https://127.0.0.1:{port}")
        cluster.kubectl("replace", "-f", "-", input=yaml.safe_dump_all(configurations))
        local = {
            "CREDOP_WEBHOOK_PORT": str(port),
            "CREDOP_WEBHOOK_ADDRESS": "127.0.0.1",
            "CREDOP_WEBHOOK_HOSTS": "127.0.0.1",
        }
        webhook = WebhookSettings.from_environment(deployment_env(manifests, f"{OPERATOR_SA}") | local)
        kubeconfig = cluster.token_kubeconfig(SYSTEM, OPERATOR_SA)
        config = Config(namespace=SYSTEM, endpoint=TEST_ENDPOINT, kubeconfig=kubeconfig, webhook=webhook)
        assert config.leader_election
        logs = LogCapture()
        logging.getLogger().addHandler(logs)
        running = OperatorThread(kubeconfig, config=config).start()
        try:
            yield Installed(cluster, kubeconfig, cluster.token_kubeconfig(SYSTEM, SERVICE_SA), logs)
        finally:
            running.stop()
            logging.getLogger().removeHandler(logs)


@pytest.fixture
def tenant(installed: Installed) -> str:
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    installed.cluster.core.create_namespace({"metadata": {"name": name}})
    wait_for(lambda: webhooks_answer(installed.cluster, name), timeout=60, what="the webhooks to answer")
    return name


def wait_phase(cluster: Cluster, plural: str, namespace: str, name: str, phase: str) -> Status:
    return wait_status(cluster, namespace, name, lambda status: status.get("phase") == phase, plural=plural, timeout=60)


# Sufficient ---------------------------------------------------------------------------------------


def test_the_operator_mints_writes_status_and_posts_events(installed: Installed, tenant: str) -> None:
    cluster = installed.cluster
    cluster.apply(key("ci", tenant))
    active = wait_phase(cluster, "serviceaccountkeys", tenant, "ci", "Active")
    assert active["createdBy"] == "credop-testbed-admin"
    assert cluster.core.read_namespaced_secret("ci", tenant).data["accessKeyId"]
    wait_for(
        lambda: {event["reason"] for event in cluster.events(tenant)} >= {"Minted"},
        what="the Minted Event",
    )
    assert _lease_holder(cluster)


def _lease_holder(cluster: Cluster) -> str:
    coordination = kubernetes.client.CoordinationV1Api(cluster.api_client())
    return str(coordination.read_namespaced_lease("credop-operator", SYSTEM).spec.holder_identity or "")


def test_the_operator_keeps_its_webhook_certificate_and_serves_the_rules(installed: Installed, tenant: str) -> None:
    cluster = installed.cluster
    ca = cluster.core.read_namespaced_secret("credop-webhook-tls", SYSTEM).data["ca.crt"]
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        configuration = json.loads(cluster.kubectl("get", kind, "credop", "-o", "json").stdout)
        assert {webhook["clientConfig"]["caBundle"] for webhook in configuration["webhooks"]} == {ca}
    policy = {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": "KeyPolicy",
        "metadata": {"name": "default", "namespace": tenant},
        "spec": {"creators": {"users": ["alice"]}},
    }
    cluster.apply(policy)
    cluster.kubectl(
        "create", "rolebinding", "team-edits", "-n", tenant, "--clusterrole=edit", "--group=system:authenticated"
    )
    refused = cluster.kubectl("create", "-f", "-", input=json.dumps(key("k", tenant)), check=False, as_user="mallory")
    assert "[creators] metadata" in refused.stderr, refused.stderr
    wait_for(
        lambda: (
            cluster.kubectl(
                "create", "-f", "-", input=json.dumps(key("k", tenant)), check=False, as_user="alice"
            ).returncode
            == 0
        ),
        what="alice's create (RBAC aggregation of credop-editor into edit)",
    )


def test_user_client_secrets_and_restart_targets(installed: Installed, tenant: str) -> None:
    cluster = installed.cluster
    cluster.core.create_namespaced_secret(
        tenant, {"metadata": {"name": "mine"}, "stringData": {"clientSecret": "Own#Secret-42"}}
    )
    client = {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": "ApiClient",
        "metadata": {"name": "portal", "namespace": tenant},
        "spec": {"clientSecretRef": {"name": "mine"}},
    }
    cluster.apply(client)
    wait_phase(cluster, "apiclients", tenant, "portal", "Active")
    deployment = {
        "metadata": {"name": "app"},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    cluster.apps.create_namespaced_deployment(tenant, deployment)
    cluster.apply(key("app-key", tenant, rotation={"restartTargets": [{"kind": "Deployment", "name": "app"}]}))
    wait_phase(cluster, "serviceaccountkeys", tenant, "app-key", "Active")
    cluster.kubectl("annotate", "sak", "app-key", "-n", tenant, "credop.dev/rotate=now")

    def restarted() -> bool:
        template = cluster.apps.read_namespaced_deployment("app", tenant).spec.template
        return "kubectl.kubernetes.io/restartedAt" in (template.metadata.annotations or {})

    wait_for(restarted, what="the rollout restart of Deployment app")


def test_a_protected_key_goes_with_its_namespace(installed: Installed, tenant: str) -> None:
    cluster = installed.cluster
    cluster.apply(key("guarded", tenant, deletionProtection=True))
    wait_phase(cluster, "serviceaccountkeys", tenant, "guarded", "Active")
    refused = cluster.kubectl("delete", "sak", "guarded", "-n", tenant, check=False)
    assert "[deletionProtection]" in refused.stderr, refused.stderr
    cluster.core.delete_namespace(tenant)
    wait_for(
        lambda: tenant not in {n.metadata.name for n in cluster.core.list_namespace().items},
        timeout=90,
        what="the namespace to go",
    )


def test_the_operator_was_never_refused(installed: Installed, tenant: str) -> None:
    """Everything above ran with the chart's rights only: no call of the operator was forbidden."""
    cluster = installed.cluster
    cluster.apply(key("last", tenant))
    wait_phase(cluster, "serviceaccountkeys", tenant, "last", "Active")
    identity = f"system:serviceaccount:{SYSTEM}:{OPERATOR_SA}"  # RBAC refusals read: User "<identity>" cannot ...
    assert [line for line in installed.logs.lines if identity in line and " cannot " in line] == []
    assert any("credop" in line for line in installed.logs.lines), "the operator's log was captured"


# Minimal ------------------------------------------------------------------------------------------


OPERATOR_REFUSED = [
    "delete secrets",
    "deletecollection secrets",
    "create pods",
    "get configmaps",
    "update serviceaccountkeys.credop.dev",
    "patch apiclients.credop.dev",
    "delete serviceaccountkeys.credop.dev",
    "create keypolicies.credop.dev",
    "create clusterrolebindings.rbac.authorization.k8s.io",
    "escalate clusterroles.rbac.authorization.k8s.io",
    "bind clusterroles.rbac.authorization.k8s.io",
    "impersonate users",
    "create validatingwebhookconfigurations.admissionregistration.k8s.io",
    "patch validatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses",
    "delete deployments.apps",
    "get deployments.apps",
    "list nodes",
    "create serviceaccounts --subresource=token",
]
OPERATOR_ALLOWED = [
    "watch serviceaccountkeys.credop.dev",
    "patch serviceaccountkeys.credop.dev --subresource=status",
    "patch keypolicies.credop.dev --subresource=status",
    "create secrets",
    "update secrets",
    "create events",
    "patch deployments.apps",
    "get namespaces",
    "create subjectaccessreviews.authorization.k8s.io",
    "patch validatingwebhookconfigurations.admissionregistration.k8s.io/credop",
    "patch mutatingwebhookconfigurations.admissionregistration.k8s.io/credop",
]


@pytest.mark.parametrize("question", OPERATOR_REFUSED)
def test_the_operator_is_refused_what_it_does_not_need(installed: Installed, question: str) -> None:
    assert not can_i(installed.cluster, installed.operator_kubeconfig, question, namespace="default")


@pytest.mark.parametrize("question", OPERATOR_ALLOWED)
def test_the_operator_may_do_its_work(installed: Installed, question: str) -> None:
    assert can_i(installed.cluster, installed.operator_kubeconfig, question, namespace="default")


def test_the_operator_cannot_delete_a_secret_or_start_a_pod(installed: Installed, tenant: str) -> None:
    cluster = installed.cluster
    cluster.core.create_namespaced_secret(tenant, {"metadata": {"name": "precious"}, "stringData": {"v": "x"}})
    operator = installed.operator_kubeconfig
    deleted = cluster.kubectl("delete", "secret", "precious", "-n", tenant, kubeconfig=operator, check=False)
    assert "forbidden" in deleted.stderr
    started = cluster.kubectl("run", "intruder", "--image=busybox", "-n", tenant, kubeconfig=operator, check=False)
    assert "forbidden" in started.stderr
    assert cluster.core.read_namespaced_secret("precious", tenant).data["v"] == base64.b64encode(b"x").decode()


def test_records_are_deleted_only_in_credops_namespace(installed: Installed) -> None:
    cluster, kubeconfig = installed.cluster, installed.operator_kubeconfig
    assert can_i(cluster, kubeconfig, "delete secrets", namespace=SYSTEM)
    assert not can_i(cluster, kubeconfig, "delete secrets", namespace="default")


def test_only_the_lease_and_only_in_credops_namespace(installed: Installed) -> None:
    cluster, kubeconfig = installed.cluster, installed.operator_kubeconfig
    assert can_i(cluster, kubeconfig, "update leases.coordination.k8s.io/credop-operator", namespace=SYSTEM)
    assert not can_i(cluster, kubeconfig, "update leases.coordination.k8s.io/other", namespace=SYSTEM)
    assert not can_i(cluster, kubeconfig, "create leases.coordination.k8s.io", namespace="default")


SERVICE_ALLOWED = [
    ("watch apiclients.credop.dev", "default"),
    ("list keypolicies.credop.dev", "default"),
    ("get serviceaccountkeys.credop.dev", "default"),
    ("patch apiclients.credop.dev --subresource=status", "default"),
    ("patch serviceaccountkeys.credop.dev --subresource=status", "default"),
    ("get secrets", SYSTEM),
    ("watch secrets", SYSTEM),
    ("watch configmaps", SYSTEM),
    ("update configmaps", SYSTEM),
]
SERVICE_REFUSED = [
    ("get secrets", "default"),
    ("list secrets", "default"),
    ("watch secrets", "default"),
    ("create secrets", SYSTEM),
    ("create secrets", "default"),
    ("update secrets", "default"),
    ("delete secrets", "default"),
    ("update apiclients.credop.dev", "default"),
    ("patch keypolicies.credop.dev --subresource=status", "default"),
    ("get configmaps", "default"),
    ("create events", "default"),
    ("create pods", SYSTEM),
]


@pytest.mark.parametrize(("question", "namespace"), SERVICE_ALLOWED)
def test_the_credential_service_may_read_and_record_use(installed: Installed, question: str, namespace: str) -> None:
    assert can_i(installed.cluster, installed.service_kubeconfig, question, namespace=namespace)


@pytest.mark.parametrize(("question", "namespace"), SERVICE_REFUSED)
def test_the_credential_service_may_not_write_secrets_or_specs(installed: Installed, question: str, namespace: str) -> None:  # fmt: skip
    assert not can_i(installed.cluster, installed.service_kubeconfig, question, namespace=namespace)


def test_no_role_has_wildcards_or_escalating_verbs() -> None:
    for manifest in plain_manifests():
        if manifest["kind"] not in ("ClusterRole", "Role"):
            continue
        for rule in manifest["rules"]:
            assert "nonResourceURLs" not in rule, manifest["metadata"]["name"]
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (manifest["metadata"]["name"], rule)
            assert not ESCALATING_VERBS & set(rule["verbs"]), (manifest["metadata"]["name"], rule)


# The roles for people -----------------------------------------------------------------------------


USER_ROLES = [
    ("view", "list serviceaccountkeys.credop.dev", True),
    ("view", "create serviceaccountkeys.credop.dev", False),
    ("view", "get secrets", False),
    ("edit", "create serviceaccountkeys.credop.dev", True),
    ("edit", "delete apiclients.credop.dev", True),
    ("edit", "create keypolicies.credop.dev", False),
    ("edit", "patch serviceaccountkeys.credop.dev --subresource=status", False),
    ("admin", "create keypolicies.credop.dev", True),
    ("admin", "patch apiclients.credop.dev --subresource=status", False),
]


@pytest.mark.parametrize(("role", "question", "expected"), USER_ROLES)
def test_credop_roles_aggregate_into_admin_edit_and_view(installed: Installed, role: str, question: str, expected: bool) -> None:  # fmt: skip
    cluster = installed.cluster
    namespace = f"roles-{role}"
    if namespace not in {n.metadata.name for n in cluster.core.list_namespace().items}:
        cluster.core.create_namespace({"metadata": {"name": namespace}})
        cluster.kubectl("create", "rolebinding", role, "-n", namespace, f"--clusterrole={role}", f"--user={role}-user")

    def answer() -> bool:
        args = ["auth", "can-i", *question.split(), "-n", namespace]
        result = cluster.kubectl(*args, as_user=f"{role}-user", check=False)
        return (result.stdout.strip() == "yes") == expected

    wait_for(answer, what=f"{role} to {'allow' if expected else 'refuse'}: {question}")


def test_the_credential_service_runs_with_exactly_its_rbac(installed: Installed, tenant: str) -> None:
    """The service, logged in as its own ServiceAccount, becomes ready and issues a token."""
    import asyncio
    import threading
    import urllib.parse
    import urllib.request

    from credop.service import run_service

    cluster = installed.cluster
    cluster.kubectl(
        "apply",
        "-n",
        tenant,
        "-f",
        "-",
        input=json.dumps(
            {"apiVersion": "credop.dev/v1alpha1", "kind": "ApiClient", "metadata": {"name": "rbac-client"}, "spec": {}}
        ),
        as_user="admin",
        as_groups=("system:masters",),
    )
    wait_phase(cluster, "apiclients", tenant, "rbac-client", "Active")
    secret = cluster.core.read_namespaced_secret("rbac-client", tenant).data
    client_secret = base64.b64decode(secret["clientSecret"]).decode()
    port, stop, ready = free_port(), threading.Event(), threading.Event()
    config = Config(namespace=SYSTEM, endpoint=f"http://127.0.0.1:{port}", kubeconfig=installed.service_kubeconfig)
    serving = threading.Thread(
        target=lambda: asyncio.run(run_service(config, host="127.0.0.1", port=port, stop_flag=stop, ready_flag=ready)),
        daemon=True,
    )
    serving.start()
    try:
        assert ready.wait(60), "the service did not become ready with its own RBAC"
        form = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": f"{tenant}/rbac-client", "client_secret": client_secret}
        ).encode()

        def token() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/oauth2/token", data=form, timeout=5) as answer:
                    return json.loads(answer.read())  # type: ignore[no-any-return]
            except urllib.error.HTTPError:
                return None

        issued = wait_for(token, timeout=30, what="a token from the service")
        assert issued["token_type"] == "Bearer"
    finally:
        stop.set()
        serving.join(30)
