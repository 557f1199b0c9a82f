"""Two operator replicas with leader election: one acts, the other takes over when it stops."""

from __future__ import annotations

import dataclasses

import pytest

from credop.controller.store import ObjectRef
from tests.cluster.helpers import SAK, holds_for, key_manifest, secret_data, wait_status
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OperatorThread


def replica(cluster: Cluster) -> OperatorThread:
    thread = OperatorThread(cluster.kubeconfig)
    thread.config = dataclasses.replace(thread.config, leader_election=True, lease_seconds=6)
    return thread


@pytest.mark.usefixtures("operator_namespace")
def test_standby_takes_over_when_the_leader_stops(cluster: Cluster, namespace: str) -> None:
    first = replica(cluster).start()
    second = replica(cluster).start(wait=False)
    try:
        holds_for(lambda: not second.ready, 3, what="the standby idle while the leader holds the lease")
        assert not second.ready, "the standby must not run while the leader holds the lease"
        cluster.apply(key_manifest("one", namespace))
        wait_status(cluster, namespace, "one", lambda s: s.get("phase") == "Active")
        minted = secret_data(cluster, namespace, "one")
        first.stop()
        wait_for(lambda: second.ready, timeout=60, what="the standby to take over within a minute")
        lease = cluster.coordination.read_namespaced_lease("credop-operator", "credop-system")
        assert second.runtime is not None
        assert lease.spec.holder_identity, "the new leader holds the lease"
        cluster.apply(key_manifest("two", namespace))
        wait_status(cluster, namespace, "two", lambda s: s.get("phase") == "Active")
        two = ObjectRef(SAK, namespace, "two")
        wait_for(lambda: second.runtime.scheduler.due_at(two), what="the new leader to schedule the new key")
        assert secret_data(cluster, namespace, "one") == minted
    finally:
        second.stop()
        if not first._stop.is_set():
            first.stop()
