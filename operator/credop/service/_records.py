"""What the service knows about one credential and its Secret, parsed from watched objects.

Pure: JSON dicts in, frozen records out, ``now`` passed in. Verifiers are kept
(they are what a presented secret is checked against) but never printed: the
records' reprs leave them out.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from credop import names
from credop.api.common import ACTIVE
from credop.domain.conditions import parse_timestamp
from credop.domain.tokens import Permission, pending_invalidation_instant
from credop.domain.verifiers import is_acceptable_verifier

Body = Mapping[str, Any]
Kind = Literal["ApiClient", "ServiceAccountKey"]
API_CLIENT: Kind = "ApiClient"
SERVICE_ACCOUNT_KEY: Kind = "ServiceAccountKey"


@dataclass(frozen=True)
class Role:
    """A role a key carries, with the accounts it is limited to."""

    name: str
    scope: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "scope": list(self.scope)}


@dataclass(frozen=True)
class Credential:
    """One ApiClient or ServiceAccountKey as the service sees it (no secret, no verifier)."""

    kind: Kind
    uid: str
    namespace: str
    name: str
    identifier: str
    """The client ID (ApiClient) or access key ID (ServiceAccountKey) it authenticates with."""
    subject: str
    """The token ``sub``: the client ID, or the key's service account."""
    phase: str | None
    desired_active: bool
    deleting: bool = False
    tokens_invalid_before: datetime.datetime | None = None
    pending_invalidation: str | None = None
    """An invalidate-tokens annotation value the operator has not acted on yet."""
    invalidation_seen_at: datetime.datetime | None = None
    """When this replica first saw :attr:`pending_invalidation`."""
    expires_at: datetime.datetime | None = None
    last_used_at: datetime.datetime | None = None
    permission: Permission = "ReadOnly"
    token_validity_seconds: int | None = None
    roles: tuple[Role, ...] = ()
    key_type: str = "Access"
    policy_name: str | None = None

    @property
    def plural(self) -> str:
        return names.PLURAL_OF_KIND[self.kind]

    def usable(self, now: datetime.datetime) -> bool:
        """Whether it may authenticate and its tokens count: Active, wanted active, not expired, not deleting."""
        if self.phase != ACTIVE or not self.desired_active or self.deleting:
            return False
        return self.expires_at is None or now < self.expires_at

    def invalid_before(self) -> datetime.datetime | None:
        """The instant before which its tokens are rejected, counting an invalidation still in flight."""
        if self.pending_invalidation and self.invalidation_seen_at is not None:
            return pending_invalidation_instant(self.invalidation_seen_at, self.tokens_invalid_before)
        return self.tokens_invalid_before

    def noticing_invalidation(self, previous: Credential | None, *, now: datetime.datetime) -> Credential:
        """This record with the time this replica first saw its pending invalidation (kept across updates)."""
        if not self.pending_invalidation:
            return self
        if previous is not None and previous.pending_invalidation == self.pending_invalidation:
            seen = previous.invalidation_seen_at
        else:
            seen = now
        return replace(self, invalidation_seen_at=seen)


@dataclass(frozen=True)
class SecretMaterial:
    """The verifiers in credop's record of a credential: never the secret itself."""

    owner_uid: str
    identifier: str
    """The client ID or access key ID the record was written for."""
    verifier: str = field(repr=False)
    previous_verifier: str | None = field(default=None, repr=False)
    previous_valid_until: datetime.datetime | None = None

    def verifiers_at(self, now: datetime.datetime) -> tuple[str, ...]:
        """The current verifier, and the previous one while its grace period lasts."""
        if self.previous_verifier and self.previous_valid_until is not None and now < self.previous_valid_until:
            return (self.verifier, self.previous_verifier)
        return (self.verifier,)


def credential_of(kind: Kind, body: Body) -> Credential:
    """The record of an ApiClient or ServiceAccountKey object."""
    if kind == API_CLIENT:
        return client_of(body)
    return key_of(body)


