"""The service's only writes to the Kubernetes API: ``status.lastUsedAt`` and the revocation lists."""

from __future__ import annotations

import datetime
import logging

from credop import names
from credop.domain.conditions import timestamp
from credop.kube.client import ConflictError, Kube, KubeApiError, NotFoundError
from credop.service._records import Credential
from credop.service._revocations import config_map_name

logger = logging.getLogger("credop.service.kube")
REVOCATIONS_ROLE = "revocations"
TENANT_LABEL = "credop.dev/tenant"


class StatusUsageWriter:
    """``lastUsedAt`` by a JSON patch of the status subresource whose first step tests the object's uid.

    (A merge patch cannot carry that precondition: the status subresource ignores
    metadata in it, so a same-named successor of a deleted credential would be written.)
    """

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    async def write(self, credential: Credential, used_at: datetime.datetime) -> bool:
        patch = [
            {"op": "test", "path": "/metadata/uid", "value": credential.uid},
            {"op": "add", "path": "/status/lastUsedAt", "value": timestamp(used_at)},
        ]
        try:
            await self._kube.json_patch_status(credential.plural, credential.namespace, credential.name, patch)
        except (NotFoundError, ConflictError):
            return False
        except KubeApiError as error:
            if error.status == 422:  # replaced by a namesake: the uid test failed
                return False
            raise
        return True


class ConfigMapRevocations:
    """Revocations shared through a ConfigMap per tenant: ``data: {jti: expiry}``, merge-patched (no read-modify-write)."""

    def __init__(self, kube: Kube, *, namespace: str) -> None:
        self._kube = kube
        self.namespace = namespace

    async def publish(self, namespace: str, jti: str, expires_at: int, *, prune: list[str]) -> None:
        data: dict[str, str | None] = {old: None for old in prune if old != jti}
        data[jti] = str(expires_at)
        await self._patch_or_create(namespace, data)

    async def prune(self, namespace: str, expired: list[str]) -> None:
        if expired:
            await self._patch_or_create(namespace, dict.fromkeys(expired))

    async def _patch_or_create(self, tenant: str, data: dict[str, str | None]) -> None:
        name = config_map_name(tenant)
        for _ in range(3):
            try:
                await self._kube.patch_config_map(self.namespace, name, {"data": data})
                return
            except NotFoundError:
                pass
            labels = {
                names.MANAGED_BY: names.MANAGED_BY_VALUE,
                "credop.dev/role": REVOCATIONS_ROLE,
                TENANT_LABEL: tenant,
            }
            body = {
                "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
                "data": {key: value for key, value in data.items() if value is not None},
            }
            try:
                await self._kube.create_config_map(self.namespace, body)
                return
            except ConflictError:
                continue
        raise RuntimeError("the revocations ConfigMap kept changing")
