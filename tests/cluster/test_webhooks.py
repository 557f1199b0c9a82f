"""The admission webhooks on the real control plane: each rule with a user it lets through and one it refuses.

Users are impersonated (``--as``/``--as-group``); the webhook configurations
are the chart's, pointed at an operator in this process that serves them, and
limited to this module's namespaces so other tests' credentials never meet them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from credop.clock import utc_now
from credop.config import Config, WebhookSettings
from credop.kube.client import Kube, load_configuration
from credop.webhooks.requests import AdmissionRequest, parse_request
from credop.webhooks.review import Admission as ReplicaAdmission
from testbed import free_port
from tests.cluster.charting import deployment_env, of_kind, render, webhook_configurations_at
from tests.cluster.helpers import (
    APIC,
    CREATED_BY,
    SAK,
    annotations_of,
    wait_gone,
    webhooks_answer,
)
from tests.cluster.helpers import client_manifest as client
from tests.cluster.helpers import key_manifest as key
from tests.cluster.helpers import policy_manifest as policy
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import TEST_ENDPOINT, OperatorThread

RELEASE = "credop-admission"
RUN_LABEL = "credop.dev/admission-test"


@dataclass(frozen=True)
class Admission:
    cluster: Cluster
    run: str
    operator: OperatorThread


@pytest.fixture(scope="module")
def admission(crds: Cluster, operator_namespace: str) -> Iterator[Admission]:
    """An operator serving the webhooks, and the chart's webhook configurations calling it."""
    port, run = free_port(), uuid.uuid4().hex[:8]
    rendered = render(RELEASE, operator_namespace, "--set", "webhook.certificate.source=operator")
    selector = {"matchLabels": {RUN_LABEL: run}}
    configurations = webhook_configurations_at(rendered, url=f"https://127.0.0.1:{port}", namespace_selector=selector)
    installed = configurations + of_kind(rendered, "ClusterRole")
    crds.apply(installed)
    env = deployment_env(rendered, f"{RELEASE}-operator")
    local = {
        "CREDOP_WEBHOOK_PORT": str(port),
        "CREDOP_WEBHOOK_ADDRESS": "127.0.0.1",
        "CREDOP_WEBHOOK_HOSTS": "127.0.0.1",
    }
    config = Config(
        namespace=operator_namespace,
        endpoint=TEST_ENDPOINT,
        kubeconfig=crds.kubeconfig,
        leader_election=False,
        webhook=WebhookSettings.from_environment(env | local),
    )
    running = OperatorThread(crds.kubeconfig, config=config).start()
    try:
        yield Admission(crds, run, running)
    finally:
        running.stop()
        for manifest in installed:
            crds.kubectl("delete", manifest["kind"], manifest["metadata"]["name"], "--ignore-not-found")


@pytest.fixture
def tenant(admission: Admission, namespace: str) -> str:
    """A namespace under the webhooks, where every authenticated user holds the chart's credop-editor role
    and may read Secrets (a client secret must be one its creator may read)."""
    cluster = admission.cluster
    cluster.kubectl("label", "namespace", namespace, f"{RUN_LABEL}={admission.run}")
    cluster.kubectl(
        "create", "rolebinding", "everyone-edits", "-n", namespace,
        f"--clusterrole={RELEASE}-editor", "--group=system:authenticated",
    )  # fmt: skip
    cluster.kubectl("create", "role", "read-secrets", "-n", namespace, "--verb=get", "--resource=secrets")
    cluster.kubectl(
        "create", "rolebinding", "everyone-reads-secrets", "-n", namespace,
        "--role=read-secrets", "--group=system:authenticated",
    )  # fmt: skip
    wait_for(lambda: webhooks_answer(cluster, namespace), timeout=60, what="the webhooks to answer")
    return namespace


# Calls --------------------------------------------------------------------------------------------


