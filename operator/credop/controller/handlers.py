"""Kopf handlers: watch events in, reconciles out. Nothing here decides anything.

Only ``@kopf.on.event`` handlers are used: they keep no state in the objects
(no finalizers, no diff-base annotations, no progress in status), which is
what a credential operator wants and what keeps writes per object minimal.
Secrets are watched by label, events only, and never stored with their data.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Iterable
from typing import Any, cast

import kopf

from credop import GROUP, VERSION, names
from credop.controller.clients import reconcile_client
from credop.controller.keyring import (
    KeyringMissingError,
    keep_keys,
    load_or_create_keyring,
    restore_keyring,
    rotate_hmac_keys,
    rotate_signing_keys,
)
from credop.controller.keys import reconcile_key
from credop.controller.runtime import Runtime
from credop.controller.store import ObjectRef, RecordInfo
from credop.domain.conditions import merge_conditions
from credop.domain.keyring import decode_keyring
from credop.domain.lifecycle import READY, ConditionState
from credop.domain.policy import BUILT_IN_POLICY
from credop.domain.signing import KeysetSchedule
from credop.kube.tls_secrets import load_or_issue

logger = logging.getLogger(__name__)
RETRY_AFTER = datetime.timedelta(seconds=5)
CREDENTIAL_PLURALS = (names.SERVICE_ACCOUNT_KEYS, names.API_CLIENTS)


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: credop registers only ``on.event`` handlers, which never look at one.

    kopf's default storage deep-copies each body and forms its annotation keys on
    every watch event to compute a diff nothing here reads (a tenth of the
    operator's CPU while minting)."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def runtime_of(memo: Any) -> Runtime:
    runtime = memo.runtime
    assert isinstance(runtime, Runtime)
    return runtime


@kopf.on.startup(backoff=2)  # the API server may be away when the operator starts: try again soon
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False
    settings.persistence.diffbase_storage = NoDiffBase()
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.label_selectors["v1", "secrets"] = names.MANAGED_SELECTOR
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.chunk_size = 500  # list large clusters in pages (a lower peak at startup)
    settings.networking.request_timeout = 60
    runtime = runtime_of(memo)
    runtime.reconcilers = {names.SERVICE_ACCOUNT_KEYS: reconcile_key, names.API_CLIENTS: reconcile_client}
    await _preload(runtime)
    await _load_keyring(runtime)
    await _keep_service_certificate(runtime)
    runtime.start(lambda: _keyring_housekeeping(runtime))


async def _keep_service_certificate(runtime: Runtime) -> None:
    """With ``service_tls_secret``: the service's CA and certificate, made once and renewed when due."""
    config = runtime.config
    if config.service_tls_secret is None:
        return
    bundle = await load_or_issue(
        runtime.kube,
        config.namespace,
        config.service_tls_secret,
        hosts=config.service_hosts,
        now=runtime.now(),
        role="service-tls",
        ca_name="credop-service-ca",
    )
    runtime.service_ca = bundle.ca_cert.decode()


async def _load_keyring(runtime: Runtime) -> None:
    """The keyring, or (missing while records exist) a loud refusal to make a new one."""
    config = runtime.config
    try:
        runtime.keyring = await load_or_create_keyring(
            runtime.kube, config, now=runtime.now(), credentials_exist=bool(runtime.store.records)
        )
    except KeyringMissingError as error:
        runtime.keyring_missing = True
        runtime.metrics.keyring_missing.set(1)
        logger.error("%s", error)
        runtime.events.record(
            _keys_secret_reference(runtime), type="Warning", reason="KeyringMissing", message=str(error)
        )


async def _preload(runtime: Runtime) -> None:
    """Policies and Secret names before any credential is reconciled, so no decision runs on a partial view."""
    for policy in await runtime.kube.list_all_objects(names.KEY_POLICIES):
        meta = policy["metadata"]
        runtime.store.set_policy(meta["namespace"], meta["name"], policy.get("spec") or {})
    async for page in runtime.kube.secret_metadata_pages(names.MANAGED_SELECTOR):
        for secret in page:
            if _is_record(runtime, secret["metadata"]):
                _note_record(runtime, secret["metadata"], deleted=False)
            else:
                _remember_secret(runtime, secret["metadata"])


