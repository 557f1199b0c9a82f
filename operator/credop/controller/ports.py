"""What a reconciler may use, instead of the whole runtime: a read-only view, and the few ways it acts.

:class:`Reconciling` is what :func:`credop.controller.keys.reconcile_key` and
:func:`credop.controller.clients.reconcile_client` receive: the store through
:class:`StoreView` (read only: reconcilers never change what the watches
feed), settings and keys, and as effects the Secrets writer, the status
writer, Events, the scheduler, the slot actor, notices, metrics routing, and
two API calls (a user's Secret, a workload restart). The runtime satisfies it;
tests may hand in anything else that does.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from typing import Any, Protocol

from credop.api.keypolicy import KeyPolicySpec
from credop.config import Config
from credop.controller.events import EventType
from credop.controller.material import SecretRecord
from credop.controller.secrets import CredentialSecrets
from credop.controller.status import StatusWriter
from credop.controller.store import ObjectRef
from credop.domain.clients import ClientFacts
from credop.domain.keyformat import RandomBytes
from credop.domain.keyring import Keyring

Body = dict[str, Any]


class StoreView(Protocol):
    """The store, read only."""

    @property
    def policies(self) -> Mapping[str, Mapping[str, KeyPolicySpec]]: ...

    def lock(self, ref: ObjectRef) -> asyncio.Lock: ...

    def live_body(self, ref: ObjectRef) -> Body | None: ...

    def secret_exists(self, namespace: str, name: str) -> bool: ...

    def has_record(self, uid: str) -> bool: ...

    def identifier_taken(self, identifier: str, *, by_other_than: str) -> bool: ...

    def latest_record(self, uid: str, from_status: SecretRecord | None) -> SecretRecord | None: ...

    def client_id_holders(self, namespace: str, client_id: str, *, plural: str) -> list[Body]: ...


class Events(Protocol):
    def record(self, involved: Body, *, type: EventType, reason: str, message: str) -> None: ...


class Deadlines(Protocol):
    def schedule(self, ref: ObjectRef, when: datetime.datetime | None) -> None: ...

    def cancel(self, ref: ObjectRef) -> None: ...


class Slots(Protocol):
    def update(self, ref: ObjectRef, facts: ClientFacts) -> None: ...


class Notices(Protocol):
    def review(self, plural: str, body: Body) -> int: ...


class Routing(Protocol):
    def note_routing(self, ref: ObjectRef, *, created_by: str | None, policy: str) -> None: ...


class Cluster(Protocol):
    """The two API calls a reconcile makes besides writing Secrets and status."""

    async def read_secret(self, namespace: str, name: str) -> Body: ...

    async def patch_workload(self, kind: str, namespace: str, name: str, patch: Body) -> Body: ...


class Reconciling(Protocol):
    """A reconciler's view (read only) and its effects."""

    @property
    def store(self) -> StoreView: ...

    @property
    def config(self) -> Config: ...

    @property
    def keyring(self) -> Keyring: ...

    @property
    def keyring_missing(self) -> bool: ...

    @property
    def random_bytes(self) -> RandomBytes: ...

    def now(self) -> datetime.datetime: ...

    def token_ca(self) -> str | None: ...

    @property
    def secrets(self) -> CredentialSecrets: ...

    @property
    def status(self) -> StatusWriter: ...

    @property
    def events(self) -> Events: ...

    @property
    def scheduler(self) -> Deadlines: ...

    @property
    def slots(self) -> Slots: ...

    @property
    def notifier(self) -> Notices: ...

    @property
    def metrics(self) -> Routing: ...

    @property
    def kube(self) -> Cluster: ...
