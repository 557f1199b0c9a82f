"""The operator's store: what it wrote wins over a status that lags behind."""

from __future__ import annotations

import datetime

from credop.controller.material import Owner, SecretRecord
from credop.controller.store import ObjectRef, Store

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
OWNER = Owner(kind="ServiceAccountKey", name="k", namespace="ns", uid="uid-1")


def record(generation: int, request: str | None = None) -> SecretRecord:
    return SecretRecord("k", "crak_x", generation, T0 + datetime.timedelta(minutes=generation), request)


def test_a_write_not_yet_in_status_is_used() -> None:
    store = Store()
    store.note_written(OWNER, record(1))
    assert store.latest_record("uid-1", None) == record(1)
    assert store.secret_exists("ns", "k")


def test_status_wins_when_it_is_as_new_or_newer() -> None:
    store = Store()
    store.note_written(OWNER, record(2, "manual:a"))
    assert store.latest_record("uid-1", record(1)) == record(2, "manual:a")
    assert store.latest_record("uid-1", record(2, "manual:a")) == record(2, "manual:a")
    assert store.latest_record("uid-1", record(3)) == record(3)


def test_an_older_write_does_not_replace_a_newer_one() -> None:
    store = Store()
    store.note_written(OWNER, record(3))
    store.note_written(OWNER, record(2))
    assert store.latest_record("uid-1", None) == record(3)


def test_forgetting_the_credential_forgets_its_writes() -> None:
    store = Store()
    ref = ObjectRef("serviceaccountkeys", "ns", "k")
    store.remember(ref, {"metadata": {"name": "k", "namespace": "ns", "uid": "uid-1", "managedFields": [{}]}})
    kept = store.body(ref)
    assert kept is not None
    assert "managedFields" not in kept["metadata"]
    kept["metadata"]["name"] = "changed"
    assert store.body(ref)["metadata"]["name"] == "k", "callers get a copy"  # type: ignore[index]
    store.note_written(OWNER, record(1))
    store.forget(ref)
    assert store.latest_record("uid-1", None) is None
