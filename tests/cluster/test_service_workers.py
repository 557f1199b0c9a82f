"""``credop service --workers 2`` on the real control plane: two processes on one port, as one pod runs them.

Each worker watches the API itself; a token any worker issued is valid at every
worker, a revocation taken by one is refused by all, the metrics port shows
every worker's samples, and SIGTERM stops the whole group cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE, TEST_ENDPOINT
from tests.cluster.service import FORM, active_client, call, revoke, token, valid_on

pytestmark = pytest.mark.usefixtures("operator")
CONNECTIONS = 24
"""Fresh connections per check: the kernel spreads them over both workers."""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Workers:
    """``credop service --workers 2`` in a child process."""

    def __init__(self, kubeconfig: Path) -> None:
        self.port, self.metrics_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "CREDOP_NAMESPACE": OPERATOR_NAMESPACE,
            "CREDOP_ENDPOINT": TEST_ENDPOINT,
            "CREDOP_METRICS_PORT": str(self.metrics_port),
            "CREDOP_USAGE_FLUSH_INTERVAL": "2",
        }
        command = [sys.executable, "-m", "credop.cli", "service", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen([*command, "--workers", "2", "--log-format", "text"], env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    def ready_everywhere(self) -> bool:
        for _ in range(CONNECTIONS):
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as answer:
                    if answer.status != 200:
                        return False
            except OSError:
                return False
        return True

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as answer:
            return str(answer.read().decode())


@pytest.fixture(scope="module")
def workers(cluster: Cluster) -> Iterator[Workers]:
    served = Workers(cluster.kubeconfig)
    try:
        wait_for(served.ready_everywhere, timeout=60, what="both workers ready")
        yield served
    finally:
        if served.process.poll() is None:
            served.process.send_signal(signal.SIGTERM)
            served.process.wait(30)


def test_tokens_from_any_worker_are_valid_at_every_worker(cluster: Cluster, namespace: str, workers: Workers) -> None:
    client_id, secret = active_client(cluster, namespace, "spread")
    wait_for(lambda: all(token(workers, client_id, secret)[0] == 200 for _ in range(CONNECTIONS)), what="tokens")
    answers = [token(workers, client_id, secret) for _ in range(CONNECTIONS)]
    assert [status for status, _ in answers] == [200] * CONNECTIONS, answers
    issued = [body["access_token"] for _, body in answers]
    assert all(valid_on(workers, each) for each in issued for _ in range(3))


def test_a_revocation_at_one_worker_is_refused_by_all(cluster: Cluster, namespace: str, workers: Workers) -> None:
    client_id, secret = active_client(cluster, namespace, "revoker")
    wait_for(lambda: token(workers, client_id, secret)[0] == 200, what="a token")
    access_token = token(workers, client_id, secret)[1]["access_token"]
    assert revoke(workers, client_id, secret, access_token) == 200
    wait_for(
        lambda: not any(valid_on(workers, access_token) for _ in range(CONNECTIONS)),
        timeout=2.0,
        interval=0.05,
        what="the revocation at every worker",
    )


def test_the_metrics_port_shows_every_worker(workers: Workers) -> None:
    call(f"{workers.url}/oauth2/token", b"grant_type=client_credentials", FORM)

    def both() -> str | None:
        try:
            text = workers.metrics()
        except OSError:
            return None
        return text if 'worker="0"' in text and 'worker="1"' in text else None

    text = wait_for(both, what="both workers' metrics")
    assert text.count("# TYPE credop_tokens_issued_total counter") == 1


def test_sigterm_stops_every_worker(cluster: Cluster) -> None:
    served = Workers(cluster.kubeconfig)
    try:
        wait_for(served.ready_everywhere, timeout=60, what="both workers ready")
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) == 0  # the parent exits only after joining its workers: the port is closed
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{served.url}/healthz", timeout=2)
    finally:
        if served.process.poll() is None:
            served.process.kill()
