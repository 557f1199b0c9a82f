"""The service's only writes to the Kubernetes API: ``status.lastUsedAt`` and the revocations ConfigMap."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from credop import GROUP, VERSION, names
from credop.domain.conditions import timestamp
from credop.kube.client import MERGE_PATCH, Kube
from credop.service._records import Credential

logger = logging.getLogger("credop.service.kube")
JSON_PATCH = "application/json-patch+json"


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
            await asyncio.to_thread(
                self._kube.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                credential.namespace,
                credential.plural,
                credential.name,
                patch,
                _content_type=JSON_PATCH,
                _preload_content=False,
            )
        except ApiException as error:
            if error.status in (404, 409, 422):  # gone, or replaced by a namesake (the uid test failed)
                return False
            raise
        return True


class ConfigMapRevocations:
    """Revocations shared through one ConfigMap: ``data: {jti: expiry}``, merge-patched (no read-modify-write)."""

    def __init__(self, kube: Kube, *, namespace: str, name: str) -> None:
        self._kube = kube
        self.namespace = namespace
        self.name = name

    async def publish(self, jti: str, expires_at: int, *, prune: list[str]) -> None:
        data: dict[str, str | None] = {old: None for old in prune if old != jti}
        data[jti] = str(expires_at)
        await self._patch_or_create(data)

    async def prune(self, expired: list[str]) -> None:
        if expired:
            await self._patch_or_create(dict.fromkeys(expired))

    async def _patch_or_create(self, data: dict[str, str | None]) -> None:
        for _ in range(3):
            try:
                await self._call(
                    self._kube.core.patch_namespaced_config_map,
                    self.name,
                    self.namespace,
                    {"data": data},
                    _content_type=MERGE_PATCH,
                )
                return
            except ApiException as error:
                if error.status != 404:
                    raise
            body = {
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE, "credop.dev/role": "revocations"},
                },
                "data": {key: value for key, value in data.items() if value is not None},
            }
            try:
                await self._call(self._kube.core.create_namespaced_config_map, self.namespace, body)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
        raise RuntimeError("the revocations ConfigMap kept changing")

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> None:
        await asyncio.to_thread(method, *args, _preload_content=False, **kwargs)
