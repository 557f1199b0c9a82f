"""The ApiClient controller: mint the client secret, handle actions, report eligibility for a slot.

The client's phase (Active / Inactive / Pending / Failed) is not written here:
the namespace's slot actor (:mod:`credop.controller.slots`) owns it, so that
one actor alone decides who holds the at-most-N active slots.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from credop import names
from credop.api.apiclient import ApiClientSpec, ApiClientStatus
from credop.api.keypolicy import KeyPolicySpec
from credop.controller.context import CredentialContext, gather_common, reconcile_under_lock, rotation_request
from credop.controller.keyring import keyring_missing_message
from credop.controller.material import Material, SecretRecord, client_material
from credop.controller.ports import Reconciling
from credop.controller.secrets import OwnerGoneError, SecretConflictError
from credop.controller.status import status_transitions, timestamp_or_none
from credop.controller.store import ObjectRef, generation_of
from credop.domain import templates
from credop.domain.clients import ClientFacts, eligibility, tokens_cut_off
from credop.domain.policy import (
    Violation,
    check_api_client,
    check_client_secret,
    effective_token_validity,
    policy_not_found,
)
from credop.kube.bodies import data_value
from credop.kube.client import NotFoundError

PLURAL = names.API_CLIENTS
RECORD_MISSING = (
    "credop has no record of this client's secret (it was minted before records existed and its Secret no longer "
    "holds a verifier credop wrote); rotate it (annotate credop.dev/rotate) to mint a new secret"
)
Body = dict[str, Any]


class ClientProblem(Exception):  # noqa: N818 - a refusal, not a crash
    """Why a client cannot be minted or used: becomes phase Failed with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ClientContext(CredentialContext):
    """Everything gathered about one client before deciding."""

    spec: ApiClientSpec
    status: ApiClientStatus
    client_id: str


async def reconcile_client(runtime: Reconciling, ref: ObjectRef) -> None:
    await reconcile_under_lock(runtime, ref, _reconcile)


async def _reconcile(runtime: Reconciling, ref: ObjectRef) -> None:
    body = runtime.store.live_body(ref)
    if body is None:
        return
    generation = generation_of(body)
    try:
        spec = ApiClientSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        runtime.slots.update(ref, ClientFacts.failed("InvalidSpec", str(error)[:1024], generation))
        return
    context = _gather(runtime, body, spec)
    try:
        record = await _act(runtime, context)
    except OwnerGoneError:
        return
    except ClientProblem as problem:
        await _write_status(runtime, context, None)
        runtime.slots.update(ref, ClientFacts.failed(problem.reason, problem.message, generation))
        return
    await _write_status(runtime, context, record)
    runtime.slots.update(ref, _eligibility(runtime, context))


def _gather(runtime: Reconciling, body: Body, spec: ApiClientSpec) -> ClientContext:
    return ClientContext(
        spec=spec,
        status=ApiClientStatus.model_validate(body.get("status") or {}),
        client_id=spec.client_id or body["metadata"]["name"],
        **gather_common(runtime, body, policy_name=spec.policy_name, secret_name=spec.secret_name),
    )


def _policy(context: ClientContext) -> KeyPolicySpec:
    if context.policy.spec is None:
        raise ClientProblem("PolicyNotFound", str(policy_not_found(context.policy)))
    return context.policy.spec


def _check_spec(runtime: Reconciling, context: ClientContext, policy: KeyPolicySpec) -> None:
    violations = check_api_client(context.spec, policy) + templates.template_problems(context.spec.secret_template)
    violations += _duplicate_client_id(runtime, context)
    if violations:
        raise ClientProblem("PolicyViolation", "; ".join(str(v) for v in violations))


def _duplicate_client_id(runtime: Reconciling, context: ClientContext) -> list[Violation]:
    """The oldest holder of a client ID keeps it; later ones fail."""
    holders = runtime.store.client_id_holders(context.owner.namespace, context.client_id, plural=PLURAL)
    me = (context.body["metadata"].get("creationTimestamp", ""), context.owner.name)
    older = [h for h in holders if (h["metadata"].get("creationTimestamp", ""), h["metadata"]["name"]) < me]
    if not older:
        return []
    return [
        Violation(
            "spec.clientId", f'"{context.client_id}" is already used by ApiClient "{older[0]["metadata"]["name"]}"'
        )
    ]


async def _act(runtime: Reconciling, context: ClientContext) -> SecretRecord:
    policy = _policy(context)
    _check_spec(runtime, context, policy)
    record = _record_from_status(runtime, context)
    if record is not None and not runtime.store.has_record(context.owner.uid):
        migrated = await runtime.secrets.migrate(context.owner, record, max_grace=datetime.timedelta(0))
        if not migrated and _requested_rotation(context, record) is None:
            raise ClientProblem("RecordMissing", RECORD_MISSING)
    if runtime.keyring_missing and (record is None or _requested_rotation(context, record)):
        raise ClientProblem("KeyringMissing", keyring_missing_message(runtime.config))
    if record is None:
        # Adopting a Secret minted before a crash: a rotation requested since is still owed.
        record = await _mint(runtime, context, policy)
    if _requested_rotation(context, record):
        return await _rotate(runtime, context, policy, record)
    if record.identifier != context.client_id and runtime.store.secret_exists(
        context.owner.namespace, context.secret_name
    ):
        await runtime.secrets.change_identifier(
            context.owner, context.secret_name, identifier=context.client_id, data_key=names.CLIENT_ID
        )
        runtime.events.record(
            context.body,
            type="Normal",
            reason="ClientIdChanged",
            message=f'client ID changed from "{record.identifier}" to "{context.client_id}"',
        )
    return record


