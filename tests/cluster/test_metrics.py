"""Operator metrics: credential phases, notable conditions and expiry, for dashboards and alerts."""

from __future__ import annotations

import time

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.helpers import key_manifest, policy_manifest, wait_policy, wait_status
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import SessionOperator


def samples(operator: SessionOperator) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert operator.runtime is not None
    text = prometheus_client.generate_latest(operator.runtime.metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_show_phases_conditions_and_expiry(cluster: Cluster, namespace: str, operator: SessionOperator) -> None:
    cluster.apply(policy_manifest(namespace, defaultExpiry="1h", expiryNotifyBefore="2h"))
    wait_policy(cluster, namespace)
    cluster.apply(key_manifest("watched", namespace))
    status = wait_status(cluster, namespace, "watched", lambda s: s.get("phase") == "Active")
    phase_key = ("credop_credentials", (("kind", "ServiceAccountKey"), ("namespace", namespace), ("phase", "Active")))
    found = wait_for(lambda: samples(operator).get(phase_key) == 1 and samples(operator), what="the phase gauge")
    routing = (("created_by", ""), ("namespace", namespace), ("owner", ""), ("policy", "default"))
    condition_key = (
        "credop_credential_condition",
        tuple(sorted((("condition", "ExpiringSoon"), ("kind", "ServiceAccountKey"), ("name", "watched"), *routing))),
    )
    assert found[condition_key] == 1
    expiry_key = (
        "credop_credential_expiry_timestamp_seconds",
        tuple(sorted((("kind", "ServiceAccountKey"), ("name", "watched"), *routing))),
    )
    assert found[expiry_key] > time.time()
    assert status["expiresAt"]
    assert found[("credop_reconciles_total", (("kind", "serviceaccountkeys"), ("outcome", "ok")))] >= 1
