"""Minting credential Secrets exactly once, with credop's own record of each in its own namespace.

Every credential has two Secrets:

* its **record**, ``credop-record-<uid>`` in credop's namespace, where tenants
  cannot write: the identifier, generation, rotation request, grace deadline
  and the verifiers the credential service checks secrets against. Whatever
  credop decides later (the access key ID to keep, the previous verifier, how
  long it stays valid) is read back from here and nowhere else;
* its **tenant Secret**, in the credential's namespace and owned by it: only
  what workloads consume. A tenant may edit it; that can only break its own
  credential, never reach another one.

The record is written first, then the secret is delivered. A crash between
the two leaves a record nobody holds the secret of, so minting it afresh is
safe; a crash after both finds the delivered Secret and adopts it. Rotations
record their request, so a retry finds the rotation done instead of rotating
twice.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from credop import names
from credop.controller.material import Material, Owner, SecretRecord, record_body, tenant_secret_body
from credop.domain.conditions import parse_timestamp
from credop.domain.verifiers import is_acceptable_verifier
from credop.kube.bodies import data_value
from credop.kube.client import ConflictError, Kube, NotFoundError

Body = dict[str, Any]
logger = logging.getLogger(__name__)


class OwnerGoneError(LookupError):
    """The credential was deleted while credop was working on it: nothing to mint."""


class SecretConflictError(RuntimeError):
    """A Secret of that name exists and belongs to something else; credop will not overwrite it."""


def record_of(record_secret: Body) -> SecretRecord:
    """The bookkeeping of a record Secret (written by credop where tenants cannot write)."""
    meta = record_secret["metadata"]
    annotations = meta.get("annotations") or {}
    minted_at = _timestamp_or_none(annotations.get(names.MINTED_AT)) or parse_timestamp(meta.get("creationTimestamp"))
    assert minted_at is not None
    return SecretRecord(
        name=annotations.get(names.SECRET_NAME_ANNOTATION, ""),
        identifier=annotations.get(names.IDENTIFIER_ANNOTATION, ""),
        generation=_positive(annotations.get(names.KEY_GENERATION, "1")),
        minted_at=minted_at,
        request=annotations.get(names.ROTATION_REQUEST),
        previous_valid_until=_timestamp_or_none(annotations.get(names.PREVIOUS_VALID_UNTIL)),
    )


def _positive(text: str) -> int:
    return int(text) if text.isdigit() and int(text) > 0 else 1


def _timestamp_or_none(text: str | None) -> datetime.datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def owned_by(secret: Body, owner: Owner) -> bool:
    return any(ref.get("uid") == owner.uid for ref in secret["metadata"].get("ownerReferences") or [])


def delivered(tenant_secret: Body, record: SecretRecord) -> bool:
    """Whether the tenant's Secret carries the recorded generation (else the delivery never happened)."""
    annotations = tenant_secret["metadata"].get("annotations") or {}
    return annotations.get(names.KEY_GENERATION) == str(record.generation) and annotations.get(
        names.ROTATION_REQUEST
    ) == (record.request or None)