def create(
    cluster: Cluster, manifest: dict[str, Any], user: str, *groups: str, dry_run: bool = False
) -> subprocess.CompletedProcess[str]:
    args = ["create", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    return cluster.kubectl(*args, input=json.dumps(manifest), check=False, as_user=user, as_groups=groups)


def patch(
    cluster: Cluster, plural: str, namespace: str, name: str, body: dict[str, Any], user: str, *groups: str
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "patch", plural, name, "-n", namespace, "--type=merge", "-p", json.dumps(body),
        check=False, as_user=user, as_groups=groups,
    )  # fmt: skip


def allowed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def refused(result: subprocess.CompletedProcess[str], rule: str, field: str) -> str:
    """The refusal names the rule (in brackets) and the field."""
    assert result.returncode != 0, result.stdout
    assert "denied the request" in result.stderr, result.stderr
    assert f"[{rule}] {field}" in result.stderr, result.stderr
    return result.stderr


def admin_apply(cluster: Cluster, *manifests: dict[str, Any]) -> None:
    cluster.apply(list(manifests))


# Created by ---------------------------------------------------------------------------------------


def test_created_by_is_the_requesting_user_and_reaches_status(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    allowed(create(cluster, key("mine", tenant, annotations={CREATED_BY: "someone-else"}), "alice", "team"))
    allowed(create(cluster, client("portal", tenant), "bob", "team"))
    assert annotations_of(cluster, SAK, tenant, "mine")[CREATED_BY] == "alice"
    assert annotations_of(cluster, APIC, tenant, "portal")[CREATED_BY] == "bob"
    status = wait_for(lambda: cluster.get(SAK, tenant, "mine").get("status", {}).get("createdBy"), what="createdBy")
    assert status == "alice"


def test_created_by_cannot_be_changed_and_survives_being_dropped(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    allowed(create(cluster, key("kept", tenant), "alice"))
    changed = patch(cluster, SAK, tenant, "kept", {"metadata": {"annotations": {CREATED_BY: "mallory"}}}, "mallory")
    refused(changed, "createdBy", f"metadata.annotations[{CREATED_BY}]")
    allowed(patch(cluster, SAK, tenant, "kept", {"metadata": {"annotations": {CREATED_BY: None}}}, "alice"))
    assert annotations_of(cluster, SAK, tenant, "kept")[CREATED_BY] == "alice"


def test_server_side_apply_keeps_created_by(admission: Admission, tenant: str) -> None:
    """GitOps tools re-apply manifests without the annotation credop added: nothing is refused or lost."""
    cluster = admission.cluster
    manifest = json.dumps(key("gitops", tenant, description="v1"))
    for description in ("v1", "v2"):
        text = manifest.replace('"v1"', f'"{description}"')
        applied = cluster.kubectl(
            "apply", "--server-side", "--field-manager=argocd-controller", "-f", "-",
            input=text, check=False, as_user="ci", as_groups=("team",),
        )  # fmt: skip
        allowed(applied)
    stored = cluster.get(SAK, tenant, "gitops")
    assert stored["metadata"]["annotations"][CREATED_BY] == "ci"
    assert stored["spec"]["description"] == "v2"


# Creators -----------------------------------------------------------------------------------------


def test_only_the_policys_creators_may_create(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, creators={"users": ["alice"], "groups": ["platform"]}))
    allowed(create(cluster, key("by-alice", tenant), "alice"))
    allowed(create(cluster, client("by-platform", tenant), "bob", "platform"))
    message = refused(create(cluster, key("by-mallory", tenant), "mallory", "devs"), "creators", "metadata")
    assert 'user "mallory" is not among the KeyPolicy\'s creators' in message
    assert 'KeyPolicy "default"' in message
    refused(create(cluster, client("by-mallory", tenant), "mallory", "devs"), "creators", "metadata")


def test_moving_to_another_policy_needs_its_creators(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, "strict", creators={"users": ["alice"]}))
    allowed(create(cluster, key("mover", tenant), "mallory"))
    refused(patch(cluster, SAK, tenant, "mover", {"spec": {"policyName": "strict"}}, "mallory"), "creators", "metadata")
    allowed(patch(cluster, SAK, tenant, "mover", {"spec": {"policyName": "strict"}}, "alice"))


def test_a_credential_may_only_name_an_existing_policy(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    message = refused(
        create(cluster, key("lost", tenant, policyName="nowhere"), "alice"), "policyName", "spec.policyName"
    )
    assert 'KeyPolicy "nowhere" does not exist' in message
    admin_apply(cluster, policy(tenant, "somewhere"))
    allowed(create(cluster, key("found", tenant, policyName="somewhere"), "alice"))


# Keys per owner -----------------------------------------------------------------------------------


def test_max_keys_per_owner_counts_each_user_and_spares_admins(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, maxKeysPerOwner=1, adminGroups=["key-admins"]))
    allowed(create(cluster, key("alice-1", tenant), "alice"))
    message = refused(create(cluster, key("alice-2", tenant), "alice"), "maxKeysPerOwner", "metadata")
    assert "already holds 1 ServiceAccountKeys" in message
    allowed(create(cluster, key("bob-1", tenant), "bob"))
    for index in range(3):
        allowed(create(cluster, key(f"carol-{index}", tenant), "carol", "key-admins"))
    cluster.kubectl("delete", "sak", "alice-1", "-n", tenant)
    allowed(create(cluster, key("alice-2", tenant), "alice"))


ARGO_CD = "system:serviceaccount:argocd:argocd-application-controller"
ARGO_CD_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated")


def test_a_cluster_admin_applies_a_repository_of_keys_where_no_policy_says_otherwise(
    admission: Admission, tenant: str
) -> None:
    cluster = admission.cluster
    for index in range(4):
        allowed(create(cluster, key(f"admin-{index}", tenant), "kubernetes-admin", "kubeadm:cluster-admins", "system:authenticated"))  # fmt: skip
    for index in range(3):
        allowed(create(cluster, key(f"root-{index}", tenant), "root", "system:masters"))
    allowed(create(cluster, key("person-1", tenant), "gina"))
    allowed(create(cluster, key("person-2", tenant), "gina"))
    refused(create(cluster, key("person-3", tenant), "gina"), "maxKeysPerOwner", "metadata")


def test_a_gitops_controller_exempted_by_its_policy_applies_every_key(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, adminGroups=["system:serviceaccounts:argocd"]))
    for index in range(5):
        allowed(create(cluster, key(f"synced-{index}", tenant), ARGO_CD, *ARGO_CD_GROUPS))
    allowed(create(cluster, key("person-1", tenant), "hank"))
    allowed(create(cluster, key("person-2", tenant), "hank"))
    refused(create(cluster, key("person-3", tenant), "hank"), "maxKeysPerOwner", "metadata")


