"""Fixtures for the end-to-end suite: credop installed by its Helm chart on the test bed's one-node cluster.

One session-wide cluster (``ControlPlane.start(node=True)``: kube-apiserver,
scheduler, controllers, and a node running containerd, kubelet, kube-proxy and
CoreDNS) and one release (``helm install credop charts/credop`` with the image
built from the Dockerfile), shared by every test in ``tests/e2e``. Tests use
only kubectl, helm and HTTP from inside pods (``E2E.pod_http``). Modules run in
the order of their numbers; the last one uninstalls the release.

Select with ``pytest -m e2e`` (or deselect with ``-m "not e2e"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.cluster.kube import existing_cluster_requested

REPO = Path(__file__).resolve().parents[2]
RELEASE = "credop"
SYSTEM_NAMESPACE = "credop-system"
SERVICE_URL = f"https://{RELEASE}.{SYSTEM_NAMESPACE}.svc"
SERVICE_POD_PORT = 8443
METRICS_PORT = 9090
"""The credential service's plain-HTTP /metrics port (pods and Service alike)."""
T = TypeVar("T")
POD_HTTP = (Path(__file__).parent / "pod_http.py").read_text()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: credop installed by its chart on the test bed's one-node cluster")


def wait_until(
    predicate: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.5, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@dataclass
class E2E:
    """The cluster, the release and the helpers the end-to-end tests share."""

    plane: Any  # testbed.ControlPlane (hack/ is on sys.path, not a package)
    images: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    # ---- kubectl / helm ---------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> Any:
        result = self.plane.kubectl(*args, input=input, check=False, timeout=timeout)
        if check and result.returncode:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def helm(self, *args: str, check: bool = True, timeout: float = 600) -> Any:
        result = self.plane.helm(*args, check=False, timeout=timeout)
        if check and result.returncode:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def get(self, kind: str, name: str = "", *, namespace: str | None = None, selector: str | None = None) -> Any:
        """``kubectl get -o json`` (a list's items when no name is given)."""
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        args += ["-n", namespace] if namespace else []
        args += ["-l", selector] if selector else []
        found = json.loads(self.kubectl(*args).stdout)
        return found if name else found["items"]

    def apply(
        self, manifest: dict[str, Any] | list[dict[str, Any]] | str, *, namespace: str | None = None, check: bool = True
    ) -> Any:
        text = (
            manifest
            if isinstance(manifest, str)
            else yaml.safe_dump_all(manifest if isinstance(manifest, list) else [manifest])
        )
        return self.kubectl("apply", *(["-n", namespace] if namespace else []), "-f", "-", input=text, check=check)

    def helm_values(self) -> list[str]:
        repository, tag = self.images["credop"].rsplit(":", 1)
        return [
            f"--set=image.repository={repository}",
            f"--set=image.tag={tag}",
            "--set=image.pullPolicy=Never",
        ]

    # ---- pods -----------------------------------------------------------------------------------
    def credop_pods(self, component: str) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        pods = self.get("pods", namespace=SYSTEM_NAMESPACE, selector=selector)
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def ready(self, pod: dict[str, Any]) -> bool:
        conditions = pod.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def client_pod(self, namespace: str, name: str = "client", *, secret: str | None = None) -> str:
        """A pod of the base image (python3) that waits for ``kubectl exec``; with ``secret`` mounted at /credential."""
        spec: dict[str, Any] = {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "client",
                    "image": self.images["base"],
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", "import time\nwhile True: time.sleep(3600)"],
                    "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        }
        if secret:
            spec["volumes"] = [{"name": "credential", "secret": {"secretName": secret}}]
            spec["containers"][0]["volumeMounts"] = [
                {"name": "credential", "mountPath": "/credential", "readOnly": True}
            ]
        self.apply(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        )
        self.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace, "--timeout=90s", timeout=120)
        return name

    def pod_http(self, namespace: str, pod: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run HTTP requests from inside a pod (tests/e2e/pod_http.py): one answer per request.

        A request: ``{"url", "method"?, "form"?, "json"?, "basic"?: [user, password] | "credential",
        "bearer"?}``; ``"basic": "credential"`` reads clientId/clientSecret from /credential and
        prefixes the pod's namespace, as a client does. An answer: ``{"status", "body", "error"?}``.
        """
        result = self.kubectl(
            "exec", "-i", "-n", namespace, pod, "--", "python3", "-", json.dumps(requests), input=POD_HTTP
        )
        return list(json.loads(result.stdout))

    def namespace(self, prefix: str, *, exact: bool = False) -> str:
        name = prefix if exact else f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kubectl("create", "namespace", name)
        wait_until(
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            what="the default ServiceAccount",
        )
        return name

    def status(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        found = self.kubectl("get", plural, name, "-n", namespace, "-o", "json", check=False)
        return dict(json.loads(found.stdout).get("status") or {}) if found.returncode == 0 else {}

    def condition(self, plural: str, namespace: str, name: str, kind: str = "Ready") -> str | None:
        """The status of a credential's condition (``"True"``, ``"False"``), None before it is reported."""
        conditions = self.status(plural, namespace, name).get("conditions") or []
        return next((str(c["status"]) for c in conditions if c["type"] == kind), None)

    def policy(self, namespace: str, spec: dict[str, Any], name: str = "default") -> None:
        """Apply a KeyPolicy and wait until it is Ready."""
        manifest = {"apiVersion": "credop.dev/v1alpha1", "kind": "KeyPolicy", "metadata": {"name": name}, "spec": spec}
        self.apply(manifest, namespace=namespace)
        wait_until(lambda: self.condition("keypolicies", namespace, name) == "True", what=f"KeyPolicy {name} Ready")

    def service_ca(self) -> str:
        """The CA the credential service's certificate chains to (what credential Secrets carry as tokenCA)."""
        return self.secret_data(SYSTEM_NAMESPACE, f"{RELEASE}-service-tls")["ca.crt"]

    def service_pod_ips(self) -> list[str]:
        """The Ready credential service replicas' pod IPs."""
        return [p["status"]["podIP"] for p in self.credop_pods("service") if self.ready(p)]

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        import base64

        secret = self.get("secret", name, namespace=namespace)
        return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


TIMINGS: dict[str, float] = {}
"""What the session measured (cluster start, helm install, takeover, webhook gaps), shown at the end of the run."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "e2e timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f}s")


def diagnostics(cluster: E2E) -> str:
    """What a failed install looks like from the cluster: pods, events, the credop pods' logs."""
    parts = []
    for args in (
        ("get", "nodes,pods", "-A", "-o", "wide"),
        ("get", "events", "-n", SYSTEM_NAMESPACE, "--sort-by=.lastTimestamp"),
        ("logs", "-n", SYSTEM_NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}", "--tail=30", "--prefix"),
        (
            "logs",
            "-n",
            SYSTEM_NAMESPACE,
            "-l",
            f"app.kubernetes.io/instance={RELEASE}",
            "--tail=30",
            "--prefix",
            "--previous",
        ),
    ):
        result = cluster.kubectl(*args, check=False)
        parts.append(f"$ kubectl {' '.join(args)}\n{result.stdout}{result.stderr}")
    return "\n".join(parts)


@pytest.fixture(scope="session")
def e2e() -> Iterator[E2E]:
    """The one-node cluster with credop installed by ``helm install`` (every credop pod Ready)."""
    if existing_cluster_requested():
        pytest.skip("the end-to-end suite runs on the test bed's own node (it builds and loads the image there)")
    from testbed import ControlPlane, image_refs

    started = time.monotonic()
    with ControlPlane.start(node=True) as plane:
        cluster = E2E(plane=plane, images=image_refs(), timings=TIMINGS)
        cluster.timings["cluster start (images built if needed)"] = time.monotonic() - started
        started = time.monotonic()
        try:
            cluster.helm(
                "install", RELEASE, str(REPO / "charts" / "credop"),
                "--namespace", SYSTEM_NAMESPACE, "--create-namespace",
                *cluster.helm_values(),
                "--wait", "--timeout=5m",
            )  # fmt: skip
        except AssertionError as error:
            raise AssertionError(f"{error}\n{diagnostics(cluster)}") from None
        cluster.timings["helm install (pods Ready)"] = time.monotonic() - started
        try:
            yield cluster
        finally:
            if os.environ.get("CREDOP_E2E_KEEP_LOGS"):
                with contextlib.suppress(Exception):
                    import shutil

                    shutil.copytree(
                        plane.workdir / "logs", Path(os.environ["CREDOP_E2E_KEEP_LOGS"]), dirs_exist_ok=True
                    )
