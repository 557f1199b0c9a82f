"""Fresh secret material for a credential, and the Secret that carries it.

:class:`Material` is the only place a new secret value lives in the operator;
it goes into a Secret body and nowhere else (its repr hides the value).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from credop import names
from credop.api.apiclient import ApiClientSpec
from credop.api.common import SecretTemplate
from credop.api.serviceaccountkey import ServiceAccountKeySpec
from credop.domain import keyformat, templates
from credop.domain.conditions import timestamp
from credop.domain.keyformat import RandomBytes
from credop.domain.keyring import Keyring, verifier_key_ids
from credop.domain.signing import KeysetSchedule, signing_key
from credop.domain.tokens import KEY_TOKEN_TYPE, key_token_claims
from credop.domain.verifiers import keyed_verifier, password_verifier

Body = dict[str, Any]


@dataclass(frozen=True)
class Material:
    """A credential's identifier, its new secret (``None`` when the user brought it) and verifier."""

    identifier: str
    secret: str | None = field(repr=False)
    verifier: str = field(repr=False)
    data: Mapping[str, str] = field(repr=False)
    """The Secret's data: the fixed keys plus the rendered template."""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Owner:
    """The credential a Secret belongs to."""

    kind: str
    name: str
    namespace: str
    uid: str
    api_version: str = "credop.dev/v1alpha1"

    @classmethod
    def of(cls, body: Body) -> Owner:
        meta = body["metadata"]
        return cls(kind=body["kind"], name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])

    def reference(self) -> Body:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def key_material(
    spec: ServiceAccountKeySpec,
    owner: Owner,
    *,
    access_key_id: str | None,
    keyring: Keyring,
    issuer: str,
    expires_at: datetime.datetime | None,
    now: datetime.datetime,
    random_bytes: RandomBytes,
    token_ca: str | None = None,
) -> Material:
    """An access key (kept across rotations when given) and a fresh secret key."""
    access_key_id = access_key_id or keyformat.new_access_key_id(random_bytes)
    if spec.format == "JWT":
        secret = _key_jwt(spec, owner, access_key_id, keyring=keyring, issuer=issuer, expires_at=expires_at, now=now)
    else:
        secret = keyformat.new_secret_key(random_bytes)
    variables = {
        "accessKeyId": access_key_id,
        "secretKey": secret,
        "tenant": owner.namespace,
        "endpoint": issuer,
        "serviceAccount": spec.service_account,
        "name": owner.name,
    }
    fixed = {names.ACCESS_KEY_ID: access_key_id, names.SECRET_KEY: secret, names.ENDPOINT: issuer}
    if token_ca:
        fixed[names.TOKEN_CA] = token_ca
    return _material(access_key_id, secret, _keyed(secret, keyring), fixed, spec.secret_template, variables)


def client_material(
    spec: ApiClientSpec,
    owner: Owner,
    *,
    client_id: str,
    user_secret: str | None,
    keyring: Keyring,
    issuer: str,
    random_bytes: RandomBytes,
    token_ca: str | None = None,
) -> Material:
    """A generated client secret (keyed-hash verifier), or the user's own (argon2id verifier, not copied)."""
    secret = keyformat.new_client_secret(random_bytes) if user_secret is None else None
    verifier = _keyed(secret, keyring) if secret is not None else password_verifier(user_secret or "")
    variables = {
        "clientId": client_id,
        "clientSecret": secret if secret is not None else user_secret or "",
        "tenant": owner.namespace,
        "endpoint": issuer,
        "name": owner.name,
    }
    fixed = {names.CLIENT_ID: client_id, names.TOKEN_URL: f"{issuer}/oauth2/token", names.ENDPOINT: issuer}
    if secret is not None:
        fixed[names.CLIENT_SECRET] = secret
    if token_ca:
        fixed[names.TOKEN_CA] = token_ca
    return _material(client_id, secret, verifier, fixed, spec.secret_template, variables)


def _material(
    identifier: str,
    secret: str | None,
    verifier: str,
    fixed: dict[str, str],
    template: SecretTemplate | None,
    variables: dict[str, str],
) -> Material:
    data = {**templates.render_data(template, variables), **fixed}
    labels = templates.render_metadata(template.labels, variables) if template else {}
    annotations = templates.render_metadata(template.annotations, variables) if template else {}
    return Material(identifier, secret, verifier, data, labels, annotations)