def test_simultaneous_creates_by_one_user_respect_the_limit(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, maxKeysPerOwner=2))
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: create(cluster, key(f"rush-{i}", tenant), "dave"), range(6)))
    assert sum(result.returncode == 0 for result in results) == 2
    assert all("[maxKeysPerOwner]" in result.stderr for result in results if result.returncode != 0)


def test_two_replicas_reviewing_at_once_still_count_each_users_keys_exactly(admission: Admission, tenant: str) -> None:
    """Two webhook replicas (each its own Admission, as two pods are) get 8 creates by one user at the same instant."""
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, maxKeysPerOwner=3))
    config = admission.operator.config
    requester = {"username": "frank", "groups": ["system:authenticated"]}

    def request(index: int) -> AdmissionRequest:
        metadata = {"name": f"race-{index}", "namespace": tenant, "annotations": {CREATED_BY: "frank"}}
        body = {**key(f"race-{index}", tenant), "metadata": metadata}
        return parse_request(plural=SAK, operation="CREATE", userinfo=requester, new=body, old=None, dry_run=False)

    async def race() -> list[bool]:
        kubes = [Kube(load_configuration(cluster.kubeconfig)) for _ in range(2)]
        replicas = [ReplicaAdmission(kube, clock=utc_now, namespace=config.namespace) for kube in kubes]
        try:
            verdicts = await asyncio.gather(*(replicas[i % 2].review(request(i)) for i in range(8)))
        finally:
            for kube in kubes:
                kube.close()
        assert all("[maxKeysPerOwner]" in str(d) for denials in verdicts for d in denials), verdicts
        return [not denials for denials in verdicts]

    assert sum(asyncio.run(race())) == 3, "exactly maxKeysPerOwner admitted across both replicas"