async def _keyring_housekeeping(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(3600)
        try:
            await _keep_service_certificate(runtime)
        except Exception:
            logger.exception("checking the service certificate failed; retrying in an hour")
        if runtime.keyring_missing:
            continue
        try:
            runtime.keyring = await rotate_signing_keys(
                runtime.kube, runtime.config, runtime.keyring, now=runtime.now(), schedule=_keyset_schedule(runtime)
            )
            runtime.keyring = await rotate_hmac_keys(
                runtime.kube,
                runtime.config,
                runtime.keyring,
                now=runtime.now(),
                every=datetime.timedelta(days=runtime.config.hmac_key_rotation_days),
                in_use=runtime.store.hmac_keys_in_use(),
            )
        except Exception:
            logger.exception("key rotation failed; retrying in an hour")


def _keys_secret_reference(runtime: Runtime) -> dict[str, Any]:
    """The keyring Secret as an Event's involved object (it may not exist)."""
    config = runtime.config
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": config.keys_secret, "namespace": config.namespace},
    }


async def _keyring_event(runtime: Runtime, event: kopf.RawEvent) -> None:
    """The keyring Secret deleted: write it back from memory. Changed or restored: hold every key of both."""
    body = cast(dict[str, Any], event["object"])
    config = runtime.config
    if event["type"] == "DELETED":
        if runtime.keyring_missing:
            return
        logger.error(
            "the keyring Secret %s/%s was deleted; writing it back from memory", config.namespace, config.keys_secret
        )
        await restore_keyring(runtime.kube, config, runtime.keyring)
        runtime.metrics.keyring_restores.inc()
        runtime.events.record(
            _keys_secret_reference(runtime),
            type="Warning",
            reason="KeyringRestored",
            message="the keyring Secret was deleted; credop wrote it back from the running operator's copy. "
            "Keep a backup: credop keyring export",
        )
        return
    incoming = decode_keyring(body.get("data") or {})
    if runtime.keyring_missing:
        runtime.keyring, runtime.keyring_missing = incoming, False
        runtime.metrics.keyring_missing.set(0)
        logger.warning("the keyring Secret is back: minting and rotating again")
        runtime.resync_all(spread=datetime.timedelta(seconds=10))
        return
    runtime.keyring = await keep_keys(runtime.kube, config, runtime.keyring, incoming)


def _keyset_schedule(runtime: Runtime) -> KeysetSchedule:
    """Retired keys stay published for the longest token lifetime any policy allows, plus an hour."""
    lifetimes = [
        policy.token_validity.max_seconds
        for policies in runtime.store.policies.values()
        for policy in policies.values()
    ]
    longest = datetime.timedelta(seconds=max([BUILT_IN_POLICY.token_validity.max_seconds, *lifetimes]))
    return KeysetSchedule(
        rotate_every=datetime.timedelta(days=runtime.config.signing_key_rotation_days),
        retain_after=longest + datetime.timedelta(hours=1),
    )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    await runtime.slots.stop()
    await runtime.stop()


async def _credential_event(plural: str, event: kopf.RawEvent, memo: kopf.Memo) -> None:
    runtime = runtime_of(memo)
    body = cast(dict[str, Any], event["object"])
    ref = ObjectRef.of(plural, body)
    if event["type"] == "DELETED":
        await runtime.forget_credential(ref, str(body["metadata"].get("uid", "")))
        return
    if event["type"] is None:
        runtime.note_listing()
    runtime.store.remember(ref, dict(body))
    if runtime.store.is_own_write(ref, body):
        return  # the status credop just wrote: nothing new to act on
    if event["type"] is None:
        # A listing (startup, a watch listing again): queued for the scheduler, so kopf's
        # per-object workers end now and the parsed bodies of 100,000 objects are not all
        # held at once waiting for their reconciles.
        runtime.reconcile_soon(ref)
        return
    try:
        await runtime.reconcile(ref)
    except Exception as error:
        logger.warning("reconciling %s failed (%s: %s); retrying", ref, type(error).__name__, error)
        runtime.scheduler.schedule(ref, runtime.now() + RETRY_AFTER, deadline=False)


@kopf.on.event(GROUP, VERSION, names.SERVICE_ACCOUNT_KEYS)
async def key_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    await _credential_event(names.SERVICE_ACCOUNT_KEYS, event, memo)


@kopf.on.event(GROUP, VERSION, names.API_CLIENTS)
async def client_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    await _credential_event(names.API_CLIENTS, event, memo)


