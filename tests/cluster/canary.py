"""Canary credentials: known secrets used all session long, then searched for everywhere they must not be.

At session start a canary ApiClient (with a secret chosen here) and a canary
ServiceAccountKey are created and used against a credential service replica,
successfully and with the secrets in the wrong places. At session end the
secrets must appear zero times in operator and service logs, Events, any
credential's status or annotations, and the operator's and service's metrics.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes
import prometheus_client

from credop.config import Config
from credop.service import run_service
from testbed import free_port
from tests.cluster.helpers import client_manifest, key_manifest
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE, SessionOperator

NAMESPACE = "credop-canary"
CLIENT_SECRET = "Canary-Client-Secret-7!"


@dataclass
class Canaries:
    cluster: Cluster
    port: int = field(default_factory=free_port)
    secrets: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, kubeconfig: Path) -> None:
        config = Config(namespace=OPERATOR_NAMESPACE, endpoint=f"http://127.0.0.1:{self.port}", kubeconfig=kubeconfig)
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(
                run_service(config, host="127.0.0.1", port=self.port, stop_flag=self._stop, ready_flag=ready)
            ),
            daemon=True,
        )
        self._thread.start()
        assert ready.wait(60), "the canary's credential service did not start"
        self._create()
        self._use()

    def _create(self) -> None:
        self.cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        self.cluster.core.create_namespaced_secret(
            NAMESPACE, {"metadata": {"name": "canary-own"}, "stringData": {"clientSecret": CLIENT_SECRET}}
        )
        self.cluster.apply(client_manifest("canary-client", NAMESPACE, clientSecretRef={"name": "canary-own"}))
        self.cluster.apply(key_manifest("canary-key", NAMESPACE, serviceAccount="canary"))
        wait_for(lambda: self._secret_key(), timeout=60, what="the canary key's Secret")
        self.secrets = {CLIENT_SECRET, self._secret_key() or ""}

    def _secret_key(self) -> str | None:
        try:
            data = self.cluster.core.read_namespaced_secret("canary-key", NAMESPACE).data or {}
        except kubernetes.client.ApiException:
            return None
        return base64.b64decode(data["secretKey"]).decode() if "secretKey" in data else None

    def _token(self, client_id: str, secret: str) -> int:
        form = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        ).encode()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/oauth2/token", data=form, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def _use(self) -> None:
        key_id = base64.b64decode(
            self.cluster.core.read_namespaced_secret("canary-key", NAMESPACE).data["accessKeyId"]
        ).decode()
        wait_for(
            lambda: self._token(f"{NAMESPACE}/canary-client", CLIENT_SECRET) == 200, timeout=60, what="a canary token"
        )
        wait_for(lambda: self._token(key_id, self._secret_key() or "") == 200, timeout=60, what="a canary key token")
        for client_id, secret in (
            (f"{NAMESPACE}/canary-client", CLIENT_SECRET + "x"),
            ("nobody", CLIENT_SECRET),
            (CLIENT_SECRET, CLIENT_SECRET),
            (key_id, CLIENT_SECRET),
        ):
            assert self._token(client_id, secret) in (400, 401, 429)

    def service_metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            return str(answer.read().decode())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def sightings(self, operator: SessionOperator, log_lines: list[str]) -> list[str]:
        """Where the canary secrets show up (should be nowhere)."""
        places = {"operator and service logs": "\n".join(log_lines), "service metrics": self.service_metrics()}
        if operator.runtime is not None:
            places["operator metrics"] = prometheus_client.generate_latest(operator.runtime.metrics.registry).decode()
        events = self.cluster.core.list_event_for_all_namespaces(_preload_content=False)
        places["events"] = events.data.decode()
        for plural in ("serviceaccountkeys", "apiclients", "keypolicies"):
            for item in self.cluster.custom.list_cluster_custom_object("credop.dev", "v1alpha1", plural)["items"]:
                where = f"{plural}/{item['metadata']['namespace']}/{item['metadata']['name']}"
                places[f"{where} status and annotations"] = json.dumps(
                    [item.get("status"), item["metadata"].get("annotations")]
                )
        return sorted({place for place, text in places.items() for secret in self.secrets if secret and secret in text})
