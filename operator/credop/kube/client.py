"""An asyncio face on the synchronous `kubernetes` client: JSON dicts in, JSON dicts out.

Calls run in a dedicated thread pool and skip the client's model
deserialisation (``_preload_content=False``), which is most of its cost.
Only the verbs credop needs are here, so RBAC and tests can see them all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.exceptions import ApiException

from credop import GROUP, VERSION

T = TypeVar("T")
Body = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class NotFoundError(LookupError):
    """The object does not exist."""


class ConflictError(RuntimeError):
    """The object exists already, or changed since it was read."""


class KubeApiError(RuntimeError):
    """Any other refusal by the API server: its status code and reason only.

    Never the response body: a refused Secret write may echo what was sent.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"the Kubernetes API answered {status} {reason}")
        self.status = status
        self.reason = reason


def in_cluster(kubeconfig: str | Path | None = None) -> bool:
    """Whether to use the pod's ServiceAccount: in a pod, with no kubeconfig named or in ``$KUBECONFIG``."""
    return kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def load_configuration(
    kubeconfig: str | Path | None = None, *, context: str | None = None
) -> kubernetes.client.Configuration:
    """In-cluster configuration in a pod, else the kubeconfig (argument, $KUBECONFIG or ~/.kube/config)."""
    configuration = kubernetes.client.Configuration()
    if in_cluster(kubeconfig):
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        path = str(kubeconfig) if kubeconfig else None
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = 64
    return configuration


