"""The credential service for cluster tests: a replica in its own thread and event loop, as a pod would run it,
and the HTTP calls tests make to it (token, verify, revoke)."""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from credop.clock import utc_now
from credop.config import Config
from credop.service import CredentialService, UsageWriter
from credop.service._records import Credential
from credop.service._state import ServiceSettings
from tests.cluster.helpers import APIC, client_manifest, secret_data, wait_status
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE, TEST_ENDPOINT

FLUSH_INTERVAL = 2.0
FORM = "application/x-www-form-urlencoded"


class WritesRecorded:
    """The replica's ``lastUsedAt`` writer, noting when each write it made succeeded."""

    def __init__(self, writer: UsageWriter) -> None:
        self.writer = writer
        self.writes: list[tuple[str, datetime.datetime]] = []

    async def write(self, credential: Credential, used_at: datetime.datetime) -> bool:
        written = await self.writer.write(credential, used_at)
        if written:
            self.writes.append((credential.uid, utc_now()))
        return written


class Replica:
    """One credential service replica in its own thread and event loop."""

    def __init__(
        self,
        kubeconfig: Path,
        name: str,
        *,
        namespace: str = OPERATOR_NAMESPACE,
        settings: ServiceSettings | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.config = Config(
            namespace=namespace,
            endpoint=TEST_ENDPOINT,
            kubeconfig=kubeconfig,
            usage_flush_interval=FLUSH_INTERVAL,
        )
        self.settings = settings
        self.host = host
        self.service: CredentialService | None = None
        self._writes: WritesRecorded | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"credop-service-{name}", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # surfaced by start()
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with CredentialService(self.config, host=self.host, port=0, settings=self.settings) as service:
            self.service = service
            self._writes = WritesRecorded(service.state.usage_writer)
            service.state.usage_writer = self._writes
            await service.wait_ready()
            self._ready.set()
            await self._stop.wait()

    def start(self) -> Replica:
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError("the credential service did not become ready") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    @property
    def url(self) -> str:
        assert self.service is not None
        return f"http://127.0.0.1:{self.service.port}"

    @property
    def usage_writes(self) -> list[tuple[str, datetime.datetime]]:
        """(credential uid, when) of every ``lastUsedAt`` this replica wrote."""
        assert self._writes is not None
        return list(self._writes.writes)

    def unwritten_uses(self) -> set[str]:
        """The uids of credentials with a use this replica has neither written to lastUsedAt nor dropped yet."""
        assert self.service is not None
        return set(self.service.state.usage.pending())


# HTTP calls -------------------------------------------------------------------------------------------------
class Served(Protocol):
    """Anything serving the credential service's HTTP API at ``url``: a :class:`Replica`, a worker group."""

    @property
    def url(self) -> str: ...


def call(url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST ``body``; the HTTP status and the decoded JSON answer (None when empty), errors included."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, json.loads(text) if text else None


def token(replica: Served, client_id: str, secret: str, **extra: str) -> tuple[int, Any]:
    fields = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, **extra}
    return call(f"{replica.url}/oauth2/token", urllib.parse.urlencode(fields).encode(), FORM)


def verify(replica: Served, body: dict[str, str]) -> dict[str, Any]:
    status, answer = call(f"{replica.url}/v1/verify", json.dumps(body).encode(), "application/json")
    assert status == 200, answer
    return answer  # type: ignore[no-any-return]


def revoke(replica: Served, client_id: str, secret: str, access_token: str) -> int:
    fields = {"token": access_token, "client_id": client_id, "client_secret": secret}
    return call(f"{replica.url}/oauth2/revoke", urllib.parse.urlencode(fields).encode(), FORM)[0]


def valid_on(replica: Served, access_token: str) -> bool:
    return bool(verify(replica, {"token": access_token})["valid"])


def active_client(cluster: Cluster, namespace: str, name: str, **spec: Any) -> tuple[str, str]:
    """An Active ApiClient; returns its namespace-qualified client ID and its secret."""
    cluster.apply(client_manifest(name, namespace, **spec))
    wait_status(cluster, namespace, name, lambda status: status.get("phase") == "Active", plural=APIC)
    return f"{namespace}/{name}", secret_data(cluster, namespace, name)["clientSecret"]


def token_on_every_replica(replicas: tuple[Served, ...], client_id: str, secret: str) -> list[str]:
    """A token from each replica, once each has the credential in its view."""
    tokens = []
    for replica in replicas:
        answer = wait_for(
            lambda replica=replica: (reply := token(replica, client_id, secret))[0] == 200 and reply[1],
            what=f"a token from {replica.url}",
        )
        tokens.append(answer["access_token"])
    return tokens
