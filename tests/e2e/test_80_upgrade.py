"""helm upgrade with a changed value rolls the pods; the webhooks admit every apply through it."""

from __future__ import annotations

import json
import threading

import pytest

from tests.e2e.conftest import E2E, RELEASE, REPO, SERVICE_URL, SYSTEM_NAMESPACE, wait_until
from tests.e2e.test_70_failover import ApplyProbe

pytestmark = pytest.mark.e2e


def release_revision(e2e: E2E) -> int:
    status = json.loads(e2e.helm("status", RELEASE, "--namespace", SYSTEM_NAMESPACE, "--output=json").stdout)
    assert status["info"]["status"] == "deployed", status["info"]
    return int(status["version"])


def test_helm_upgrade_with_a_changed_value_rolls_the_pods(e2e: E2E) -> None:
    before = {c: {p["metadata"]["uid"] for p in e2e.credop_pods(c)} for c in ("operator", "service")}
    revision = release_revision(e2e)
    namespace = e2e.namespace("e2e-upgrade")
    probe = ApplyProbe(e2e, namespace)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    wait_until(lambda: any(ok for _, ok, _ in probe.results), timeout=30, what="a first admitted apply")
    e2e.helm(
        "upgrade", RELEASE, str(REPO / "charts" / "credop"), "--namespace", SYSTEM_NAMESPACE, "--reuse-values",
        "--set=service.logLevel=DEBUG", "--set=operator.logLevel=DEBUG",
        "--wait", "--timeout=5m",
    )  # fmt: skip
    wait_until(
        lambda: all(
            (pods := e2e.credop_pods(c)) and not ({p["metadata"]["uid"] for p in pods} & before[c]) for c in before
        ),
        timeout=180,
        what="every credop pod replaced",
    )
    probe.stop.set()
    thread.join(timeout=30)
    gap, refused, example = probe.longest_gap()
    e2e.timings["webhook gap during helm upgrade"] = gap
    print(
        f"helm upgrade: {refused} of {len(probe.results)} applies refused, longest gap {gap:.1f}s ({example or 'none'})"
    )
    # Rolling, one Ready before one stops, each leaving the endpoints before it stops: no apply refused.
    assert refused == 0, f"{refused} of {len(probe.results)} applies refused during helm upgrade: {example}"
    services = wait_until(
        lambda: [p for p in e2e.credop_pods("service") if e2e.ready(p)], timeout=120, what="service pods Ready"
    )
    assert len(services) == 2
    for pod in e2e.credop_pods("service") + e2e.credop_pods("operator"):
        args = pod["spec"]["containers"][0]["args"]
        assert "--log-level=DEBUG" in args, args
    assert release_revision(e2e) == revision + 1
    pod = e2e.client_pod(namespace)
    (answer,) = e2e.pod_http(namespace, pod, [{"url": f"{SERVICE_URL}/readyz", "ca": e2e.service_ca()}])
    assert answer["status"] == 200, answer
