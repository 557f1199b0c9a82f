"""The CLI's connection to the API server, kubectl-style: --kubeconfig, --context, -n/--namespace.

Every call returns plain JSON dicts and turns API errors into one-line
:class:`CliError` messages that name the object and what went wrong.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from credop import GROUP, VERSION
from credop.cli.errors import CliError
from credop.cli.kinds import KindInfo, Target
from credop.kube.client import in_cluster, load_configuration

Body = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT_S = 30
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class NotFoundError(CliError):
    """The object does not exist (a CliError: "X not found" is the whole message)."""


@dataclass(frozen=True)
class ConnectionOptions:
    """The kubectl-style flags that say which cluster, user and namespace to use."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


def _in_cluster(options: ConnectionOptions) -> bool:
    return in_cluster(options.kubeconfig or None)


def _load_configuration(options: ConnectionOptions) -> kubernetes.client.Configuration:
    if options.kubeconfig and not Path(options.kubeconfig).is_file():
        raise CliError(f"cannot load the kubeconfig: {options.kubeconfig} does not exist")
    try:
        return load_configuration(options.kubeconfig or None, context=options.context)
    except (ConfigException, OSError) as error:
        raise CliError(f"cannot load the kubeconfig: {error}") from None


def _default_namespace(options: ConnectionOptions) -> str:
    """The namespace of the chosen (or current) kubeconfig context, else ``default``."""
    if _in_cluster(options):
        with contextlib.suppress(OSError):
            return IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
        return "default"
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=options.kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c["name"] == options.context), current) if options.context else current
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


class Session:
    """Calls the CLI makes, in one namespace (or all of them for listings)."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.configuration = _load_configuration(options)
        self.namespace = options.namespace or _default_namespace(options)
        self.api = kubernetes.client.ApiClient(self.configuration)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.core = kubernetes.client.CoreV1Api(self.api)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self, target: Target) -> str:
        return f'{target.kind.kind} "{target.name}" in namespace "{self.namespace}"'

    # Custom resources ------------------------------------------------------------------------
    def get(self, target: Target) -> Body:
        with self.errors("read", self.describe(target)):
            return _json(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, target.kind.plural, target.name, **_raw()
                )
            )

    def list(self, kind: KindInfo, *, all_namespaces: bool = False) -> list[Body]:
        where = "all namespaces" if all_namespaces else f'namespace "{self.namespace}"'
        with self.errors("list", f"{kind.kind}s in {where}", listing=kind):
            if all_namespaces:
                listing = self.custom.list_cluster_custom_object(GROUP, VERSION, kind.plural, **_raw())
            else:
                listing = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, kind.plural, **_raw()
                )
        items = list(_json(listing).get("items", []))
        for item in items:
            item.setdefault("kind", kind.kind)
        return items

    def patch(self, target: Target, patch: Body) -> Body:
        """A JSON merge patch of the object (metadata and spec; never status)."""
        with self.errors("update", self.describe(target)):
            return _json(
                self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    target.kind.plural,
                    target.name,
                    patch,
                    _content_type=MERGE_PATCH,
                    **_raw(),
                )
            )

    def create(self, target: Target, body: Body) -> Body:
        with self.errors("create", self.describe(target)):
            return _json(
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, target.kind.plural, body, **_raw()
                )
            )

    def delete(self, target: Target) -> None:
        with self.errors("delete", self.describe(target)):
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, target.kind.plural, target.name, **_raw()
            )

    # Secrets ---------------------------------------------------------------------------------
    def read_secret_data(self, name: str, *, purpose: str) -> dict[str, str] | None:
        """The decoded data of Secret ``name``; ``None`` when it does not exist."""
        what = f'Secret "{name}" in namespace "{self.namespace}" ({purpose})'
        try:
            with self.errors("read", what):
                secret = _json(self.core.read_namespaced_secret(name, self.namespace, **_raw()))
        except NotFoundError:
            return None
        return {
            key: base64.b64decode(value).decode(errors="replace") for key, value in (secret.get("data") or {}).items()
        }

    def read_secret(self, name: str, *, purpose: str) -> Body | None:
        """Secret ``name`` as the API returns it (data base64-encoded); ``None`` when it does not exist."""
        try:
            with self.errors("read", f'Secret "{name}" in namespace "{self.namespace}" ({purpose})'):
                return _json(self.core.read_namespaced_secret(name, self.namespace, **_raw()))
        except NotFoundError:
            return None

    def create_secret(self, body: Body) -> Body:
        with self.errors("create", f'Secret "{body["metadata"]["name"]}" in namespace "{self.namespace}"'):
            return _json(self.core.create_namespaced_secret(self.namespace, cast(Any, body), **_raw()))

    def replace_secret(self, name: str, body: Body) -> Body:
        with self.errors("update", f'Secret "{name}" in namespace "{self.namespace}"'):
            return _json(self.core.replace_namespaced_secret(name, self.namespace, cast(Any, body), **_raw()))

    # Errors ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def errors(self, verb: str, what: str, *, listing: KindInfo | None = None) -> Iterator[None]:
        """Turn API and connection errors inside the block into one-line CliErrors."""
        try:
            yield
        except ApiException as error:
            if error.status == 404 and listing is not None:
                raise CliError(
                    f"the {GROUP} API has no {listing.plural} on this cluster: are credop's CRDs installed?"
                ) from None
            if error.status == 404:
                raise NotFoundError(f"{what} not found") from None
            raise CliError(self._api_failure(verb, what, error)) from None
        except urllib3.exceptions.HTTPError as error:
            raise CliError(self._unreachable(error)) from None

    def _api_failure(self, verb: str, what: str, error: ApiException) -> str:
        message = _api_message(error)
        if error.status == 401:
            return f"cannot {verb} {what}: the API server did not accept the kubeconfig's credentials ({message})"
        if "admission webhook" in message or "AdmissionPolicy" in message:
            return f"cannot {verb} {what}: denied by admission: {message}"
        if error.status == 403:
            return f"cannot {verb} {what}: forbidden by RBAC: {message}"
        return f"cannot {verb} {what}: {message} (HTTP {error.status})"

    def _unreachable(self, error: urllib3.exceptions.HTTPError) -> str:
        reason = getattr(error, "reason", None) or error
        return f"cannot reach the API server at {self.configuration.host}: {reason}"


def _raw() -> dict[str, Any]:
    return {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT_S}


def _json(response: Any) -> Body:
    data = response.data
    return json.loads(data) if data else {}


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (TypeError, ValueError, AttributeError):
        return str(error.reason)
