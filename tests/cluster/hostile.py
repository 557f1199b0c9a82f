"""A cluster with hostile tenants: credop installed as the chart installs it, and tenants who attack it.

One private control plane for the session's attack tests: ``deploy/credop.yaml``
applied as is, the operator (and its admission webhooks) running in this process
with a token of the chart's operator ServiceAccount, and a credential service
replica with a token of the chart's service ServiceAccount, so both have exactly
the chart's rights. Every attack is made by a :class:`Tenant`: a ServiceAccount
token bound, in its own namespace only, to the built-in ``edit`` role (which
aggregates the chart's ``credop-editor``), or to less. Victims are tenants too.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from credop.config import Config, WebhookSettings
from testbed import free_port
from tests.cluster.charting import (
    DEPLOY,
    deployment_env,
    plain_manifests,
    private_control_plane,
    webhook_configurations_at,
)
from tests.cluster.helpers import webhooks_answer
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import TEST_ENDPOINT, LogCapture, OperatorThread
from tests.cluster.service import Replica

SYSTEM = "credop-system"
OPERATOR_SA, SERVICE_SA = "credop-operator", "credop-service"
API_VERSION = "credop.dev/v1alpha1"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Tenant:
    """A namespace and an identity that may act only there, with the role it was given."""

    cluster: Cluster
    namespace: str
    kubeconfig: Path
    user: str

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> Any:
        return self.cluster.kubectl(*args, "-n", self.namespace, kubeconfig=self.kubeconfig, check=check, input=input)

    def apply(self, manifest: dict[str, Any], *, check: bool = True) -> Any:
        manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": self.namespace}}
        return self.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=check)

    def create_secret(self, name: str, data: dict[str, str], **metadata: Any) -> Any:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, **metadata}, "stringData": data}
        return self.apply(body)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", plural, name, "-o", "json").stdout)  # type: ignore[no-any-return]

    def secret(self, name: str) -> dict[str, str]:
        import base64

        body = json.loads(self.kubectl("get", "secret", name, "-o", "json").stdout)
        return {key: base64.b64decode(value).decode() for key, value in (body.get("data") or {}).items()}

    def wait_phase(self, plural: str, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.get(plural, name).get("status") or {}
            return status if status.get("phase") == phase else None

        return wait_for(probe, timeout=timeout, what=f"{plural}/{self.namespace}/{name} to be {phase}")  # type: ignore[no-any-return]


@dataclass
class HostileBed:
    cluster: Cluster
    service: Replica
    operator: OperatorThread
    logs: LogCapture

    def tenant(self, role: str = "edit", *, prefix: str = "tenant") -> Tenant:
        """A fresh namespace whose ServiceAccount ``user`` holds ``role`` (a ClusterRole) there and nowhere else."""
        namespace = f"{prefix}-{uuid.uuid4().hex[:8]}"
        cluster = self.cluster
        cluster.core.create_namespace({"metadata": {"name": namespace}})
        cluster.core.create_namespaced_service_account(namespace, {"metadata": {"name": "user"}})
        cluster.kubectl(
            "create", "rolebinding", "user", "-n", namespace, f"--clusterrole={role}", f"--serviceaccount={namespace}:user"
        )  # fmt: skip
        tenant = Tenant(
            cluster, namespace, cluster.token_kubeconfig(namespace, "user"), f"system:serviceaccount:{namespace}:user"
        )
        wait_for(lambda: webhooks_answer(cluster, namespace), timeout=60, what="the webhooks to answer")
        return tenant

    # The credential service, over HTTP from a chosen loopback address ---------------------------
    def post(
        self, path: str, fields: dict[str, str], *, source: str = "127.0.0.1", headers: dict[str, str] | None = None
    ) -> Answer:
        assert self.service.service is not None
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.service.service.port, timeout=30, source_address=(source, 0)
        )
        try:
            connection.request(
                "POST", path, body=urllib.parse.urlencode(fields), headers={"Content-Type": FORM, **(headers or {})}
            )
            response = connection.getresponse()
            text = response.read()
            return Answer(response.status, json.loads(text) if text else None, dict(response.getheaders()))
        finally:
            connection.close()

    def get_json(self, path: str) -> Any:
        assert self.service.service is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.service.service.port, timeout=30)
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def token(
        self, client_id: str, secret: str, *, source: str = "127.0.0.1", headers: dict[str, str] | None = None
    ) -> Answer:
        fields = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return self.post("/oauth2/token", fields, source=source, headers=headers)

    def verify(self, body: dict[str, str], *, source: str = "127.0.0.1") -> Answer:
        assert self.service.service is not None
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.service.service.port, timeout=30, source_address=(source, 0)
        )
        try:
            connection.request(
                "POST", "/v1/verify", body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            return Answer(response.status, json.loads(response.read()))
        finally:
            connection.close()

    def token_when_ready(self, client_id: str, secret: str, *, source: str = "127.0.0.1") -> Answer:
        """A token, once the service has the credential (watches take milliseconds)."""
        return wait_for(  # type: ignore[no-any-return]
            lambda: (answer := self.token(client_id, secret, source=source)).status == 200 and answer,
            what=f"a token for {client_id}",
        )


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileBed]:
    """credop as the chart installs it, on a control plane of its own, for the attack tests."""
    with private_control_plane() as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(DEPLOY / "credop.yaml"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=credop"
        )
        manifests = plain_manifests()
        port = free_port()
        configurations = webhook_configurations_at(manifests, url=f"https://127.0.0.1:{port}")
        cluster.kubectl("replace", "-f", "-", input=yaml.safe_dump_all(configurations))
        local = {
            "CREDOP_WEBHOOK_PORT": str(port),
            "CREDOP_WEBHOOK_ADDRESS": "127.0.0.1",
            "CREDOP_WEBHOOK_HOSTS": "127.0.0.1",
        }
        webhook = WebhookSettings.from_environment(deployment_env(manifests, OPERATOR_SA) | local)
        operator_kubeconfig = cluster.token_kubeconfig(SYSTEM, OPERATOR_SA)
        config = Config(namespace=SYSTEM, endpoint=TEST_ENDPOINT, kubeconfig=operator_kubeconfig, webhook=webhook)
        logs = LogCapture()
        logging.getLogger().addHandler(logs)
        operator = OperatorThread(operator_kubeconfig, config=config).start()
        service = Replica(
            cluster.token_kubeconfig(SYSTEM, SERVICE_SA), "hostile", namespace=SYSTEM, host="0.0.0.0"
        ).start()  # 0.0.0.0: attacks come from several loopback addresses
        try:
            yield HostileBed(cluster, service, operator, logs)
        finally:
            service.stop()
            operator.stop()
            logging.getLogger().removeHandler(logs)


def client(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "ApiClient", "metadata": {"name": name}, "spec": spec}


def key(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceAccountKey",
        "metadata": {"name": name},
        "spec": {"serviceAccount": "bot", **spec},
    }


def policy(name: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "KeyPolicy", "metadata": {"name": name}, "spec": spec}


def active_client(tenant: Tenant, name: str, **spec: Any) -> tuple[str, str]:
    """An Active ApiClient made by ``tenant``; its namespace-qualified client ID and its secret."""
    tenant.apply(client(name, **spec))
    tenant.wait_phase("apiclients", name, "Active")
    secret = wait_for(lambda: tenant.secret(name).get("clientSecret"), what=f"the Secret of {name}")
    return f"{tenant.namespace}/{tenant.get('apiclients', name)['status']['clientId']}", secret


def active_key(tenant: Tenant, name: str, **spec: Any) -> tuple[str, str]:
    """An Active ServiceAccountKey made by ``tenant``; its access key ID and secret key."""
    tenant.apply(key(name, **spec))
    status = tenant.wait_phase("serviceaccountkeys", name, "Active")
    return status["accessKeyId"], tenant.secret(name)["secretKey"]