class CredentialSecrets:
    """Mint, rotate, retire and forget; tells ``on_written`` what each credential's record now says."""

    def __init__(self, kube: Kube, *, namespace: str, on_written: Callable[[Owner, SecretRecord], None]) -> None:
        self._kube = kube
        self.namespace = namespace
        """credop's own namespace, where the records live."""
        self._on_written = on_written

    async def mint(
        self,
        owner: Owner,
        secret_name: str,
        material: Material,
        *,
        now: datetime.datetime,
        request: str | None = None,
        generation: int = 1,
    ) -> SecretRecord:
        """Record, then deliver; when a record exists already, adopt what it delivered or mint afresh."""
        fields = SecretRecord(secret_name, material.identifier, generation, now, request)
        try:
            await self._kube.create_secret(
                self.namespace, record_body(self.namespace, owner, fields, verifier=material.verifier)
            )
        except ConflictError:
            return await self._resume_mint(owner, secret_name, material, now=now, request=request)
        await self._deliver(owner, fields, material)
        return self._written(owner, fields)

    async def _resume_mint(
        self, owner: Owner, secret_name: str, material: Material, *, now: datetime.datetime, request: str | None
    ) -> SecretRecord:
        existing = await self._kube.read_secret(self.namespace, names.record_name(owner.uid))
        record = record_of(existing)
        tenant = await self._tenant_secret(owner, secret_name)
        if tenant is not None and delivered(tenant, record):
            return self._written(owner, replace(record, adopted=True))
        if tenant is None:
            await self._require_owner(owner)  # not a Secret collected with its deleted owner
        # Recorded but never delivered: nobody holds that secret, so a fresh one replaces it.
        # Nobody holds the recorded identifier either, so the fresh material is taken whole.
        fields = SecretRecord(secret_name, material.identifier, record.generation, now, request)
        body = record_body(self.namespace, owner, fields, verifier=material.verifier)
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        await self._kube.replace_secret(self.namespace, names.record_name(owner.uid), body)
        await self._deliver(owner, fields, material)
        return self._written(owner, fields)

    async def rotate(
        self,
        owner: Owner,
        secret_name: str,
        *,
        request: str,
        make_material: Callable[[str | None], Material],
        now: datetime.datetime,
        grace: datetime.timedelta,
        generation: int,
    ) -> SecretRecord:
        """Replace the secret (once per ``request``), keeping the old verifier for ``grace`` when given.

        The identifier kept across the rotation is the recorded one, never one read
        from the tenant's Secret. ``generation`` is what status shows, used only when
        no record exists (it was lost): then a new secret is minted after it.
        """
        try:
            existing = await self._kube.read_secret(self.namespace, names.record_name(owner.uid))
        except NotFoundError:
            await self._require_owner(owner)
            return await self.mint(
                owner, secret_name, make_material(None), now=now, request=request, generation=generation + 1
            )
        record = record_of(existing)
        tenant = await self._tenant_secret(owner, secret_name)
        if record.request == request and tenant is not None and delivered(tenant, record):
            return self._written(owner, replace(record, adopted=True))
        if tenant is None:
            await self._require_owner(owner)
        material = make_material(record.identifier or None)
        redo = record.request == request  # recorded by a process that died before delivering it
        keep_previous = grace > datetime.timedelta(0) and not redo
        fields = SecretRecord(
            secret_name,
            material.identifier,
            record.generation if redo else record.generation + 1,
            now,
            request,
            now + grace if keep_previous else record.previous_valid_until if redo else None,
        )
        previous = data_value(existing, names.VERIFIER if keep_previous else names.PREVIOUS_VERIFIER)
        body = record_body(
            self.namespace,
            owner,
            fields,
            verifier=material.verifier,
            previous_verifier=previous if fields.previous_valid_until else None,
        )
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        await self._kube.replace_secret(self.namespace, names.record_name(owner.uid), body)
        await self._deliver(owner, fields, material, replacing=tenant)
        return self._written(owner, fields)

    async def _deliver(
        self, owner: Owner, fields: SecretRecord, material: Material, *, replacing: Body | None = None
    ) -> None:
        """Write the tenant's Secret: create it, or replace the one credop owns.

        ``replacing`` is the tenant's Secret as read before this rotation: it is
        replaced, never created again, so a Secret collected with its owner since
        (the credential deleted meanwhile) is not brought back for a moment.
        """
        body = tenant_secret_body(
            owner,
            fields.name,
            material,
            generation=fields.generation,
            minted_at=fields.minted_at,
            request=fields.request,
        )
        if replacing is not None:
            existing = replacing
        else:
            try:
                await self._kube.create_secret(owner.namespace, body)
                return
            except ConflictError:
                existing = await self._kube.read_secret(owner.namespace, fields.name)
        if not owned_by(existing, owner):
            raise SecretConflictError(f'Secret "{fields.name}" already exists and is not owned by this {owner.kind}')
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        try:
            await self._kube.replace_secret(owner.namespace, fields.name, body)
        except (NotFoundError, ConflictError) as changed:
            if replacing is None:
                raise  # the reconcile tries again later: a tenant rewriting its Secret cannot make this spin
            if isinstance(changed, NotFoundError):
                await self._require_owner(owner)  # gone with its owner: nothing to deliver
            await self._deliver(owner, fields, material)  # deleted or changed since it was read: once more

    async def _tenant_secret(self, owner: Owner, secret_name: str) -> Body | None:
        """The tenant's Secret if it exists and is this credential's; raises when another owns the name."""
        try:
            secret = await self._kube.read_secret(owner.namespace, secret_name)
        except NotFoundError:
            return None
        if not owned_by(secret, owner):
            raise SecretConflictError(f'Secret "{secret_name}" already exists and is not owned by this {owner.kind}')
        return secret

    async def _require_owner(self, owner: Owner) -> None:
        """Before re-minting a missing Secret: is it missing because its owner was deleted (and collected)?"""
        try:
            current = await self._kube.get_object(names.PLURAL_OF_KIND[owner.kind], owner.namespace, owner.name)
        except NotFoundError:
            raise OwnerGoneError(owner.name) from None
        if current["metadata"].get("uid") != owner.uid or current["metadata"].get("deletionTimestamp"):
            raise OwnerGoneError(owner.name)

    def _written(self, owner: Owner, record: SecretRecord) -> SecretRecord:
        self._on_written(owner, record)
        return record

    async def retire_previous(self, owner: Owner) -> None:
        """Drop the previous secret's verifier once its grace period is over."""
        patch = {
            "metadata": {"annotations": {names.PREVIOUS_VALID_UNTIL: None}},
            "data": {names.PREVIOUS_VERIFIER: None},
        }
        try:
            await self._kube.patch_secret(self.namespace, names.record_name(owner.uid), patch)
        except NotFoundError:
            return

    async def change_identifier(self, owner: Owner, secret_name: str, *, identifier: str, data_key: str) -> None:
        """A new identifier for the same secret (an edited client ID): the record first, then the tenant's copy."""
        await self._kube.patch_secret(
            self.namespace,
            names.record_name(owner.uid),
            {"metadata": {"annotations": {names.IDENTIFIER_ANNOTATION: identifier}}},
        )
        encoded = base64.b64encode(identifier.encode()).decode()
        try:
            await self._kube.patch_secret(
                owner.namespace,
                secret_name,
                {"metadata": {"annotations": {names.CLIENT_ID_ANNOTATION: identifier}}, "data": {data_key: encoded}},
            )
        except NotFoundError:
            return

    async def forget(self, owner_uid: str) -> None:
        """Delete a deleted credential's record (its verifiers go with it)."""
        try:
            await self._kube.delete_secret(self.namespace, names.record_name(owner_uid))
        except NotFoundError:
            return

    async def migrate(self, owner: Owner, recorded: SecretRecord, *, max_grace: datetime.timedelta) -> bool:
        """Record a credential minted before records existed, once, from the Secret credop wrote and owns.

        The identifier, generation and request come from status (credop's own
        writing); only the verifiers are copied, and only when their parameters are
        credop's. Returns whether a record now exists.
        """
        tenant = await self._tenant_secret(owner, recorded.name)
        verifier = data_value(tenant, names.VERIFIER) if tenant is not None else None
        if verifier is None or not is_acceptable_verifier(verifier):
            logger.warning("%s %s/%s: no acceptable verifier to migrate", owner.kind, owner.namespace, owner.name)
            return False
        previous = data_value(tenant, names.PREVIOUS_VERIFIER) if tenant is not None else None
        until = recorded.previous_valid_until
        if until is not None:
            until = min(until, recorded.minted_at + max_grace)
        if previous is not None and not is_acceptable_verifier(previous):
            previous = None
        fields = replace(recorded, previous_valid_until=until if previous else None)
        with contextlib.suppress(ConflictError):  # recorded already, by a replica or a run before this one
            await self._kube.create_secret(
                self.namespace,
                record_body(self.namespace, owner, fields, verifier=verifier, previous_verifier=previous),
            )
        self._written(owner, fields)
        await self._strip_verifiers(owner, recorded.name)
        return True

    async def _strip_verifiers(self, owner: Owner, secret_name: str) -> None:
        """The tenant's Secret no longer carries verifiers once the record holds them."""
        patch = {
            "metadata": {"annotations": {names.PREVIOUS_VALID_UNTIL: None}},
            "data": {names.VERIFIER: None, names.PREVIOUS_VERIFIER: None},
        }
        try:
            await self._kube.patch_secret(owner.namespace, secret_name, patch)
        except NotFoundError:
            return