@kopf.on.event(GROUP, VERSION, names.KEY_POLICIES)
async def policy_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    body = cast(dict[str, Any], event["object"])
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if event["type"] == "DELETED":
        runtime.store.drop_policy(namespace, name)
    elif runtime.store.is_own_write(ObjectRef.of(names.KEY_POLICIES, body), body):
        return  # only the Ready condition credop just wrote
    else:
        error = runtime.store.set_policy(namespace, name, body.get("spec") or {})
        await _write_policy_status(runtime, body, error)
    for ref in runtime.store.refs_in(namespace):
        if ref.plural in CREDENTIAL_PLURALS:
            runtime.reconcile_soon(ref)


async def _write_policy_status(runtime: Runtime, body: dict[str, Any], error: str | None) -> None:
    generation = body["metadata"].get("generation")
    ready = ConditionState(READY, error is None, "Invalid" if error else "InForce", (error or "")[:1024])
    previous = (body.get("status") or {}).get("conditions") or []
    desired = {
        "observedGeneration": generation,
        "conditions": merge_conditions(previous, [ready], now=runtime.now(), generation=generation),
    }
    await runtime.status.apply(names.KEY_POLICIES, body, desired)


_LISTED = (None, "ADDED")
"""Event types a listing (kopf's ``None``) or a watch's start (``ADDED``) sends for objects that exist."""


@kopf.on.event("v1", "secrets")
async def secret_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Track which credential Secrets exist (by name; their data is not kept) and notice deletions."""
    runtime = runtime_of(memo)
    meta = cast(dict[str, Any], event["object"]["metadata"])
    if meta.get("namespace") == runtime.config.namespace and meta.get("name") == runtime.config.keys_secret:
        before = runtime.keyring, runtime.keyring_missing
        await _keyring_event(runtime, event)
        if (runtime.keyring, runtime.keyring_missing) != before:
            runtime.store.touch()  # every credential reads the keyring; a listing that repeats it moves nothing
        return
    if _is_record(runtime, meta):
        _note_record(runtime, meta, deleted=event["type"] == "DELETED", listed=event["type"] in _LISTED)
        return
    key = (meta["namespace"], meta["name"])
    owner = _credential_owner(meta)
    if owner is None:
        runtime.store.touch_secret(*key)
        return
    known = runtime.store.secret_exists(*key)
    if event["type"] == "DELETED":
        runtime.store.forget_secret(*key)
    elif not known:
        _remember_secret(runtime, meta)
    if known and event["type"] in _LISTED:
        return  # listed again (a restarted watch) as the store already knows it: nothing a reconcile reads moved
    runtime.store.touch_secret(*key)
    if event["type"] == "DELETED" or not known:
        runtime.reconcile_soon(owner)


def _is_record(runtime: Runtime, meta: dict[str, Any]) -> bool:
    """A record Secret: labelled as one, in credop's own namespace (nowhere else is trusted)."""
    return meta.get("namespace") == runtime.config.namespace and names.RECORD_LABEL in (meta.get("labels") or {})


def _note_record(runtime: Runtime, meta: dict[str, Any], *, deleted: bool, listed: bool = False) -> None:
    """Keep what a record Secret says; move its owner's counter unless a listing repeats what the store has."""
    uid = (meta.get("labels") or {}).get(names.OWNER_UID_LABEL, "")
    info = RecordInfo.of(meta.get("annotations") or {})
    if not uid:
        runtime.store.touch(info.owner.partition("/")[0] if "/" in info.owner else None)
        return
    unchanged = listed and runtime.store.records.get(uid) == info
    if deleted:
        runtime.store.forget_record(uid)
    else:
        runtime.store.note_record(uid, info)
    if not unchanged:
        runtime.store.touch_record(uid)


def _credential_owner(meta: dict[str, Any]) -> ObjectRef | None:
    for reference in meta.get("ownerReferences") or []:
        plural = names.PLURAL_OF_KIND.get(reference.get("kind", ""))
        if reference.get("apiVersion", "").startswith(f"{GROUP}/") and plural in CREDENTIAL_PLURALS:
            return ObjectRef(plural, meta["namespace"], reference["name"])
    return None


def _remember_secret(runtime: Runtime, meta: dict[str, Any]) -> None:
    owner = _credential_owner(meta)
    if owner is not None:
        uid = next(r["uid"] for r in meta["ownerReferences"] if r["name"] == owner.name)
        runtime.store.note_secret(meta["namespace"], meta["name"], uid)
