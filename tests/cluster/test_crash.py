"""Killing the operator between creating a Secret and recording it never re-mints."""

from __future__ import annotations

import base64
import subprocess
import sys

from tests.cluster.kube import REPO, Cluster, wait_for
from tests.cluster.operator import OperatorThread, SessionOperator
from tests.cluster.test_keys import key_manifest, status_of, wait_status


def secrets_of(cluster: Cluster, namespace: str) -> dict[str, dict[str, str]]:
    items = cluster.core.list_namespaced_secret(namespace, label_selector="app.kubernetes.io/managed-by=credop").items
    return {s.metadata.name: {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()} for s in items}


def test_crash_between_secret_create_and_status_patch(
    cluster: Cluster, namespace: str, operator: SessionOperator
) -> None:
    with operator.paused():
        crashing = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.crashing_operator", str(cluster.kubeconfig)], cwd=REPO
        )
        try:
            cluster.apply(key_manifest("crash", namespace))
            assert crashing.wait(timeout=60) == 137, "the operator should have died right after creating the Secret"
        finally:
            if crashing.poll() is None:
                crashing.kill()
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
