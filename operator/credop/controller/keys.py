"""The ServiceAccountKey controller: gather → decide (``domain.lifecycle``) → apply.

One reconcile per key at a time (the store's lock), called by the watch
handler and by the scheduler at the key's next deadline. It mints once,
rotates once per request, records invalidations, writes status only when it
changed (with an entry in ``status.history`` and an audit line per
transition), posts an Event per transition, hands the new status to the
notifier (which sends what is owed in the background) and schedules the next
look. A status read stale is read again before its history is written.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from credop import names
from credop.api.common import ACTIVE, FAILED
from credop.api.serviceaccountkey import ServiceAccountKeySpec, ServiceAccountKeyStatus
from credop.controller.context import CredentialContext, gather_common, reconcile_under_lock, rotation_request
from credop.controller.keyring import keyring_missing_message
from credop.controller.material import Material, SecretRecord, key_material
from credop.controller.ports import Reconciling
from credop.controller.secrets import OwnerGoneError, SecretConflictError
from credop.controller.status import (
    condition_events,
    phase_events,
    status_transitions,
    timestamp_or_none,
    written,
)
from credop.controller.store import ObjectRef
from credop.domain import keyformat, templates
from credop.domain.clients import tokens_cut_off
from credop.domain.conditions import merge_conditions, timestamp
from credop.domain.durations import parse_duration
from credop.domain.history import CREDOP, Transition
from credop.domain.lifecycle import KeyFacts, KeyState, key_claims_digest, key_expires_at, key_state, not_ready
from credop.domain.policy import check_service_account_key, grace_period

logger = logging.getLogger(__name__)
PLURAL = names.SERVICE_ACCOUNT_KEYS
RECORD_MISSING = (
    "credop has no record of this key's secret (it was minted before records existed and its Secret no longer "
    "holds a verifier credop wrote); rotate it (annotate credop.dev/rotate) to mint a new secret"
)
Body = dict[str, Any]


@dataclass(frozen=True)
class KeyContext(CredentialContext):
    """Everything gathered about one key before deciding."""

    spec: ServiceAccountKeySpec
    status: ServiceAccountKeyStatus
    record: SecretRecord | None
    notes: tuple[Transition, ...] = ()
    """Transitions status cannot show by itself (workloads restarted), for the history."""


async def reconcile_key(runtime: Reconciling, ref: ObjectRef) -> None:
    await reconcile_under_lock(runtime, ref, _reconcile)


async def _reconcile(runtime: Reconciling, ref: ObjectRef) -> None:
    body = runtime.store.live_body(ref)
    if body is None:
        runtime.scheduler.cancel(ref)
        return
    try:
        spec = ServiceAccountKeySpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        await _fail_invalid_spec(runtime, body, error)
        return
    context = _gather(runtime, body, spec)
    try:
        state, context = await _act(runtime, context)
    except SecretConflictError as error:
        await _fail(runtime, context, "SecretConflict", str(error))
        return
    except OwnerGoneError:
        runtime.scheduler.cancel(ref)
        return
    await _apply(runtime, context, state)


def _gather(runtime: Reconciling, body: Body, spec: ServiceAccountKeySpec) -> KeyContext:
    status = ServiceAccountKeyStatus.model_validate(body.get("status") or {})
    common = gather_common(runtime, body, policy_name=spec.policy_name, secret_name=spec.secret_name)
    recorded = None
    if status.last_rotated_at is not None and status.access_key_id:
        recorded = SecretRecord(
            name=common["secret_name"],
            identifier=status.access_key_id,
            generation=status.key_generation or 1,
            minted_at=status.last_rotated_at,
            request=status.rotate_handled,
            previous_valid_until=status.previous_secret_valid_until,
        )
    record = runtime.store.latest_record(body["metadata"]["uid"], recorded)
    return KeyContext(spec=spec, status=status, record=record, **common)


def _violations(context: KeyContext) -> tuple[Any, ...]:
    if context.policy.spec is None:
        return ()
    return tuple(
        check_service_account_key(context.spec, context.policy.spec)
        + templates.template_problems(context.spec.secret_template)
    )


def _facts(runtime: Reconciling, context: KeyContext) -> KeyFacts:
    record = context.record
    return KeyFacts(
        spec=context.spec,
        policy=context.policy,
        violations=_violations(context),
        minted_at=record.minted_at if record else None,
        last_used_at=context.status.last_used_at,
        secret_present=record is None or runtime.store.secret_exists(context.owner.namespace, context.secret_name),
        previous_valid_until=record.previous_valid_until if record else None,
    )


async def _act(runtime: Reconciling, context: KeyContext) -> tuple[KeyState, KeyContext]:
    """Mint, rotate or retire as the facts demand; returns the state after acting."""
    now = runtime.now()
    state = key_state(_facts(runtime, context), now=now)
    if state.phase == FAILED and state.reason in ("PolicyNotFound", "PolicyViolation"):
        return state, context
    record = context.record
    if runtime.keyring_missing and (record is None or _requested_rotation(context) is not None or state.rotate_now):
        return not_ready(FAILED, "KeyringMissing", keyring_missing_message(runtime.config)), context
    if record is not None and not await _has_record(runtime, context, record) and _requested_rotation(context) is None:
        return not_ready(FAILED, "RecordMissing", RECORD_MISSING), context
    if record is None:
        # An adopted Secret (minted by a process that died before its status patch)
        # may predate a rotation request: the checks below still apply to it.
        record = await _mint(runtime, context, now)
        context = replace(context, record=record)
        state = key_state(_facts(runtime, context), now=now)
    stale_claims = _stale_jwt_claims(context)
    if _requested_rotation(context) is not None or state.rotate_now or stale_claims is not None:
        record, restarted = await _rotate(runtime, context, now, reason=stale_claims)
        context = replace(context, notes=context.notes + restarted)
    elif _grace_is_over(record, now):
        await runtime.secrets.retire_previous(context.owner)
        record = replace(record, previous_valid_until=None)
    context = replace(context, record=record)
    return key_state(_facts(runtime, context), now=now), context


async def _has_record(runtime: Reconciling, context: KeyContext, record: SecretRecord) -> bool:
    """Whether credop's own record exists; a key minted before records existed gets one, once."""
    if runtime.store.has_record(context.owner.uid):
        return True
    assert context.policy.spec is not None
    bound = parse_duration(context.policy.spec.rotation.max_grace_period)
    return await runtime.secrets.migrate(context.owner, record, max_grace=bound)


