"""Building a credential service without a cluster: a fake clock, credop-shaped objects, an in-memory state.

For the unit tests (``tests/unit/test_service_*.py``) and the benchmarks
(``benchmarks/token_endpoint.py``), which import it from here: none of it ships
in the ``credop`` package. The objects are the JSON a watch would deliver, fed
through the same :class:`~credop.service.ServiceState` methods the watches call;
the state's ``lastUsedAt`` writer only records (:func:`recorded_usage`).
"""

from __future__ import annotations

import base64
import datetime
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from credop import API_VERSION, names
from credop.config import Config
from credop.domain import keyformat
from credop.domain.conditions import timestamp
from credop.domain.keyring import Keyring, new_keyring
from credop.domain.signing import SigningKey, new_signing_key
from credop.domain.verifiers import keyed_verifier, password_verifier
from credop.service._records import API_CLIENT, SERVICE_ACCOUNT_KEY, Credential, SecretMaterial, material_of
from credop.service._state import Clock, ServiceSettings, ServiceState

Body = dict[str, Any]
TEST_ISSUER = "https://credop.example.test"
EPOCH = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


@dataclass
class FakeClock:
    """A clock tests move by hand."""

    now: datetime.datetime = EPOCH

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


def make_key(now: datetime.datetime) -> SigningKey:
    return new_signing_key(now=now, kid=f"k-{uuid.uuid4().hex[:8]}")


def sample_keyring(now: datetime.datetime) -> Keyring:
    """A keyring whose signing key was made a day before ``now`` (so it is the one that signs)."""
    return new_keyring(now=now - datetime.timedelta(days=1), random_bytes=os.urandom, make_signing_key=make_key)


class RecordedUsage:
    """A ``lastUsedAt`` writer that only remembers what it was asked to write."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, datetime.datetime]] = []

    async def write(self, credential: Credential, used_at: datetime.datetime) -> bool:
        self.writes.append((credential.uid, used_at))
        return True


def in_memory_state(
    *,
    clock: Clock | None = None,
    settings: ServiceSettings | None = None,
    usage_flush_interval: float = 60.0,
    keyring: Keyring | None = None,
) -> ServiceState:
    """A ready state with a keyring and no credentials."""
    clock = clock or FakeClock()
    config = Config(endpoint=TEST_ISSUER, usage_flush_interval=usage_flush_interval)
    state = ServiceState(config, settings=settings, clock=clock, usage_writer=RecordedUsage())
    state.set_keyring(keyring or sample_keyring(clock()))
    return state


def recorded_usage(state: ServiceState) -> list[tuple[str, datetime.datetime]]:
    """(credential uid, lastUsedAt written) of every write the state's flusher made, oldest first."""
    writer = state.usage_writer
    assert isinstance(writer, RecordedUsage), "a state from in_memory_state() records its lastUsedAt writes"
    return writer.writes


def api_client_object(
    name: str,
    namespace: str = "team-a",
    *,
    client_id: str | None = None,
    phase: str = "Active",
    permission: str = "ReadOnly",
    validity: int = 3600,
    active: bool = True,
    tokens_invalid_before: datetime.datetime | None = None,
    annotations: dict[str, str] | None = None,
    invalidate_handled: str | None = None,
    last_used_at: datetime.datetime | None = None,
    uid: str | None = None,
) -> Body:
    status: Body = {"phase": phase, "clientId": client_id or name, "tokenValiditySeconds": validity}
    if tokens_invalid_before is not None:
        status["tokensInvalidBefore"] = timestamp(tokens_invalid_before)
    if invalidate_handled is not None:
        status["invalidateTokensHandled"] = invalidate_handled
    if last_used_at is not None:
        status["lastUsedAt"] = timestamp(last_used_at)
    return {
        "apiVersion": API_VERSION,
        "kind": API_CLIENT,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "annotations": annotations or {},
        },
        "spec": {"clientId": client_id or name, "permissionLevel": permission, "active": active},
        "status": status,
    }


