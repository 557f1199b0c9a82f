"""rotation.autoRotate with restartTargets on a real Deployment that mounts the key's Secret.

The Deployment is restarted (``kubectl rollout restart``'s annotation), its new
pods read the new secret, and the old secret keeps working through the grace
period and stops after it, as the credential service answers a pod.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import E2E, SERVICE_URL, wait_until

pytestmark = pytest.mark.e2e
GRACE_S = 30


def verify(e2e: E2E, namespace: str, pod: str, access_key: str, secret_key: str) -> bool:
    body = {"accessKeyId": access_key, "secretKey": secret_key, "method": "GET"}
    (answer,) = e2e.pod_http(
        namespace, pod, [{"url": f"{SERVICE_URL}/v1/verify", "json": body, "ca": e2e.service_ca()}]
    )
    assert answer["status"] == 200, answer
    return bool(answer["body"]["valid"])


def consumer(e2e: E2E, namespace: str) -> dict[str, Any]:
    """A Deployment whose pods mount the key's Secret (the workload that rotation restarts)."""
    labels = {"app": "consumer"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "consumer", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534},
                    "containers": [
                        {
                            "name": "app",
                            "image": e2e.images["base"],
                            "imagePullPolicy": "Never",
                            "command": ["python3", "-c", "import time\nwhile True: time.sleep(3600)"],
                            "volumeMounts": [{"name": "key", "mountPath": "/credential", "readOnly": True}],
                        }
                    ],
                    "volumes": [{"name": "key", "secret": {"secretName": "rotating"}}],
                },
            },
        },
    }


def running_pods(e2e: E2E, namespace: str) -> list[dict[str, Any]]:
    pods = e2e.get("pods", namespace=namespace, selector="app=consumer")
    return [p for p in pods if e2e.ready(p) and not p["metadata"].get("deletionTimestamp")]


def test_auto_rotation_restarts_the_deployment_and_the_old_secret_works_through_the_grace_period(e2e: E2E) -> None:
    namespace = e2e.namespace("e2e-rotation")
    # The first rotation comes 20 s after the mint (60 s period, renewed 40 s before its end).
    policy = {"period": "60s", "notifyBefore": "None", "action": "None"}
    e2e.policy(namespace, {"rotation": policy})
    e2e.apply(consumer(e2e, namespace))  # its pod waits for the Secret
    client = e2e.client_pod(namespace)
    rotation = {
        "autoRotate": True,
        "renewBefore": "40s",
        "gracePeriod": f"{GRACE_S}s",
        "restartTargets": [{"kind": "Deployment", "name": "consumer"}],
    }
    key = {"apiVersion": "credop.dev/v1alpha1", "kind": "ServiceAccountKey", "metadata": {"name": "rotating"}}
    e2e.apply({**key, "spec": {"serviceAccount": "batch", "rotation": rotation}}, namespace=namespace)
    wait_until(
        lambda: e2e.status("serviceaccountkeys", namespace, "rotating").get("phase") == "Active", what="the key Active"
    )
    old = e2e.secret_data(namespace, "rotating")
    (first,) = wait_until(lambda: running_pods(e2e, namespace), timeout=90, what="the consumer pod")
    seen = e2e.kubectl("exec", "-n", namespace, first["metadata"]["name"], "--", "cat", "/credential/secretKey").stdout
    assert seen == old["secretKey"]
    assert verify(e2e, namespace, client, old["accessKeyId"], old["secretKey"])

    rotated = wait_until(
        lambda: e2e.status("serviceaccountkeys", namespace, "rotating").get("keyGeneration", 0) >= 2,
        timeout=60,
        interval=0.2,
        what="the automatic rotation",
    )
    rotated_at = time.monotonic()
    # No more rotations while the test looks: the policy's period becomes an hour.
    e2e.policy(namespace, {"rotation": {**policy, "period": "1h"}})
    status = e2e.status("serviceaccountkeys", namespace, "rotating")
    assert rotated and status["rotateHandled"].startswith("auto:"), status
    new = e2e.secret_data(namespace, "rotating")
    assert new["secretKey"] != old["secretKey"]

    deployment = e2e.get("deployment", "consumer", namespace=namespace)
    assert "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"].get("annotations", {})
    e2e.kubectl("rollout", "status", "deployment/consumer", "-n", namespace, "--timeout=90s", timeout=120)
    (second,) = wait_until(
        lambda: [p for p in running_pods(e2e, namespace) if p["metadata"]["uid"] != first["metadata"]["uid"]],
        timeout=60,
        what="the restarted consumer pod",
    )
    seen = e2e.kubectl("exec", "-n", namespace, second["metadata"]["name"], "--", "cat", "/credential/secretKey").stdout
    assert seen == new["secretKey"], "the restarted pod does not see the new secret"
    assert verify(e2e, namespace, client, new["accessKeyId"], new["secretKey"])

    in_grace = verify(e2e, namespace, client, old["accessKeyId"], old["secretKey"])
    checked_after = time.monotonic() - rotated_at
    assert checked_after < GRACE_S, f"too slow to look inside the grace period ({checked_after:.1f}s)"
    assert in_grace, (
        f"the old secret stopped {checked_after:.1f}s after the rotation, inside its {GRACE_S}s grace period"
    )
    wait_until(
        lambda: not verify(e2e, namespace, client, old["accessKeyId"], old["secretKey"]),
        timeout=GRACE_S + 30,
        interval=1,
        what="the old secret refused after the grace period",
    )
    refused_after = time.monotonic() - rotated_at
    print(
        f"old secret: valid {checked_after:.1f}s after the rotation, refused after {refused_after:.1f}s (grace {GRACE_S}s)"
    )
    assert refused_after >= GRACE_S - 2
    assert verify(e2e, namespace, client, new["accessKeyId"], new["secretKey"])