def _grace_is_over(record: SecretRecord, now: datetime.datetime) -> bool:
    return record.previous_valid_until is not None and record.previous_valid_until <= now


def _requested_rotation(context: KeyContext) -> str | None:
    request = rotation_request(context)
    handled = context.record.request if context.record else context.status.rotate_handled
    return request if request and request != handled else None


async def _mint(runtime: Reconciling, context: KeyContext, now: datetime.datetime) -> SecretRecord:
    """Create the Secret; after a crash, the 409 makes this adopt the Secret minted before it."""
    minted_at = now.replace(microsecond=0)
    material = _material(runtime, context, _unused_access_key_id(runtime, context.owner.uid), minted_at)
    record = await runtime.secrets.mint(
        context.owner, context.secret_name, material, now=minted_at, request=rotation_request(context)
    )
    if not record.adopted:
        runtime.events.record(
            context.body,
            type="Normal",
            reason="Minted",
            message=f'minted access key {record.identifier} into Secret "{context.secret_name}"',
        )
    return record


def _unused_access_key_id(runtime: Reconciling, uid: str) -> str:
    """A fresh access key ID no other credential's record holds (95 random bits: a redraw is all but never needed)."""
    while True:
        candidate = keyformat.new_access_key_id(runtime.random_bytes)
        if not runtime.store.identifier_taken(candidate, by_other_than=uid):
            return candidate


def _stale_jwt_claims(context: KeyContext) -> str | None:
    """For a JWT-format key whose roles or expiry were edited since its JWT was minted: the rotation request."""
    record, recorded = context.record, context.status.claims_digest
    if context.spec.format != "JWT" or record is None or recorded is None or context.policy.spec is None:
        return None
    if context.status.key_generation != record.generation:
        return None  # a rotation this reconcile has not written to status yet
    wanted = key_claims_digest(context.spec, context.policy.spec, minted_at=record.minted_at)
    return f"claims:{wanted}" if wanted != recorded else None


def _claims_digest(context: KeyContext) -> str | None:
    """The digest status records: of the JWT minted now, else the one recorded (set once for older keys)."""
    record, status = context.record, context.status
    if context.spec.format != "JWT" or record is None or context.policy.spec is None:
        return None
    if status.claims_digest is not None and status.key_generation == record.generation:
        return status.claims_digest
    return key_claims_digest(context.spec, context.policy.spec, minted_at=record.minted_at)


async def _rotate(
    runtime: Reconciling, context: KeyContext, now: datetime.datetime, *, reason: str | None = None
) -> tuple[SecretRecord, tuple[Transition, ...]]:
    previous = context.record
    assert previous is not None
    request = _requested_rotation(context) or reason or f"auto:{previous.generation + 1}"
    minted_at = now.replace(microsecond=0)
    assert context.policy.spec is not None
    grace = grace_period(context.spec, context.policy.spec)
    record = await runtime.secrets.rotate(
        context.owner,
        context.secret_name,
        request=request,
        make_material=lambda access_key_id: _material(
            runtime, context, access_key_id or previous.identifier, minted_at
        ),
        now=minted_at,
        grace=grace,
        generation=previous.generation,
    )
    if record.adopted:
        return record, ()
    until = f"; the previous secret works until {timestamp(minted_at + grace)}" if grace else ""
    runtime.events.record(
        context.body,
        type="Normal",
        reason="Rotated",
        message=f"rotated the secret of access key {record.identifier} (generation {record.generation}, {request}){until}",
    )
    restarted = await _restart_targets(runtime, context, minted_at, generation=record.generation)
    return record, restarted


