"""Metrics are scraped from the pods' /metrics through their Services, from the monitoring namespace.

The chart's NetworkPolicies let only the ``monitoring`` namespace reach the metrics
ports, so the scraping pod runs there (the test bed's bridge network does not
enforce NetworkPolicies, so this shows the scrape works, not that others are kept out).
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, METRICS_PORT, RELEASE, SYSTEM_NAMESPACE

pytestmark = pytest.mark.e2e


def test_metrics_through_the_services(e2e: E2E) -> None:
    namespace = e2e.namespace("monitoring", exact=True)
    pod = e2e.client_pod(namespace, "scraper")
    service_metrics = f"http://{RELEASE}.{SYSTEM_NAMESPACE}.svc:{METRICS_PORT}/metrics"
    operator_metrics = f"http://{RELEASE}-operator-metrics.{SYSTEM_NAMESPACE}.svc:8081/metrics"
    service, operator = e2e.pod_http(namespace, pod, [{"url": service_metrics}, {"url": operator_metrics}])
    assert service["status"] == 200 and operator["status"] == 200, (service, operator)
    assert "# TYPE" in service["text"] and "credop_" in service["text"]
    assert "# TYPE" in operator["text"] and "credop_" in operator["text"]
    # Every replica answers: scrape each service pod by its IP too.
    for ip in e2e.service_pod_ips():
        (direct,) = e2e.pod_http(namespace, pod, [{"url": f"http://{ip}:{METRICS_PORT}/metrics"}])
        assert direct["status"] == 200 and "credop_" in direct["text"], direct
