"""Killing the operator between creating a Secret and recording it never re-mints, nor loses a request."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import pytest

from tests.cluster.helpers import APIC, SAK, client_manifest, key_manifest, status_of, wait_status
from tests.cluster.kube import REPO, Cluster, wait_for
from tests.cluster.operator import OperatorThread, SessionOperator


def secrets_of(cluster: Cluster, namespace: str) -> dict[str, dict[str, str]]:
    items = cluster.core.list_namespaced_secret(namespace, label_selector="app.kubernetes.io/managed-by=credop").items
    return {s.metadata.name: {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()} for s in items}


def crash_after_first_secret(cluster: Cluster, manifest: dict[str, Any]) -> None:
    """Apply ``manifest`` under an operator process that dies right after it creates the credential's Secret."""
    crashing = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.crashing_operator", str(cluster.kubeconfig)], cwd=REPO
    )
    try:
        cluster.apply(manifest)
        assert crashing.wait(timeout=60) == 137, "the operator should have died right after creating the Secret"
    finally:
        if crashing.poll() is None:
            crashing.kill()


def reasons(cluster: Cluster, namespace: str, name: str) -> list[str]:
    return [e["reason"] for e in cluster.events(namespace) if e["involvedObject"]["name"] == name]


def test_crash_between_secret_create_and_status_patch(
    cluster: Cluster, namespace: str, operator: SessionOperator
) -> None:
    with operator.paused():
        crash_after_first_secret(cluster, key_manifest("crash", namespace))
        minted = secrets_of(cluster, namespace)
        assert list(minted) == ["crash"]
        assert "accessKeyId" not in status_of(cluster, namespace, "crash"), "the crash came before the status patch"
        restarted = OperatorThread(cluster.kubeconfig).start()
        try:
            status = wait_status(cluster, namespace, "crash", lambda s: s.get("phase") == "Active")
            wait_for(
                lambda: status_of(cluster, namespace, "crash").get("keyGeneration") == 1,
                what="status to record generation 1",
            )
        finally:
            restarted.stop()
    assert secrets_of(cluster, namespace) == minted
    assert status["accessKeyId"] == minted["crash"]["accessKeyId"]


@pytest.mark.parametrize(
    ("plural", "short", "manifest", "secret_field"),
    [
        (SAK, "sak", key_manifest, "secretKey"),
        (APIC, "apic", client_manifest, "clientSecret"),
    ],
)
def test_a_rotation_requested_while_the_operator_is_down_after_a_crash_is_done_once(
    cluster: Cluster,
    namespace: str,
    operator: SessionOperator,
    plural: str,
    short: str,
    manifest: Any,
    secret_field: str,
) -> None:
    """The lost rotation of issue 9: minted, killed before status, rotate requested, restarted."""
    with operator.paused():
        crash_after_first_secret(cluster, manifest("lost", namespace))
        first = secrets_of(cluster, namespace)["lost"][secret_field]
        assert "keyGeneration" not in status_of(cluster, namespace, "lost", plural)
        cluster.kubectl("annotate", short, "lost", "-n", namespace, "credop.dev/rotate=r1")
        restarted = OperatorThread(cluster.kubeconfig).start()
        try:
            status = wait_status(
                cluster, namespace, "lost", lambda s: s.get("rotateHandled") == "manual:r1", plural=plural
            )
            wait_for(lambda: "Rotated" in reasons(cluster, namespace, "lost"), what="the Rotated event")
        finally:
            restarted.stop()
    assert status["keyGeneration"] == 2
    assert secrets_of(cluster, namespace)["lost"][secret_field] != first
    assert reasons(cluster, namespace, "lost").count("Rotated") == 1