def _material(runtime: Reconciling, context: KeyContext, access_key_id: str, minted_at: datetime.datetime) -> Material:
    assert context.policy.spec is not None
    return key_material(
        context.spec,
        context.owner,
        access_key_id=access_key_id,
        keyring=runtime.keyring,
        issuer=runtime.config.issuer,
        token_ca=runtime.token_ca(),
        expires_at=key_expires_at(context.spec, context.policy.spec, minted_at=minted_at),
        now=minted_at,
        random_bytes=runtime.random_bytes,
    )


async def _restart_targets(
    runtime: Reconciling, context: KeyContext, now: datetime.datetime, *, generation: int
) -> tuple[Transition, ...]:
    """Restart workloads the way `kubectl rollout restart` does: a pod template annotation."""
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": timestamp(now)}}}}}
    done, failed = [], []
    for target in context.spec.rotation.restart_targets:
        try:
            await runtime.kube.patch_workload(target.kind, context.owner.namespace, target.name, patch)
        except Exception as error:
            failed.append(f"{target.kind}/{target.name}")
            runtime.events.record(
                context.body,
                type="Warning",
                reason="RestartFailed",
                message=f"could not restart {target.kind}/{target.name}: {type(error).__name__}",
            )
        else:
            done.append(f"{target.kind}/{target.name}")
            runtime.events.record(
                context.body, type="Normal", reason="Restarted", message=f"restarted {target.kind}/{target.name}"
            )
    if not done and not failed:
        return ()
    message = "; ".join(
        part
        for part in (
            f"restarted {', '.join(done)}" if done else "",
            f"could not restart {', '.join(failed)}" if failed else "",
        )
        if part
    )
    return (Transition("RestartedTargets", message, CREDOP, generation),)


def _desired_status(context: KeyContext, state: KeyState, now: datetime.datetime) -> Body:
    status = context.status
    record = context.record
    tokens_invalid_before, handled = tokens_cut_off(
        was_active=status.phase == ACTIVE,
        is_active=state.phase == ACTIVE,
        requested=context.annotations.get(names.INVALIDATE_TOKENS),
        handled=status.invalidate_tokens_handled,
        recorded=status.tokens_invalid_before,
        now=now,
    )
    desired = ServiceAccountKeyStatus.model_validate(
        {
            "observedGeneration": context.generation,
            "phase": state.phase,
            "reason": state.reason,
            "message": state.message or None,
            "accessKeyId": record.identifier if record else None,
            "policy": context.policy.name,
            "createdBy": context.annotations.get(names.CREATED_BY) or status.created_by,
            "createdAt": timestamp_or_none(status.created_at or (record.minted_at if record else None)),
            "expiresAt": timestamp_or_none(state.timeline.expires_at),
            "lastRotatedAt": timestamp_or_none(record.minted_at if record else None),
            "rotationDueAt": timestamp_or_none(state.timeline.rotation_due_at),
            "secretRef": {"name": context.secret_name} if record else None,
            "keyGeneration": record.generation if record else None,
            "previousSecretValidUntil": timestamp_or_none(record.previous_valid_until if record else None),
            "rotateHandled": record.request if record else None,
            "tokensInvalidBefore": timestamp_or_none(tokens_invalid_before),
            "invalidateTokensHandled": handled,
            "claimsDigest": _claims_digest(context),
        }
    ).to_patch()
    previous = (context.body.get("status") or {}).get("conditions") or []
    desired["conditions"] = merge_conditions(previous, state.conditions, now=now, generation=context.generation)
    return desired


async def _apply(runtime: Reconciling, context: KeyContext, state: KeyState) -> None:
    now = runtime.now()
    desired = _desired_status(context, state, now)
    current = context.body.get("status") or {}
    if (
        desired["invalidateTokensHandled"] != current.get("invalidateTokensHandled")
        and desired["invalidateTokensHandled"]
    ):
        runtime.events.record(
            context.body,
            type="Normal",
            reason="TokensInvalidated",
            message=f"tokens issued before {desired['tokensInvalidBefore']} are rejected",
        )
    for event in phase_events(current, desired) + condition_events(
        current.get("conditions") or [], desired["conditions"]
    ):
        runtime.events.record(context.body, **event)
    found = status_transitions(context.body, desired, policy=context.policy.name, extra=context.notes)
    await runtime.status.apply(PLURAL, context.body, desired, history=found)
    ref = ObjectRef.of(PLURAL, context.body)
    runtime.metrics.note_routing(ref, created_by=desired["createdBy"], policy=context.policy.name)
    runtime.notifier.review(PLURAL, written(context.body, desired))
    runtime.scheduler.schedule(ref, state.next_check)


async def _fail(runtime: Reconciling, context: KeyContext, reason: str, message: str) -> None:
    await _apply(runtime, context, not_ready(FAILED, reason, message))


async def _fail_invalid_spec(runtime: Reconciling, body: Body, error: ValidationError) -> None:
    message = "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    desired = {
        "phase": FAILED,
        "reason": "InvalidSpec",
        "message": message[:1024],
        "observedGeneration": body["metadata"].get("generation"),
    }
    await runtime.status.apply(PLURAL, body, desired, history=status_transitions(body, desired, policy=None))