class Kube:
    """The API calls credop makes, as coroutines returning JSON dicts."""

    def __init__(self, configuration: kubernetes.client.Configuration, *, threads: int = 32) -> None:
        self.configuration = configuration
        self.api = kubernetes.client.ApiClient(configuration)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.coordination = kubernetes.client.CoordinationV1Api(self.api)
        self.admissionregistration = kubernetes.client.AdmissionregistrationV1Api(self.api)
        self.authorization = kubernetes.client.AuthorizationV1Api(self.api)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.api.close()  # type: ignore[no-untyped-call]

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Body:
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(self._pool, functools.partial(_fetch, method, *args, **kwargs))
        except ApiException as error:
            raise _translated(error) from None
        return json.loads(data) if data else {}

    # Custom resources -----------------------------------------------------------------------
    async def get_object(self, plural: str, namespace: str, name: str) -> Body:
        return await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name)

    async def create_object(self, plural: str, namespace: str, body: Body) -> Body:
        return await self._call(self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, body)

    async def list_objects(self, plural: str, namespace: str) -> list[Body]:
        listing = await self._call(self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural)
        return list(listing.get("items") or [])

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Body) -> Body:
        """A JSON merge patch of ``.status`` (the status subresource; never the spec)."""
        return await self._call(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            patch,
            _content_type=MERGE_PATCH,
        )

    async def list_all_objects(self, plural: str) -> list[Body]:
        listing = await self._call(self.custom.list_cluster_custom_object, GROUP, VERSION, plural)
        return list(listing.get("items") or [])

    async def list_object_uids(self, plural: str, *, page: int = 1000) -> set[str]:
        """The uids of every object of ``plural`` in the cluster: metadata only, in pages."""
        uids: set[str] = set()
        token: str | None = None
        while True:
            pages = {"limit": page, **({"_continue": token} if token else {})}
            listing = await self._call(
                self.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                plural,
                _headers={"Accept": PARTIAL_METADATA},
                **pages,
            )
            uids.update(str(item["metadata"].get("uid")) for item in listing.get("items") or [])
            token = (listing.get("metadata") or {}).get("continue")
            if not token:
                return uids

    # Secrets -------------------------------------------------------------------------------
    async def create_secret(self, namespace: str, body: Body) -> Body:
        return await self._call(self.core.create_namespaced_secret, namespace, body)

    async def read_secret(self, namespace: str, name: str) -> Body:
        return await self._call(self.core.read_namespaced_secret, name, namespace)

    async def replace_secret(self, namespace: str, name: str, body: Body) -> Body:
        """A full update, guarded by the body's metadata.resourceVersion."""
        return await self._call(self.core.replace_namespaced_secret, name, namespace, body)

    async def patch_secret(self, namespace: str, name: str, patch: Body) -> Body:
        return await self._call(self.core.patch_namespaced_secret, name, namespace, patch, _content_type=MERGE_PATCH)

    async def delete_secret(self, namespace: str, name: str) -> Body:
        return await self._call(self.core.delete_namespaced_secret, name, namespace)

    async def secret_metadata_pages(self, label_selector: str, *, page: int = 500) -> AsyncIterator[list[Body]]:
        """Names, labels, annotations and owners of matching Secrets in every namespace (never their data),
        a page at a time: 200,000 at once would be some 600 MB of parsed metadata at startup, whose
        freed memory the process keeps."""
        token: str | None = None
        while True:
            listing = await self._call(
                self.core.list_secret_for_all_namespaces,
                label_selector=label_selector,
                limit=page,
                _headers={"Accept": PARTIAL_METADATA},
                **({"_continue": token} if token else {}),
            )
            yield list(listing.get("items") or [])
            token = (listing.get("metadata") or {}).get("continue")
            if not token:
                return

    async def json_patch_status(self, plural: str, namespace: str, name: str, patch: list[Body]) -> Body:
        """A JSON patch (RFC 6902) of ``.status``; its ``test`` steps make it conditional."""
        return await self._call(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            patch,
            _content_type=JSON_PATCH,
        )

    # ConfigMaps (the credential service's shared revocation lists) -------------------------------
    async def patch_config_map(self, namespace: str, name: str, patch: Body) -> Body:
        return await self._call(
            self.core.patch_namespaced_config_map, name, namespace, patch, _content_type=MERGE_PATCH
        )

    async def create_config_map(self, namespace: str, body: Body) -> Body:
        return await self._call(self.core.create_namespaced_config_map, namespace, body)

    async def read_config_map(self, namespace: str, name: str) -> Body:
        return await self._call(self.core.read_namespaced_config_map, name, namespace)

    async def replace_config_map(self, namespace: str, name: str, body: Body) -> Body:
        """A full update, guarded by the body's metadata.resourceVersion (ConflictError when it moved)."""
        return await self._call(self.core.replace_namespaced_config_map, name, namespace, body)

    # Leases (leader election) ---------------------------------------------------------------
    async def read_lease(self, namespace: str, name: str) -> Body:
        return await self._call(self.coordination.read_namespaced_lease, name, namespace)

    async def create_lease(self, namespace: str, body: Body) -> Body:
        return await self._call(self.coordination.create_namespaced_lease, namespace, body)

    async def replace_lease(self, namespace: str, name: str, body: Body) -> Body:
        return await self._call(self.coordination.replace_namespaced_lease, name, namespace, body)

    # Admission webhooks: the namespace of a DELETE, credop's own webhook configurations ---------
    async def read_namespace(self, name: str) -> Body:
        return await self._call(self.core.read_namespace, name)

    async def read_webhook_configuration(self, kind: str, name: str) -> Body:
        """``kind`` is ``validating`` or ``mutating``."""
        method = {
            "validating": self.admissionregistration.read_validating_webhook_configuration,
            "mutating": self.admissionregistration.read_mutating_webhook_configuration,
        }[kind]
        return await self._call(method, name)

    async def patch_webhook_configuration(self, kind: str, name: str, patch: Body) -> Body:
        """A strategic merge patch (``webhooks`` merge by name) of a webhook configuration."""
        method = {
            "validating": self.admissionregistration.patch_validating_webhook_configuration,
            "mutating": self.admissionregistration.patch_mutating_webhook_configuration,
        }[kind]
        return await self._call(method, name, patch, _content_type=STRATEGIC_MERGE_PATCH)

    async def create_subject_access_review(self, body: Body) -> Body:
        """Ask the API server's authorizer whether a user may do something (admission's on-behalf-of checks)."""
        return await self._call(self.authorization.create_subject_access_review, body)

    # Events and workloads ------------------------------------------------------------------
    async def create_event(self, namespace: str, body: Body) -> Body:
        return await self._call(self.core.create_namespaced_event, namespace, body)

    async def patch_workload(self, kind: str, namespace: str, name: str, patch: Body) -> Body:
        method = {
            "Deployment": self.apps.patch_namespaced_deployment,
            "StatefulSet": self.apps.patch_namespaced_stateful_set,
            "DaemonSet": self.apps.patch_namespaced_daemon_set,
        }[kind]
        return await self._call(method, name, namespace, patch, _content_type=MERGE_PATCH)


def _fetch(method: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
    """In a worker thread: the call, its whole body read, and the connection back in the pool.

    Reading the body in the same thread matters: a body read later (in the event
    loop) would block the loop and keep the connection out of the pool while the
    thread starts its next request on a new, freshly TLS-handshaken one.
    """
    response = method(*args, _preload_content=False, **kwargs)
    try:
        return bytes(response.data or b"")
    finally:
        response.release_conn()


def _translated(error: ApiException) -> Exception:
    message = _api_message(error)
    if error.status == 404:
        return NotFoundError(message)
    if error.status == 409:
        return ConflictError(message)
    return KubeApiError(int(error.status or 0), str(error.reason or ""))


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message", error.reason))
    except (TypeError, ValueError):
        return str(error.reason)
