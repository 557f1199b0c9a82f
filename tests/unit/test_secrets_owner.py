"""A mint that finds its record already written never re-delivers a Secret whose owner is gone."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from credop.controller.material import Material, Owner, SecretRecord, record_body, tenant_secret_body
from credop.controller.secrets import CredentialSecrets, OwnerGoneError
from credop.kube.client import ConflictError, NotFoundError

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
OWNER = Owner(kind="ServiceAccountKey", name="ghost", namespace="team-a", uid="uid-ghost")


class RecordOnly:
    """credop's record of OWNER exists; its tenant Secret and OWNER itself are gone (collected with it)."""

    def __init__(self) -> None:
        recorded = SecretRecord("ghost", "crak_old", 1, NOW)
        self.record = record_body("credop-system", OWNER, recorded, verifier="hmac-sha256$k1$x")
        self.record["metadata"]["resourceVersion"] = "7"
        self.created: list[str] = []

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if namespace == "credop-system":
            raise ConflictError("exists")
        self.created.append(f"{namespace}/{body['metadata']['name']}")
        return body

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        if namespace == "credop-system":
            return self.record
        raise NotFoundError(name)

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        raise NotFoundError(name)

    async def replace_secret(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return body


async def test_a_resumed_mint_for_a_deleted_owner_delivers_nothing() -> None:
    kube = RecordOnly()
    secrets = CredentialSecrets(kube, namespace="credop-system", on_written=lambda *_: None)  # type: ignore[arg-type]
    material = Material("crak_new", "crsk_new", "hmac-sha256$k1$y", {"secretKey": "crsk_new"})
    with pytest.raises(OwnerGoneError):
        await secrets.mint(OWNER, "ghost", material, now=NOW)
    assert kube.created == []


class CollectedDuringRotation(RecordOnly):
    """OWNER's Secret is read, then collected with OWNER (deleted meanwhile) before the rotation delivers."""

    def __init__(self) -> None:
        super().__init__()
        recorded = SecretRecord("ghost", "crak_old", 1, NOW)
        material = Material("crak_old", "crsk_old", "hmac-sha256$k1$x", {"secretKey": "crsk_old"})
        self.tenant = tenant_secret_body(OWNER, "ghost", material, generation=1, minted_at=NOW, request=None)
        self.tenant["metadata"]["resourceVersion"] = "3"
        assert recorded.generation == 1

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        if namespace == "credop-system":
            return self.record
        return self.tenant

    async def replace_secret(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if namespace == "credop-system":
            return body
        raise NotFoundError(name)


async def rotate_ghost(kube: CollectedDuringRotation) -> None:
    """A manual rotation of the key ``ghost`` to new material, through ``kube``."""
    secrets = CredentialSecrets(kube, namespace="credop-system", on_written=lambda *_: None)  # type: ignore[arg-type]
    material = Material("crak_old", "crsk_new", "hmac-sha256$k1$y", {"secretKey": "crsk_new"})
    await secrets.rotate(
        OWNER,
        "ghost",
        request="manual:r1",
        make_material=lambda _identifier: material,
        now=NOW,
        grace=datetime.timedelta(0),
        generation=1,
    )


async def test_a_rotation_whose_secret_was_collected_meanwhile_creates_nothing() -> None:
    kube = CollectedDuringRotation()
    with pytest.raises(OwnerGoneError):
        await rotate_ghost(kube)
    assert kube.created == []


class RewrittenOnEveryWrite(CollectedDuringRotation):
    """The tenant rewrites its Secret between every read and write credop makes (each replace conflicts)."""

    def __init__(self) -> None:
        super().__init__()
        self.replaces = 0

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return {"metadata": {"uid": OWNER.uid}}

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        raise ConflictError("exists")  # the record and the tenant's Secret both exist

    async def replace_secret(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if namespace == "credop-system":
            return body
        self.replaces += 1
        raise ConflictError("changed")


async def test_a_secret_rewritten_on_every_write_is_left_to_a_later_reconcile() -> None:
    kube = RewrittenOnEveryWrite()
    with pytest.raises(ConflictError):
        await rotate_ghost(kube)
    assert kube.replaces == 2 and kube.created == []
