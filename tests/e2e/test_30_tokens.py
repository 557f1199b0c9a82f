"""A client pod gets a token from the tokenUrl in its credential Secret, by the Service's name, and introspects it.

Over TLS: the pod trusts the service through the Secret's tokenCA, as a client does.

After ``credop.dev/invalidate-tokens`` the token is refused, and both credential
service replicas (asked directly at their pod IPs) agree at every step.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import E2E, SERVICE_POD_PORT, SERVICE_URL, wait_until

pytestmark = pytest.mark.e2e


CA = "credential:tokenCA"
TOKEN = {"url": "credential:tokenUrl", "form": {"grant_type": "client_credentials"}, "basic": "credential", "ca": CA}


def verdicts(e2e: E2E, namespace: str, pod: str, token: str) -> tuple[bool, list[bool]]:
    """(introspection through the Service says active, /v1/verify on each replica says valid)."""
    requests: list[dict[str, Any]] = [
        {"url": f"{SERVICE_URL}/oauth2/introspect", "form": {"token": token}, "basic": "credential", "ca": CA}
    ]
    replicas = e2e.service_pod_ips()
    assert len(replicas) == 2, replicas
    # Each replica by its pod IP, its certificate checked for the Service's name.
    url = f"{SERVICE_URL}:{SERVICE_POD_PORT}/v1/verify"
    requests += [{"url": url, "json": {"token": token}, "ca": CA, "connect_to": ip} for ip in replicas]
    introspected, *verified = e2e.pod_http(namespace, pod, requests)
    assert introspected["status"] == 200, introspected
    assert all(answer["status"] == 200 for answer in verified), verified
    return bool(introspected["body"]["active"]), [bool(answer["body"]["valid"]) for answer in verified]


def test_a_client_pod_gets_a_token_by_the_service_name_and_loses_it_on_invalidate(e2e: E2E) -> None:
    namespace = e2e.namespace("e2e-tokens")
    e2e.apply(
        {
            "apiVersion": "credop.dev/v1alpha1",
            "kind": "ApiClient",
            "metadata": {"name": "billing"},
            "spec": {"permissionLevel": "ReadOnly", "tokenValiditySeconds": 600},
        },
        namespace=namespace,
    )
    wait_until(lambda: e2e.status("apiclients", namespace, "billing").get("phase") == "Active", what="billing Active")
    secret = e2e.secret_data(namespace, "billing")
    assert secret["tokenUrl"] == f"{SERVICE_URL}/oauth2/token"
    assert secret["tokenCA"].startswith("-----BEGIN CERTIFICATE-----")
    pod = e2e.client_pod(namespace, secret="billing")

    (answer,) = e2e.pod_http(namespace, pod, [TOKEN])
    assert answer["status"] == 200, answer
    token = answer["body"]["access_token"]
    assert answer["body"]["token_type"].lower() == "bearer" and answer["body"]["expires_in"] <= 600
    wait_until(
        lambda: verdicts(e2e, namespace, pod, token) == (True, [True, True]),
        timeout=30,
        what="the token active by introspection and valid on both replicas",
    )

    time.sleep(1.1)  # the invalidation instant is a whole second: leave the token's second behind
    e2e.kubectl("annotate", "apiclient", "billing", "-n", namespace, f"credop.dev/invalidate-tokens={time.time():.0f}")
    changed = time.monotonic()
    wait_until(
        lambda: verdicts(e2e, namespace, pod, token) == (False, [False, False]),
        timeout=30,
        interval=0.2,
        what="the token refused by introspection and by both replicas",
    )
    print(f"invalidate-tokens reached the Service and both replicas in {time.monotonic() - changed:.1f}s")
    # A new token works again: the client itself was not disabled.
    (again,) = e2e.pod_http(namespace, pod, [TOKEN])
    assert again["status"] == 200, again
    assert verdicts(e2e, namespace, pod, again["body"]["access_token"]) == (True, [True, True])
