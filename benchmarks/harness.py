"""Shared benchmark plumbing: a control plane, an operator in its own process, and API clients.

Benchmarks print figures (and ratios against a floor measured in the same
run); they never assert on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hack"))
OPERATOR_NAMESPACE = "credop-system"
RESULTS = REPO / "benchmarks" / "results"


@contextlib.contextmanager
def control_plane() -> Iterator[Path]:
    """$KUBECONFIG when set, else a fresh local control plane; CRDs installed."""
    if os.environ.get("KUBECONFIG"):
        kubeconfig = Path(os.environ["KUBECONFIG"])
        install(kubeconfig)
        yield kubeconfig
        return
    from testbed import ControlPlane

    with ControlPlane.start() as plane:
        install(plane.kubeconfig)
        yield plane.kubeconfig


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = REPO / ".venv" / "bin" / "kubectl"
    return subprocess.run(
        [str(binary), f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, check=check
    )


def install(kubeconfig: Path) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    kubectl(kubeconfig, "create", "namespace", OPERATOR_NAMESPACE, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    """credop's operator in its own process (so its CPU and memory can be measured alone)."""

    process: subprocess.Popen[bytes]
    metrics_port: int

    @classmethod
    def start(cls, kubeconfig: Path, *, log: Path | None = None, env: dict[str, str] | None = None) -> OperatorProcess:
        port = free_port()
        env = {
            **os.environ,
            **(env or {}),
            "KUBECONFIG": str(kubeconfig),
            "CREDOP_NAMESPACE": OPERATOR_NAMESPACE,
            "CREDOP_METRICS_PORT": str(port),
            "CREDOP_LEADER_ELECTION": "false",
        }
        output = log.open("wb") if log else subprocess.DEVNULL
        code = "import asyncio; from credop.config import Config; from credop.controller.main import run_operator; from credop.logs import configure_logging; configure_logging(level='WARNING'); asyncio.run(run_operator(Config.from_environment()))"
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=output, stderr=subprocess.STDOUT)
        return cls(process, port)

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    def wait_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.metrics()
                return
            time.sleep(0.2)
        raise TimeoutError("the operator did not serve metrics")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def key_body(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": "ServiceAccountKey",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"serviceAccount": "bench", **spec},
    }


async def bounded(concurrency: int, jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(job) for job in jobs))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