def client_of(body: Body) -> Credential:
    meta, spec, status = _parts(body)
    client_id = str(status.get("clientId") or spec.get("clientId") or meta["name"])
    permission: Permission = "CanEdit" if spec.get("permissionLevel") == "CanEdit" else "ReadOnly"
    validity = status.get("tokenValiditySeconds") or spec.get("tokenValiditySeconds")
    return Credential(
        kind=API_CLIENT,
        uid=str(meta.get("uid", "")),
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        identifier=client_id,
        subject=client_id,
        phase=status.get("phase"),
        desired_active=spec.get("active", True) is not False,
        deleting=bool(meta.get("deletionTimestamp")),
        tokens_invalid_before=parse_timestamp(status.get("tokensInvalidBefore")),
        pending_invalidation=_pending_invalidation(meta, status),
        last_used_at=parse_timestamp(status.get("lastUsedAt")),
        permission=permission,
        token_validity_seconds=int(validity) if isinstance(validity, int) and validity > 0 else None,
        policy_name=spec.get("policyName"),
    )


def key_of(body: Body) -> Credential:
    meta, spec, status = _parts(body)
    roles = tuple(
        Role(str(role.get("name", "")), tuple(str(account) for account in role.get("scope") or ()))
        for role in spec.get("roles") or ()
        if isinstance(role, Mapping)
    )
    return Credential(
        kind=SERVICE_ACCOUNT_KEY,
        uid=str(meta.get("uid", "")),
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        identifier=str(status.get("accessKeyId") or ""),
        subject=str(spec.get("serviceAccount") or meta["name"]),
        phase=status.get("phase"),
        desired_active=spec.get("active", True) is not False,
        deleting=bool(meta.get("deletionTimestamp")),
        tokens_invalid_before=parse_timestamp(status.get("tokensInvalidBefore")),
        pending_invalidation=_pending_invalidation(meta, status),
        expires_at=parse_timestamp(status.get("expiresAt")),
        last_used_at=parse_timestamp(status.get("lastUsedAt")),
        roles=roles,
        key_type=str(spec.get("keyType") or "Access"),
        policy_name=spec.get("policyName"),
    )


def _parts(body: Body) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    return body["metadata"], body.get("spec") or {}, body.get("status") or {}


def _pending_invalidation(meta: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    requested = (meta.get("annotations") or {}).get(names.INVALIDATE_TOKENS)
    return requested if requested and requested != status.get("invalidateTokensHandled") else None


def material_of(record: Body) -> SecretMaterial | None:
    """The verifiers of a credential's record Secret; ``None`` when it holds no usable verifier.

    Only record Secrets in credop's own namespace reach this (the service watches
    nothing else), so the owner, identifier and deadline are credop's writing.
    A verifier credop would not have made (other argon2 parameters) is dropped.
    """
    meta = record["metadata"]
    annotations = meta.get("annotations") or {}
    owner_uid = str((meta.get("labels") or {}).get(names.OWNER_UID_LABEL, ""))
    data = record.get("data") or {}
    verifier = _decoded(data.get(names.VERIFIER))
    if not owner_uid or not verifier or not is_acceptable_verifier(verifier):
        return None
    previous = _decoded(data.get(names.PREVIOUS_VERIFIER))
    return SecretMaterial(
        owner_uid=owner_uid,
        identifier=str(annotations.get(names.IDENTIFIER_ANNOTATION, "")),
        verifier=verifier,
        previous_verifier=previous if previous and is_acceptable_verifier(previous) else None,
        previous_valid_until=parse_timestamp(annotations.get(names.PREVIOUS_VALID_UNTIL)),
    )


def record_owner_uid(meta: Mapping[str, Any]) -> str | None:
    """The uid of the credential a record Secret belongs to."""
    return str((meta.get("labels") or {}).get(names.OWNER_UID_LABEL, "")) or None


def _decoded(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
