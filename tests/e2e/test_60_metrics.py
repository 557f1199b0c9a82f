"""Metrics are scraped from the pods' /metrics through their Services, from inside the cluster."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, RELEASE, SERVICE_URL, SYSTEM_NAMESPACE

pytestmark = pytest.mark.e2e


def test_metrics_through_the_services(e2e: E2E) -> None:
    namespace = e2e.namespace("e2e-metrics")
    pod = e2e.client_pod(namespace)
    operator_metrics = f"http://{RELEASE}-operator-metrics.{SYSTEM_NAMESPACE}.svc:8081/metrics"
    service, operator = e2e.pod_http(namespace, pod, [{"url": f"{SERVICE_URL}/metrics"}, {"url": operator_metrics}])
    assert service["status"] == 200 and operator["status"] == 200, (service, operator)
    assert "# TYPE" in service["text"] and "credop" in service["text"]
    assert "# TYPE" in operator["text"] and "credop" in operator["text"]
    # Every replica answers: scrape each service pod by its IP too.
    for pod_info in e2e.credop_pods("service"):
        (direct,) = e2e.pod_http(namespace, pod, [{"url": f"http://{pod_info['status']['podIP']}:8080/metrics"}])
        assert direct["status"] == 200 and "credop" in direct["text"]