def test_a_dry_run_does_not_use_up_the_allowance(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, maxKeysPerOwner=1))
    for attempt in range(3):
        allowed(create(cluster, key(f"try-{attempt}", tenant), "erin", dry_run=True))
    allowed(create(cluster, key("real", tenant), "erin"))


# Spec rules ---------------------------------------------------------------------------------------


def test_roles_must_be_the_policys_with_their_scopes(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    roles = [{"name": "Reader"}, {"name": "Auditor", "requiresScope": True}]
    admin_apply(cluster, policy(tenant, roles=roles))
    message = refused(
        create(cluster, key("admin-role", tenant, roles=[{"name": "GlobalAdmin"}]), "alice"),
        "roles", "spec.roles[0].name",
    )  # fmt: skip
    assert 'role "GlobalAdmin" is not allowed (allowed: Auditor, Reader)' in message
    refused(
        create(cluster, key("unscoped", tenant, roles=[{"name": "Auditor"}]), "alice"), "roles", "spec.roles[0].scope"
    )
    allowed(create(cluster, key("reader", tenant, roles=[{"name": "Reader"}, {"name": "Auditor", "scope": ["acct-1"]}]), "alice"))  # fmt: skip
    refused(patch(cluster, SAK, tenant, "reader", {"spec": {"roles": [{"name": "Owner"}]}}, "alice"), "roles", "spec.roles[0].name")  # fmt: skip


def test_expiry_rules_never_expire_and_max_expiry(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, maxExpiry="30d"))
    refused(
        create(cluster, key("forever", tenant, neverExpires=True), "alice"), "allowNeverExpire", "spec.neverExpires"
    )
    message = refused(create(cluster, key("long", tenant, expiresIn="60d"), "alice"), "maxExpiry", "spec.expiresIn")
    assert "maxExpiry of 30d" in message
    refused(
        create(cluster, key("past", tenant, expiresAt="2020-01-01T00:00:00Z"), "alice"), "expiresAt", "spec.expiresAt"
    )
    allowed(create(cluster, key("short", tenant, expiresIn="10d"), "alice"))
    refused(
        patch(cluster, SAK, tenant, "short", {"spec": {"expiresIn": "90d"}}, "alice"), "maxExpiry", "spec.expiresIn"
    )


def test_a_key_that_a_stricter_policy_outlawed_can_still_be_edited(admission: Admission, tenant: str) -> None:
    """Only the rules of the fields an edit touches are checked again (the controller reports the rest)."""
    cluster = admission.cluster
    allowed(create(cluster, key("legacy", tenant, roles=[{"name": "GlobalAdmin"}]), "alice"))
    admin_apply(cluster, policy(tenant, roles=[{"name": "Reader"}]))
    allowed(
        patch(cluster, SAK, tenant, "legacy", {"spec": {"description": "to be replaced", "active": False}}, "alice")
    )


def test_immutable_fields_are_refused_naming_the_field(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    allowed(create(cluster, key("fixed", tenant, secretName="fixed-secret"), "alice"))
    refused(patch(cluster, SAK, tenant, "fixed", {"spec": {"serviceAccount": "other-bot"}}, "alice"), "immutable", "spec.serviceAccount")  # fmt: skip
    for field, value in (("format", "JWT"), ("keyType", "Api"), ("secretName", "elsewhere")):
        changed = patch(cluster, SAK, tenant, "fixed", {"spec": {field: value}}, "alice")
        assert changed.returncode != 0
        assert f"spec.{field} is immutable" in changed.stderr, changed.stderr
    allowed(patch(cluster, SAK, tenant, "fixed", {"spec": {"description": "editable"}}, "alice"))


# ApiClients ---------------------------------------------------------------------------------------


def user_secret(cluster: Cluster, namespace: str, name: str, value: str) -> None:
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": name}, "stringData": {"clientSecret": value}}
    )