def _record_from_status(runtime: Reconciling, context: ClientContext) -> SecretRecord | None:
    """What was minted, per status or this process's own writes; ``None`` before the first mint."""
    status = context.status
    recorded = None
    if status.key_generation and status.last_rotated_at is not None:
        recorded = SecretRecord(
            context.secret_name,
            status.client_id or context.client_id,
            status.key_generation,
            status.last_rotated_at,
            status.rotate_handled,
        )
    return runtime.store.latest_record(context.owner.uid, recorded)


def _requested_rotation(context: ClientContext, record: SecretRecord) -> str | None:
    request = rotation_request(context)
    return request if request and request != record.request else None


async def _user_secret(runtime: Reconciling, context: ClientContext, policy: KeyPolicySpec) -> str | None:
    reference = context.spec.client_secret_ref
    if reference is None:
        return None
    try:
        secret = await runtime.kube.read_secret(context.owner.namespace, reference.name)
    except NotFoundError:
        raise ClientProblem(
            "ClientSecretNotFound", f'spec.clientSecretRef: Secret "{reference.name}" does not exist'
        ) from None
    value = data_value(secret, reference.key)
    if value is None:
        raise ClientProblem(
            "ClientSecretNotFound", f'spec.clientSecretRef: Secret "{reference.name}" has no key "{reference.key}"'
        )
    violations = check_client_secret(value, policy)
    if violations:
        raise ClientProblem("InvalidClientSecret", "; ".join(str(v) for v in violations))
    return value


async def _material(runtime: Reconciling, context: ClientContext, policy: KeyPolicySpec) -> Material:
    return client_material(
        context.spec,
        context.owner,
        client_id=context.client_id,
        user_secret=await _user_secret(runtime, context, policy),
        keyring=runtime.keyring,
        issuer=runtime.config.issuer,
        token_ca=runtime.token_ca(),
        random_bytes=runtime.random_bytes,
    )


async def _mint(runtime: Reconciling, context: ClientContext, policy: KeyPolicySpec) -> SecretRecord:
    now = runtime.now().replace(microsecond=0)
    material = await _material(runtime, context, policy)
    try:
        record = await runtime.secrets.mint(
            context.owner, context.secret_name, material, now=now, request=rotation_request(context)
        )
    except SecretConflictError as error:
        raise ClientProblem("SecretConflict", str(error)) from None
    if record.adopted:
        return record
    source = "your client secret" if context.spec.client_secret_ref else "a generated client secret"
    runtime.events.record(
        context.body,
        type="Normal",
        reason="Minted",
        message=f'client "{context.client_id}" created with {source} in Secret "{context.secret_name}"',
    )
    return record


async def _rotate(
    runtime: Reconciling, context: ClientContext, policy: KeyPolicySpec, record: SecretRecord
) -> SecretRecord:
    request = _requested_rotation(context, record)
    assert request is not None
    now = runtime.now().replace(microsecond=0)
    material = await _material(runtime, context, policy)
    try:
        rotated = await runtime.secrets.rotate(
            context.owner,
            context.secret_name,
            request=request,
            make_material=lambda _identifier: material,
            now=now,
            grace=datetime.timedelta(0),
            generation=record.generation,
        )
    except SecretConflictError as error:
        raise ClientProblem("SecretConflict", str(error)) from None
    if rotated.adopted:
        return rotated
    runtime.events.record(
        context.body,
        type="Normal",
        reason="Rotated",
        message=f'client "{context.client_id}" has a new secret (generation {rotated.generation})',
    )
    return rotated


async def _write_status(runtime: Reconciling, context: ClientContext, record: SecretRecord | None) -> None:
    status = context.status
    now = runtime.now()
    requested = context.annotations.get(names.INVALIDATE_TOKENS)
    tokens_invalid_before, handled = tokens_cut_off(
        was_active=False,
        is_active=False,  # leaving Active is the slot actor's to record
        requested=requested,
        handled=status.invalidate_tokens_handled,
        recorded=status.tokens_invalid_before,
        now=now,
    )
    if handled != status.invalidate_tokens_handled:
        runtime.events.record(
            context.body,
            type="Normal",
            reason="TokensInvalidated",
            message=f'tokens of client "{context.client_id}" issued before now are rejected',
        )
    policy = context.policy.spec
    desired = ApiClientStatus.model_validate(
        {
            "clientId": context.client_id,
            "tokenValiditySeconds": effective_token_validity(context.spec, policy)
            if policy
            else context.spec.token_validity_seconds,
            "policy": context.policy.name,
            "createdBy": context.annotations.get(names.CREATED_BY) or status.created_by,
            "createdAt": timestamp_or_none(status.created_at or (record.minted_at if record else None)),
            "secretRef": {"name": context.secret_name} if record else None,
            "keyGeneration": record.generation if record else None,
            "lastRotatedAt": timestamp_or_none(record.minted_at if record else None),
            "rotateHandled": record.request if record else None,
            "tokensInvalidBefore": timestamp_or_none(tokens_invalid_before),
            "invalidateTokensHandled": handled,
        }
    ).to_patch()
    found = status_transitions(context.body, desired, policy=context.policy.name)
    await runtime.status.apply(PLURAL, context.body, desired, history=found)
    runtime.metrics.note_routing(
        ObjectRef.of(PLURAL, context.body),
        created_by=context.annotations.get(names.CREATED_BY) or status.created_by,
        policy=context.policy.name,
    )


def _eligibility(runtime: Reconciling, context: ClientContext) -> ClientFacts:
    assert context.policy.spec is not None
    return eligibility(
        active=context.spec.active,
        secret_present=runtime.store.secret_exists(context.owner.namespace, context.secret_name),
        secret_name=context.secret_name,
        limit=context.policy.spec.max_active_clients,
        generation=context.generation,
    )
