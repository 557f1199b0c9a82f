"""Fixtures for tests against the real control plane.

The session starts one control plane from ``hack/testbed.py`` (or uses the
cluster in KUBECONFIG when CREDOP_TEST_EXISTING_CLUSTER=1), installs credop's
CRDs, and gives each test a fresh namespace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from tests.cluster.canary import Canaries
from tests.cluster.hostile import hostile  # noqa: F401 - the attack tests' fixture
from tests.cluster.kube import REPO, Cluster, existing_cluster_requested, secret_leaks, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE, LogCapture, SessionOperator

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    workdir = Path(tempfile.mkdtemp(prefix="credop-tests-"))
    if existing_cluster_requested():
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        yield Cluster(kubeconfig=kubeconfig, workdir=workdir)
        return
    from testbed import ControlPlane

    with ControlPlane.start() as plane:
        yield Cluster(kubeconfig=plane.kubeconfig, workdir=workdir)


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    """credop's CRDs, installed and established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    return cluster


@pytest.fixture(scope="session")
def operator_namespace(crds: Cluster) -> str:
    with contextlib.suppress(kubernetes.client.ApiException):
        crds.core.create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
    return OPERATOR_NAMESPACE


@pytest.fixture(scope="session")
def operator_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    logging.getLogger().addHandler(capture)
    logging.getLogger().setLevel(logging.INFO)
    yield capture
    logging.getLogger().removeHandler(capture)


@pytest.fixture(scope="session")
def operator(crds: Cluster, operator_namespace: str, operator_logs: LogCapture) -> Iterator[SessionOperator]:
    """credop's operator, in-process, for the whole session (tests use their own namespaces)."""
    running = SessionOperator(crds.kubeconfig)
    yield running
    running.stop()


@pytest.fixture(scope="session", autouse=True)
def canaries(cluster: Cluster, operator: SessionOperator, operator_logs: LogCapture) -> Iterator[Canaries]:
    """Known secrets in use all session; at its end they may appear nowhere but their Secrets."""
    watched = Canaries(cluster)
    watched.start(cluster.kubeconfig)
    yield watched
    try:
        sightings = watched.sightings(operator, operator_logs.lines)
    finally:
        watched.stop()
    assert not sightings, f"canary secrets found in: {sightings}"


@pytest.fixture
def namespace(cluster: Cluster, operator_logs: LogCapture) -> Iterator[str]:
    """A fresh namespace; at teardown, no secret value from it may appear outside its Secrets."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.core.create_namespace({"metadata": {"name": name, "labels": {"credop.dev/test": "true"}}})
    wait_for(lambda: _default_service_account_exists(cluster, name), timeout=30, what="the default ServiceAccount")
    yield name
    leaks = secret_leaks(cluster, name, operator_logs.lines)
    with contextlib.suppress(kubernetes.client.ApiException):
        cluster.core.delete_namespace(name)
    assert not leaks, f"secret values leaked into: {leaks}"


def _default_service_account_exists(cluster: Cluster, namespace: str) -> bool:
    try:
        cluster.core.read_namespaced_service_account("default", namespace)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
