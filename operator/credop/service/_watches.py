"""Keeping a replica's view current: list-then-watch loops on the Kubernetes API, one thread each.

Each loop lists its objects in pages, each listed object cut down in the
watch thread to what the state keeps (``Feed.trim``: at 100,000 credentials
the whole listing parsed at once was a peak of gigabytes the process kept),
and the view replaces what it had, so deletions missed while disconnected are
noticed; then it watches from that list's
resourceVersion, and lists again when the watch expires (410) or breaks. The
threads only read the API and parse JSON; every change is applied on the
event loop (``call_soon_threadsafe``), so the view is only ever touched from
one thread. Watch events arrive within milliseconds of the change, which is
how deactivation, invalidate-tokens and revocations reach every replica in
well under two seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

from credop import GROUP, VERSION, names
from credop.config import Config
from credop.domain.keyring import decode_keyring
from credop.kube.client import Kube
from credop.service._kube import REVOCATIONS_ROLE, TENANT_LABEL
from credop.service._records import (
    API_CLIENT,
    SERVICE_ACCOUNT_KEY,
    Kind,
    SecretMaterial,
    credential_of,
    material_of,
    record_owner_uid,
)
from credop.service._state import ServiceState

logger = logging.getLogger("credop.service.watch")
Body = dict[str, Any]
SERVER_TIMEOUT = 240
PAGE = 500
RETRY_DELAYS = (0.5, 30.0)
"""The first and the longest wait before listing again after a failure (doubling in between)."""


class WatchExpiredError(Exception):
    """The API server ended the watch with an ERROR event (e.g. 410 Gone): list again."""


def _whole(body: Body) -> Any:
    return body


@dataclass(frozen=True)
class Feed:
    """What one watch delivers to the state: a whole listing (each object trimmed), then single events."""

    name: str
    list_call: Callable[..., Any]
    args: tuple[Any, ...]
    selectors: Mapping[str, str]
    on_listing: Callable[[list[Any]], None]
    on_event: Callable[[str, Body], None]
    trim: Callable[[Body], Any] = _whole
    """What the state keeps of a listed object, made in the watch thread (a pure function)."""


class WatchLoop:
    """One :class:`Feed` kept current by a daemon thread until :meth:`stop`."""

    def __init__(self, feed: Feed, *, loop: asyncio.AbstractEventLoop, state: ServiceState) -> None:
        self.feed = feed
        self._loop = loop
        self._state = state
        self._stopping = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"credop-watch-{feed.name}", daemon=True)

    def start(self) -> None:
        self._state.unsynced.add(self.feed.name)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception as error:  # already closed
                logger.debug("closing the %s watch: %s", self.feed.name, error)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        delay = RETRY_DELAYS[0]
        while not self._stopping.is_set():
            try:
                version = self._list()
                delay = RETRY_DELAYS[0]
                self._watch(version)
            except WatchExpiredError:
                continue
            except Exception as error:
                if self._stopping.is_set():
                    break
                logger.warning(
                    "the %s watch failed (%s: %s); listing again in %.1f s",
                    self.feed.name,
                    type(error).__name__,
                    error,
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(RETRY_DELAYS[1], delay * 2)

    def _list(self) -> str:
        kept: list[Any] = []
        token: str | None = None
        while True:
            pages = {"limit": PAGE, **({"_continue": token} if token else {})}
            response = self.feed.list_call(*self.feed.args, _preload_content=False, **pages, **self.feed.selectors)
            listing = json.loads(response.data)
            kept.extend(self.feed.trim(item) for item in listing.get("items") or [])
            token = listing["metadata"].get("continue")
            if not token:
                break
        self._deliver(self._listed, kept)
        return str(listing["metadata"]["resourceVersion"])

    def _listed(self, items: list[Any]) -> None:
        self.feed.on_listing(items)
        self._state.unsynced.discard(self.feed.name)

    def _watch(self, version: str) -> None:
        while not self._stopping.is_set():
            response = self.feed.list_call(
                *self.feed.args,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=SERVER_TIMEOUT,
                _request_timeout=SERVER_TIMEOUT + 30,
                _preload_content=False,
                **self.feed.selectors,
            )
            self._response = response
            try:
                version = self._follow(response, version)
            finally:
                self._response = None
                response.release_conn()

    def _follow(self, response: Any, version: str) -> str:
        for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
            if not line:
                continue
            event = json.loads(line)
            kind, body = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise WatchExpiredError(str(body.get("message", "")))
            version = str(body.get("metadata", {}).get("resourceVersion", version))
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self._deliver(self.feed.on_event, kind, body)
        return version

    def _deliver(self, callback: Callable[..., None], *args: Any) -> None:
        def apply() -> None:
            try:
                callback(*args)
            except Exception:
                logger.exception("applying a %s change failed", self.feed.name)

        self._loop.call_soon_threadsafe(apply)


# The feeds ----------------------------------------------------------------------------------
def credential_feed(kube: Kube, state: ServiceState, kind: Kind) -> Feed:
    plural = names.PLURAL_OF_KIND[kind]

    def on_event(event: str, body: Body) -> None:
        if event == "DELETED":
            state.drop_object(body)
        else:
            state.put_object(kind, body)

    return Feed(
        name=plural,
        list_call=kube.custom.list_cluster_custom_object,
        args=(GROUP, VERSION, plural),
        selectors={},
        on_listing=lambda credentials: state.replace_credentials(kind, credentials),
        on_event=on_event,
        trim=lambda body: credential_of(kind, body),
    )


def policy_feed(kube: Kube, state: ServiceState) -> Feed:
    def on_event(event: str, body: Body) -> None:
        meta = body["metadata"]
        if event == "DELETED":
            state.view.drop_policy(meta["namespace"], meta["name"])
        else:
            state.view.put_policy(meta["namespace"], meta["name"], body.get("spec") or {})

    def on_listing(items: list[Body]) -> None:
        state.view.replace_policies(
            (item["metadata"]["namespace"], item["metadata"]["name"], item.get("spec") or {}) for item in items
        )

    return Feed(
        name=names.KEY_POLICIES,
        list_call=kube.custom.list_cluster_custom_object,
        args=(GROUP, VERSION, names.KEY_POLICIES),
        selectors={},
        on_listing=on_listing,
        on_event=on_event,
    )


def record_feed(kube: Kube, state: ServiceState, config: Config) -> Feed:
    """Verifiers from credop's records, in credop's own namespace only (tenants cannot write there)."""

    def on_event(event: str, body: Body) -> None:
        meta = body["metadata"]
        material = material_of(body) if event != "DELETED" else None
        if material is not None:
            state.put_material(str(meta.get("name")), material)
            return
        owner = record_owner_uid(meta)
        if owner is not None:
            state.view.drop_material(str(meta.get("name")), owner)

    def on_listing(found: list[tuple[str, SecretMaterial | None]]) -> None:
        state.view.replace_materials((key, material) for key, material in found if material is not None)

    return Feed(
        name="credential records",
        list_call=kube.core.list_namespaced_secret,
        args=(config.namespace,),
        selectors={"label_selector": names.RECORD_SELECTOR},
        on_listing=on_listing,
        on_event=on_event,
        trim=lambda item: (str(item["metadata"].get("name")), material_of(item)),
    )


def keyring_feed(kube: Kube, state: ServiceState, config: Config) -> Feed:
    """credop's own keys; a deleted keyring Secret keeps the keys already loaded (the operator re-creates it)."""

    def load(body: Body) -> None:
        state.set_keyring(decode_keyring(body.get("data") or {}))

    def on_event(event: str, body: Body) -> None:
        if event == "DELETED":
            logger.warning("the keyring Secret %s/%s was deleted", config.namespace, config.keys_secret)
        else:
            load(body)

    def on_listing(items: list[Body]) -> None:
        if items:
            load(items[0])

    return Feed(
        name="keyring",
        list_call=kube.core.list_namespaced_secret,
        args=(config.namespace,),
        selectors={"field_selector": f"metadata.name={config.keys_secret}"},
        on_listing=on_listing,
        on_event=on_event,
    )


