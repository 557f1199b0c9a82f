"""What the cluster tests share: credop manifests, reading and waiting on status, Secret data, "until gone", identities.

Test modules import their helpers from here (and from ``kube``, ``operator``,
``service``, ``charting``, ``hostile``), never from another test module. The
waits poll the API until a condition holds (:func:`~tests.cluster.kube.wait_for`),
so a test waits exactly as long as the system takes, and no longer; a check
that something does *not* happen polls for a fixed window (:func:`holds_for`).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes

from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE

API_VERSION = "credop.dev/v1alpha1"
SAK, APIC, KPOL = "serviceaccountkeys", "apiclients", "keypolicies"
CREATED_BY = "credop.dev/created-by"
"""The annotation the mutating webhook sets to the creating user (status shows it as ``createdBy``)."""

Body = dict[str, Any]
Status = dict[str, Any]


# Manifests -----------------------------------------------------------------------------------------------
def _manifest(kind: str, name: str, namespace: str, spec: Body, annotations: Mapping[str, str] | None) -> Body:
    metadata: Body = {"name": name, "namespace": namespace}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def key_manifest(name: str, namespace: str, *, annotations: Mapping[str, str] | None = None, **spec: Any) -> Body:
    """A ServiceAccountKey for the ServiceAccount ``ci-bot`` (unless ``spec`` names another)."""
    return _manifest("ServiceAccountKey", name, namespace, {"serviceAccount": "ci-bot", **spec}, annotations)


def client_manifest(name: str, namespace: str, *, annotations: Mapping[str, str] | None = None, **spec: Any) -> Body:
    return _manifest("ApiClient", name, namespace, spec, annotations)


def policy_manifest(namespace: str, name: str = "default", **spec: Any) -> Body:
    return _manifest("KeyPolicy", name, namespace, spec, None)


def deployment_manifest(name: str = "app") -> Body:
    """A Deployment to name in ``rotation.restartTargets`` (the test bed has no node: nothing runs it)."""
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


# Identities ----------------------------------------------------------------------------------------------
def created_by(manifest: Body, user: str) -> Body:
    """``manifest`` as the mutating webhook leaves it when ``user`` creates it (for operators run without webhooks)."""
    manifest["metadata"].setdefault("annotations", {})[CREATED_BY] = user
    return manifest


def webhooks_answer(cluster: Cluster, namespace: str) -> bool:
    """The admission webhooks review credentials in ``namespace``: a dry-run create comes back with its creator."""
    probe = key_manifest("probe", namespace)
    result = cluster.kubectl(
        "create", "--dry-run=server", "-o", "json", "-n", namespace, "-f", "-", input=json.dumps(probe), check=False
    )  # fmt: skip
    return result.returncode == 0 and CREATED_BY in json.loads(result.stdout)["metadata"].get("annotations", {})


# Status --------------------------------------------------------------------------------------------------
def status_of(cluster: Cluster, namespace: str, name: str, plural: str = SAK) -> Status:
    return cluster.get(plural, namespace, name).get("status") or {}


def wait_status(
    cluster: Cluster,
    namespace: str,
    name: str,
    check: Callable[[Status], bool],
    *,
    plural: str = SAK,
    timeout: float = 30,
) -> Status:
    """The object's status, once ``check`` accepts it."""

    def probe() -> Status | None:
        status = status_of(cluster, namespace, name, plural)
        return status if check(status) else None

    return wait_for(probe, timeout=timeout, what=f"{plural}/{name} status")


def condition(status: Status, kind: str) -> str | None:
    return next((c["status"] for c in status.get("conditions", []) if c["type"] == kind), None)


def active(status: Status) -> bool:
    return status.get("phase") == "Active"


def wait_policy(cluster: Cluster, namespace: str, name: str = "default", *, timeout: float = 30) -> Status:
    """Until the operator has read the KeyPolicy as it is now (its status is for the current generation).

    The operator takes a policy into account before it writes the policy's
    status, so credentials applied after this are reconciled under it from the start.
    """

    def seen() -> Status | None:
        body = cluster.get(KPOL, namespace, name)
        status: Status = body.get("status") or {}
        return status if status and status.get("observedGeneration") == body["metadata"].get("generation") else None

    return wait_for(seen, timeout=timeout, what=f"the operator to read KeyPolicy {namespace}/{name}")


def phases(cluster: Cluster, namespace: str) -> dict[str, str | None]:
    """Every ApiClient of ``namespace`` and its phase."""
    items = cluster.custom.list_namespaced_custom_object("credop.dev", "v1alpha1", namespace, APIC)["items"]
    return {item["metadata"]["name"]: (item.get("status") or {}).get("phase") for item in items}


def count_active(cluster: Cluster, namespace: str) -> int:
    return sum(1 for phase in phases(cluster, namespace).values() if phase == "Active")


def annotations_of(cluster: Cluster, plural: str, namespace: str, name: str) -> dict[str, str]:
    return dict(cluster.get(plural, namespace, name)["metadata"].get("annotations") or {})


# Secrets -------------------------------------------------------------------------------------------------
def secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    secret = cluster.core.read_namespaced_secret(name, namespace)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def record_data(cluster: Cluster, namespace: str, name: str, plural: str = SAK) -> dict[str, str]:
    """The data of credop's record of a credential, in credop's own namespace."""
    uid = cluster.get(plural, namespace, name)["metadata"]["uid"]
    return secret_data(cluster, OPERATOR_NAMESPACE, f"credop-record-{uid}")


# Until gone, and "nothing happens" -----------------------------------------------------------------------
def gone(read: Callable[[], object]) -> bool:
    """``read()`` (an API read of one object) answers 404: the object no longer exists."""
    try:
        read()
    except kubernetes.client.ApiException as error:
        return bool(error.status == 404)
    return False


def wait_gone(read: Callable[[], object], *, timeout: float = 30, what: str) -> None:
    """Until ``read()`` answers 404 (a garbage collector or namespace controller has done its work)."""
    wait_for(lambda: gone(read), timeout=timeout, what=what)


def holds_for(condition: Callable[[], object], seconds: float, *, interval: float = 0.1, what: str) -> None:
    """``condition()`` stays true for ``seconds``: the check that something does *not* happen.

    Polls from the start to the end of the window and fails as soon as the
    condition breaks, naming ``what`` and when. Only this kind of check needs a
    fixed wait: there is no event to wait for when the point is that none comes.
    """
    started = time.monotonic()
    deadline = started + seconds
    while True:
        assert condition(), f"{what}: no longer true after {time.monotonic() - started:.1f}s of {seconds}s"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(interval, remaining))