def key_object(
    name: str,
    namespace: str = "team-a",
    *,
    access_key_id: str,
    roles: list[Body] | None = None,
    phase: str = "Active",
    active: bool = True,
    expires_at: datetime.datetime | None = None,
    key_type: str = "Access",
    service_account: str = "ci-bot",
    tokens_invalid_before: datetime.datetime | None = None,
    uid: str | None = None,
) -> Body:
    status: Body = {"phase": phase, "accessKeyId": access_key_id}
    if expires_at is not None:
        status["expiresAt"] = timestamp(expires_at)
    if tokens_invalid_before is not None:
        status["tokensInvalidBefore"] = timestamp(tokens_invalid_before)
    return {
        "apiVersion": API_VERSION,
        "kind": SERVICE_ACCOUNT_KEY,
        "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4())},
        "spec": {
            "serviceAccount": service_account,
            "roles": roles if roles is not None else [{"name": "GlobalViewer"}],
            "active": active,
            "keyType": key_type,
        },
        "status": status,
    }


def secret_object(
    owner: Body,
    *,
    verifier: str,
    previous_verifier: str | None = None,
    previous_valid_until: datetime.datetime | None = None,
    identifier: str | None = None,
) -> Body:
    """The record Secret credop would have written for ``owner`` (verifiers only: tests keep the secret)."""
    meta = owner["metadata"]
    status = owner.get("status") or {}
    identifier = identifier or status.get("clientId") or status.get("accessKeyId") or meta["name"]
    data = {names.VERIFIER: verifier}
    annotations = {
        names.OWNER_ANNOTATION: f"{meta['namespace']}/{meta['name']}",
        names.IDENTIFIER_ANNOTATION: identifier,
    }
    if previous_verifier is not None and previous_valid_until is not None:
        data[names.PREVIOUS_VERIFIER] = previous_verifier
        annotations[names.PREVIOUS_VALID_UNTIL] = timestamp(previous_valid_until)
    return {
        "metadata": {
            "name": names.record_name(meta["uid"]),
            "namespace": "credop-system",
            "labels": {
                names.MANAGED_BY: names.MANAGED_BY_VALUE,
                names.RECORD_LABEL: owner["kind"],
                names.OWNER_UID_LABEL: meta["uid"],
            },
            "annotations": annotations,
        },
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


@dataclass
class Minted:
    """A credential put into a state, with the secret the test presents."""

    body: Body
    identifier: str
    secret: str = field(repr=False)

    @property
    def uid(self) -> str:
        return str(self.body["metadata"]["uid"])

    @property
    def namespaced_id(self) -> str:
        return f"{self.body['metadata']['namespace']}/{self.identifier}"


def hmac_verifier(state: ServiceState, secret: str) -> str:
    keyring = state.view.keyring
    assert keyring is not None
    return keyed_verifier(secret, key=keyring.current_hmac_key, key_id=keyring.current_hmac)


def feed_secret(state: ServiceState, owner: Body, **verifiers: Any) -> SecretMaterial:
    secret = secret_object(owner, **verifiers)
    material = material_of(secret)
    assert material is not None
    state.put_material(f"{owner['metadata']['namespace']}/{owner['metadata']['name']}", material)
    return material


def add_client(
    state: ServiceState, name: str, namespace: str = "team-a", *, password: str | None = None, **fields: Any
) -> Minted:
    """An ApiClient with a generated secret (keyed hash), or ``password`` (argon2id) when given."""
    body = api_client_object(name, namespace, **fields)
    secret = password or keyformat.CLIENT_SECRET.mint(os.urandom)
    verifier = password_verifier(secret) if password else hmac_verifier(state, secret)
    state.put_object(API_CLIENT, body)
    feed_secret(state, body, verifier=verifier)
    return Minted(body, str(body["status"]["clientId"]), secret)


def add_key(state: ServiceState, name: str, namespace: str = "team-a", **fields: Any) -> Minted:
    """A Pair-format ServiceAccountKey with a generated secret key."""
    access_key_id = keyformat.new_access_key_id(os.urandom)
    body = key_object(name, namespace, access_key_id=access_key_id, **fields)
    secret = keyformat.new_secret_key(os.urandom)
    state.put_object(SERVICE_ACCOUNT_KEY, body)
    feed_secret(state, body, verifier=hmac_verifier(state, secret))
    return Minted(body, access_key_id, secret)