def revocation_feed(kube: Kube, state: ServiceState, config: Config) -> Feed:
    """Every tenant's revocation list (a ConfigMap each, in credop's namespace)."""

    def tenant_of(body: Body) -> str:
        return str(((body.get("metadata") or {}).get("labels") or {}).get(TENANT_LABEL, ""))

    def on_event(event: str, body: Body) -> None:
        state.revoked.replace_shared(tenant_of(body), {} if event == "DELETED" else body.get("data") or {})

    def on_listing(items: list[Body]) -> None:
        state.revoked.replace_all({tenant_of(item): item.get("data") or {} for item in items})

    return Feed(
        name="revocations",
        list_call=kube.core.list_namespaced_config_map,
        args=(config.namespace,),
        selectors={"label_selector": f"credop.dev/role={REVOCATIONS_ROLE}"},
        on_listing=on_listing,
        on_event=on_event,
    )


def all_feeds(kube: Kube, state: ServiceState, config: Config) -> list[Feed]:
    return [
        keyring_feed(kube, state, config),
        revocation_feed(kube, state, config),
        policy_feed(kube, state),
        record_feed(kube, state, config),
        credential_feed(kube, state, API_CLIENT),
        credential_feed(kube, state, SERVICE_ACCOUNT_KEY),
    ]