def test_a_user_supplied_client_secret_must_satisfy_the_policy(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    user_secret(cluster, tenant, "weak", "password123")
    user_secret(cluster, tenant, "strong", "Str0ng#Secret")
    message = refused(
        create(cluster, client("weak-client", tenant, clientSecretRef={"name": "weak"}), "alice"),
        "clientSecret", "spec.clientSecretRef",
    )  # fmt: skip
    assert "does not meet the policy's rules (8 to 30 characters" in message
    assert "password123" not in message and "must contain" not in message
    refused(
        create(cluster, client("no-secret", tenant, clientSecretRef={"name": "absent"}), "alice"),
        "clientSecret", "spec.clientSecretRef",
    )  # fmt: skip
    refused(
        create(cluster, client("no-key", tenant, clientSecretRef={"name": "strong", "key": "other"}), "alice"),
        "clientSecret", "spec.clientSecretRef",
    )  # fmt: skip
    allowed(create(cluster, client("strong-client", tenant, clientSecretRef={"name": "strong"}), "alice"))
    switched = patch(cluster, APIC, tenant, "strong-client", {"spec": {"clientSecretRef": {"name": "weak"}}}, "alice")
    refused(switched, "clientSecret", "spec.clientSecretRef")


def test_client_ids_are_unique_in_a_namespace(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    allowed(create(cluster, client("first", tenant, clientId="shared-id"), "alice"))
    message = refused(create(cluster, client("second", tenant, clientId="shared-id"), "bob"), "uniqueClientId", "spec.clientId")  # fmt: skip
    assert 'already used by ApiClient "first"' in message
    refused(create(cluster, client("shared-id", tenant), "bob"), "uniqueClientId", "spec.clientId")
    allowed(create(cluster, client("second", tenant, clientId="own-id"), "bob"))
    refused(patch(cluster, APIC, tenant, "second", {"spec": {"clientId": "shared-id"}}, "bob"), "uniqueClientId", "spec.clientId")  # fmt: skip
    allowed(patch(cluster, APIC, tenant, "first", {"spec": {"description": "still unique"}}, "alice"))


def test_token_validity_must_lie_within_the_policy(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    admin_apply(cluster, policy(tenant, tokenValidity={"minSeconds": 300, "maxSeconds": 3600, "defaultSeconds": 900}))
    refused(
        create(cluster, client("eternal", tenant, tokenValiditySeconds=86400), "alice"),
        "tokenValidity", "spec.tokenValiditySeconds",
    )  # fmt: skip
    allowed(create(cluster, client("bounded", tenant, tokenValiditySeconds=1800), "alice"))


# Deletion protection ------------------------------------------------------------------------------


def delete(cluster: Cluster, plural: str, namespace: str, name: str, user: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("delete", plural, name, "-n", namespace, "--wait=false", check=False, as_user=user)


@pytest.mark.parametrize(("plural", "manifest"), [(SAK, key), (APIC, client)])
def test_deletion_protection_needs_the_confirmation(admission: Admission, tenant: str, plural: str, manifest: Any) -> None:  # fmt: skip
    cluster = admission.cluster
    allowed(create(cluster, manifest("guarded", tenant, deletionProtection=True), "alice"))
    message = refused(
        delete(cluster, plural, tenant, "guarded", "alice"), "deletionProtection", "spec.deletionProtection"
    )
    assert "credop.dev/confirm-delete=guarded" in message
    cluster.kubectl("annotate", plural, "guarded", "-n", tenant, "credop.dev/confirm-delete=something-else")
    refused(delete(cluster, plural, tenant, "guarded", "alice"), "deletionProtection", "spec.deletionProtection")
    cluster.kubectl("annotate", "--overwrite", plural, "guarded", "-n", tenant, "credop.dev/confirm-delete=guarded")
    allowed(delete(cluster, plural, tenant, "guarded", "alice"))
    allowed(create(cluster, manifest("unguarded", tenant), "alice"))
    allowed(delete(cluster, plural, tenant, "unguarded", "alice"))


def test_deleting_the_namespace_deletes_protected_credentials(admission: Admission, tenant: str) -> None:
    cluster = admission.cluster
    allowed(create(cluster, key("guarded", tenant, deletionProtection=True), "alice"))
    cluster.core.delete_namespace(tenant)
    wait_gone(
        lambda: cluster.core.read_namespace(tenant), timeout=90, what="the namespace controller to delete the namespace"
    )
