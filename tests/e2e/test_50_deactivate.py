"""A key whose Secret is mounted in a pod is deactivated: the pod's next verify call is refused."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import E2E, SERVICE_URL, wait_until

pytestmark = pytest.mark.e2e
VERIFY = {
    "url": f"{SERVICE_URL}/v1/verify",
    "json": {"accessKeyId": "credential:accessKeyId", "secretKey": "credential:secretKey", "method": "GET"},
    "ca": "credential:tokenCA",
}


def test_deactivating_a_mounted_key_refuses_the_pods_next_call(e2e: E2E) -> None:
    namespace = e2e.namespace("e2e-deactivate")
    key = {"apiVersion": "credop.dev/v1alpha1", "kind": "ServiceAccountKey", "metadata": {"name": "reader"}}
    e2e.apply({**key, "spec": {"serviceAccount": "reader", "roles": [{"name": "GlobalViewer"}]}}, namespace=namespace)
    wait_until(
        lambda: e2e.status("serviceaccountkeys", namespace, "reader").get("phase") == "Active", what="the key Active"
    )
    pod = e2e.client_pod(namespace, secret="reader")
    (answer,) = wait_until(
        lambda: (found := e2e.pod_http(namespace, pod, [VERIFY]))[0]["body"]["valid"] and found,
        timeout=30,
        what="the mounted key valid",
    )
    assert answer["body"]["valid"] is True

    e2e.kubectl("patch", "sak", "reader", "-n", namespace, "--type=merge", "-p", '{"spec":{"active":false}}')
    changed = time.monotonic()
    wait_until(
        lambda: e2e.pod_http(namespace, pod, [VERIFY])[0]["body"]["valid"] is False,
        timeout=30,
        interval=0.2,
        what="the deactivated key refused",
    )
    print(f"deactivation reached the credential service in {time.monotonic() - changed:.1f}s")
    assert e2e.status("serviceaccountkeys", namespace, "reader")["phase"] == "Inactive"
