"""Writing credential Secrets exactly once, and reading back what was written.

The Secret's name is deterministic, so a create that meets 409 means "already
minted": credop adopts the Secret it owns (by ownerReference uid) and never
mints again. A rotation records its request in the Secret's annotations, so a
retry after a crash finds the rotation done instead of rotating twice.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from credop import names
from credop.controller.material import Material, Owner, secret_body
from credop.domain.conditions import parse_timestamp
from credop.kube.client import ConflictError, Kube, NotFoundError

Body = dict[str, Any]


class OwnerGoneError(LookupError):
    """The credential was deleted while credop was working on it: nothing to mint."""


class SecretConflictError(RuntimeError):
    """A Secret of that name exists and belongs to something else; credop will not overwrite it."""


@dataclass(frozen=True)
class SecretRecord:
    """What credop wrote into a Secret's annotations: no secret values."""

    name: str
    identifier: str
    generation: int
    minted_at: datetime.datetime
    request: str | None = None
    previous_valid_until: datetime.datetime | None = None
    adopted: bool = False
    """Found already written (a retry after a crash), not written by this call."""


def record_of(secret: Body) -> SecretRecord:
    """The bookkeeping annotations of a Secret credop wrote; tolerant of hand-edited values."""
    meta = secret["metadata"]
    annotations = meta.get("annotations") or {}
    identifier = annotations.get(names.ACCESS_KEY_ID_ANNOTATION) or annotations.get(names.CLIENT_ID_ANNOTATION, "")
    minted_at = _timestamp_or_none(annotations.get(names.MINTED_AT)) or parse_timestamp(meta.get("creationTimestamp"))
    assert minted_at is not None
    generation = annotations.get(names.KEY_GENERATION, "1")
    return SecretRecord(
        name=meta["name"],
        identifier=identifier,
        generation=int(generation) if generation.isdigit() and int(generation) > 0 else 1,
        minted_at=minted_at,
        request=annotations.get(names.ROTATION_REQUEST),
        previous_valid_until=_timestamp_or_none(annotations.get(names.PREVIOUS_VALID_UNTIL)),
    )


def _timestamp_or_none(text: str | None) -> datetime.datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def owned_by(secret: Body, owner: Owner) -> bool:
    return any(ref.get("uid") == owner.uid for ref in secret["metadata"].get("ownerReferences") or [])


def data_value(secret: Body, key: str) -> str | None:
    raw = (secret.get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw is not None else None


class CredentialSecrets:
    """Mint, rotate and retire credential Secrets; tells ``on_written`` what each Secret now holds."""

    def __init__(self, kube: Kube, *, on_written: Callable[[Owner, SecretRecord], None]) -> None:
        self._kube = kube
        self._on_written = on_written

    async def mint(
        self,
        owner: Owner,
        secret_name: str,
        material: Material,
        *,
        now: datetime.datetime,
        generation: int = 1,
        request: str | None = None,
    ) -> SecretRecord:
        """Create the Secret; when it exists already and is ours, adopt it as it is."""
        body = secret_body(owner, secret_name, material, generation=generation, minted_at=now, request=request)
        try:
            created = await self._kube.create_secret(owner.namespace, body)
        except ConflictError:
            existing = await self._kube.read_secret(owner.namespace, secret_name)
            if not owned_by(existing, owner):
                raise SecretConflictError(
                    f'Secret "{secret_name}" already exists and is not owned by this {owner.kind}'
                ) from None
            return self._written(owner, replace(record_of(existing), adopted=True))
        return self._written(owner, record_of(created))

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
        """Replace the secret (once per ``request``), keeping the old verifier for ``grace`` when given."""
        try:
            existing = await self._kube.read_secret(owner.namespace, secret_name)
        except NotFoundError:
            await self._require_owner(owner)
            return await self.mint(
                owner, secret_name, make_material(None), now=now, generation=generation + 1, request=request
            )
        if not owned_by(existing, owner):
            raise SecretConflictError(f'Secret "{secret_name}" is not owned by this {owner.kind}')
        record = record_of(existing)
        if record.request == request:
            return self._written(owner, replace(record, adopted=True))
        material = make_material(record.identifier or None)
        keep_previous = grace > datetime.timedelta(0)
        body = secret_body(
            owner,
            secret_name,
            material,
            generation=max(record.generation, generation) + 1,
            minted_at=now,
            request=request,
            previous_verifier=data_value(existing, names.VERIFIER) if keep_previous else None,
            previous_valid_until=now + grace if keep_previous else None,
        )
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        replaced = await self._kube.replace_secret(owner.namespace, secret_name, body)
        return self._written(owner, record_of(replaced))

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

    async def retire_previous(self, owner: Owner, secret_name: str) -> None:
        """Drop the previous secret's verifier once its grace period is over."""
        patch = {
            "metadata": {"annotations": {names.PREVIOUS_VALID_UNTIL: None}},
            "data": {names.PREVIOUS_VERIFIER: None},
        }
        try:
            await self._kube.patch_secret(owner.namespace, secret_name, patch)
        except NotFoundError:
            return

    async def update_data(
        self, owner: Owner, secret_name: str, values: dict[str, str], annotations: dict[str, str]
    ) -> None:
        """Change non-secret values in place (e.g. an edited client ID)."""
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
        await self._kube.patch_secret(
            owner.namespace, secret_name, {"metadata": {"annotations": annotations}, "data": encoded}
        )