def _keyed(secret: str, keyring: Keyring) -> str:
    return keyed_verifier(secret, key=keyring.current_hmac_key, key_id=keyring.current_hmac)


def _key_jwt(
    spec: ServiceAccountKeySpec,
    owner: Owner,
    access_key_id: str,
    *,
    keyring: Keyring,
    issuer: str,
    expires_at: datetime.datetime | None,
    now: datetime.datetime,
) -> str:
    key = signing_key(keyring.key_signing_keys, now=now, schedule=KeysetSchedule())
    claims = key_token_claims(
        issuer=issuer,
        namespace=owner.namespace,
        access_key_id=access_key_id,
        service_account=spec.service_account,
        roles=[role.to_wire() for role in spec.roles],
        now=now,
        expires_at=expires_at,
        jti=str(uuid.uuid4()),
    )
    headers = {"kid": key.kid, "typ": KEY_TOKEN_TYPE}
    return jwt.encode(claims, key.private_key(), algorithm=key.algorithm, headers=headers)


def tenant_secret_body(
    owner: Owner,
    secret_name: str,
    material: Material,
    *,
    generation: int,
    minted_at: datetime.datetime,
    request: str | None,
) -> Body:
    """The Secret in the credential's namespace: what its workloads consume, and nothing credop trusts.

    The annotations say which generation and request it carries (for people, and
    so credop can tell whether a recorded secret was delivered); credop never
    reads an identifier, verifier or deadline from here.
    """
    annotations = {
        **material.annotations,
        **names.GITOPS_ANNOTATIONS,
        names.KEY_GENERATION: str(generation),
        names.MINTED_AT: timestamp(minted_at),
        names.ACCESS_KEY_ID_ANNOTATION
        if owner.kind == "ServiceAccountKey"
        else names.CLIENT_ID_ANNOTATION: material.identifier,
    }
    if request is not None:
        annotations[names.ROTATION_REQUEST] = request
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name,
            "namespace": owner.namespace,
            "labels": {
                **material.labels,
                names.MANAGED_BY: names.MANAGED_BY_VALUE,
                names.KIND_LABEL: owner.kind,
                names.NAME_LABEL: owner.name[:63],
            },
            "annotations": annotations,
            "ownerReferences": [owner.reference()],
        },
        "stringData": dict(material.data),
    }


@dataclass(frozen=True)
class SecretRecord:
    """What credop recorded of a credential's secret in its record Secret: no secret values, no verifier."""

    name: str
    """The tenant Secret the material is delivered to."""
    identifier: str
    generation: int
    minted_at: datetime.datetime
    request: str | None = None
    previous_valid_until: datetime.datetime | None = None
    adopted: bool = False
    """Found already written (a retry after a crash), not written by this call."""


def record_body(
    namespace: str,
    owner: Owner,
    fields: SecretRecord,
    *,
    verifier: str,
    previous_verifier: str | None = None,
) -> Body:
    """credop's own record of ``owner`` in its namespace ``namespace``: bookkeeping and verifiers."""
    annotations = {
        names.OWNER_ANNOTATION: f"{owner.namespace}/{owner.name}",
        names.SECRET_NAME_ANNOTATION: fields.name,
        names.IDENTIFIER_ANNOTATION: fields.identifier,
        names.KEY_GENERATION: str(fields.generation),
        names.MINTED_AT: timestamp(fields.minted_at),
    }
    if fields.request is not None:
        annotations[names.ROTATION_REQUEST] = fields.request
    data = {names.VERIFIER: verifier}
    if previous_verifier is not None and fields.previous_valid_until is not None:
        data[names.PREVIOUS_VERIFIER] = previous_verifier
        annotations[names.PREVIOUS_VALID_UNTIL] = timestamp(fields.previous_valid_until)
    annotations[names.VERIFIER_KEYS_ANNOTATION] = ",".join(
        verifier_key_ids(verifier, data.get(names.PREVIOUS_VERIFIER))
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": names.record_name(owner.uid),
            "namespace": namespace,
            "labels": {
                names.MANAGED_BY: names.MANAGED_BY_VALUE,
                names.RECORD_LABEL: owner.kind,
                names.OWNER_UID_LABEL: owner.uid,
            },
            "annotations": annotations,
        },
        "stringData": data,
    }
