"""The resync's orphaned-record sweep outlives an API server that is away (the chaos test's outage)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from credop.config import Config
from credop.controller.runtime import Runtime
from credop.controller.store import ObjectRef, RecordInfo
from credop.kube.client import KubeApiError, NotFoundError


class AwayThenBack:
    """A Kubernetes API that fails ``failures`` lookups, then knows no credential; records deleted are noted."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.deleted: list[str] = []
        self.listings = 0

    async def list_object_uids(self, plural: str) -> set[str]:
        self.listings += 1
        if self.failures:
            self.failures -= 1
            raise KubeApiError(503, "Service Unavailable")
        return set()

    async def get_object(self, plural: str, namespace: str, name: str) -> Any:
        if self.failures:
            self.failures -= 1
            raise KubeApiError(503, "Service Unavailable")
        raise NotFoundError(name)

    async def delete_secret(self, namespace: str, name: str) -> Any:
        self.deleted.append(name)
        return {}


def runtime_with_orphans(kube: AwayThenBack, *, resync: float = 600.0) -> Runtime:
    config = Config(namespace="credop-system", resync_interval=resync)
    runtime = Runtime(config=config, kube=kube)  # type: ignore[arg-type]
    runtime.reconcilers = {"serviceaccountkeys": lambda *_: None}  # type: ignore[dict-item]
    for uid in ("uid-1", "uid-2"):
        runtime.store.note_record(uid, RecordInfo(f"team-a/{uid}"))
    return runtime


async def test_a_failed_lookup_leaves_that_record_for_next_time_and_sweeps_the_rest() -> None:
    kube = AwayThenBack(failures=1)
    runtime = runtime_with_orphans(kube)
    assert await runtime.forget_orphaned_records() == 1
    assert len(runtime.store.records) == 1
    assert await runtime.forget_orphaned_records() == 1
    assert runtime.store.records == {} and len(kube.deleted) == 2


async def test_the_resync_loop_goes_on_after_an_outage() -> None:
    kube = AwayThenBack(failures=4)
    runtime = runtime_with_orphans(kube, resync=0.01)
    task = asyncio.create_task(runtime._resync())
    try:
        async with asyncio.timeout(5):
            while runtime.store.records:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert sorted(kube.deleted) == ["credop-record-uid-1", "credop-record-uid-2"]


class ListsOnly:
    """A Kubernetes API that lists ``existing`` uids and answers reads from ``bodies``; records deleted are noted."""

    def __init__(self, existing: set[str], bodies: dict[str, dict[str, Any]]) -> None:
        self.existing, self.bodies = existing, bodies
        self.deleted: list[str] = []
        self.listings = 0

    async def list_object_uids(self, plural: str) -> set[str]:
        self.listings += 1
        return self.existing

    async def get_object(self, plural: str, namespace: str, name: str) -> Any:
        if name not in self.bodies:
            raise NotFoundError(name)
        return self.bodies[name]

    async def delete_secret(self, namespace: str, name: str) -> Any:
        self.deleted.append(name)
        return {}


def key_body(name: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team-a", "uid": uid, "resourceVersion": "1"}}


async def test_a_credential_whose_deletion_no_watch_reported_is_forgotten_with_its_record() -> None:
    created_since = key_body("new", "uid-new")  # missing from the listing, but there when read
    kube = ListsOnly({"uid-kept"}, {"new": created_since})
    runtime = Runtime(config=Config(namespace="credop-system"), kube=kube)  # type: ignore[arg-type]
    runtime.reconcilers = {"serviceaccountkeys": lambda *_: None}  # type: ignore[dict-item]
    for name in ("kept", "gone", "new"):
        runtime.store.remember(ObjectRef("serviceaccountkeys", "team-a", name), key_body(name, f"uid-{name}"))
        runtime.store.note_record(f"uid-{name}", RecordInfo(f"team-a/{name}"))

    assert await runtime.forget_vanished_credentials() == 1

    assert sorted(ref.name for ref in runtime.store.refs()) == ["kept", "new"]
    assert kube.deleted == ["credop-record-uid-gone"] and "uid-gone" not in runtime.store.records


async def test_the_vanished_sweep_lists_after_a_watch_listed_again_or_an_hour() -> None:
    """Listing 100,000 credentials' metadata every resync cost a few % of a core for nothing: a watch that
    only resumes reports every deletion; one that lists again (after an outage) may hide one."""
    kube = ListsOnly(set(), {})
    now = [datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)]
    runtime = Runtime(config=Config(namespace="credop-system"), kube=kube, clock=lambda: now[0])  # type: ignore[arg-type]
    runtime.reconcilers = {"serviceaccountkeys": lambda *_: None}  # type: ignore[dict-item]
    await runtime.sweep_vanished_credentials()  # the first resync sweeps
    await runtime.sweep_vanished_credentials()
    assert kube.listings == 1
    runtime.note_listing()
    await runtime.sweep_vanished_credentials()
    assert kube.listings == 2
    now[0] += datetime.timedelta(minutes=59)
    await runtime.sweep_vanished_credentials()
    assert kube.listings == 2
    now[0] += datetime.timedelta(minutes=2)
    await runtime.sweep_vanished_credentials()
    assert kube.listings == 3


async def test_a_sweep_the_api_server_refused_is_tried_again_at_the_next_resync() -> None:
    kube = AwayThenBack(failures=0)
    runtime = runtime_with_orphans(kube)
    await runtime.sweep_vanished_credentials()
    runtime.note_listing()
    kube.failures = 1
    with pytest.raises(KubeApiError):
        await runtime.sweep_vanished_credentials()
    await runtime.sweep_vanished_credentials()
    assert kube.listings == 3
