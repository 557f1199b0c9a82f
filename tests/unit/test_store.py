"""The operator's store: what it wrote wins over a status that lags behind."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

from credop.controller.keys import _unused_access_key_id
from credop.controller.material import Owner, SecretRecord
from credop.controller.store import ObjectRef, RecordInfo, Store
from credop.domain import keyformat

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


def test_identifiers_of_records_are_known_until_the_record_goes() -> None:
    store = Store()
    store.note_record("uid-1", RecordInfo.of({"credop.dev/owner": "ns/k", "credop.dev/identifier": "crak_a"}))
    assert store.identifier_taken("crak_a", by_other_than="uid-2")
    assert not store.identifier_taken("crak_a", by_other_than="uid-1")
    assert not store.identifier_taken("crak_b", by_other_than="uid-2")
    store.note_record("uid-1", RecordInfo("ns/k", (), "crak_b"))
    assert not store.identifier_taken("crak_a", by_other_than="uid-2")
    assert store.identifier_taken("crak_b", by_other_than="uid-2")
    store.forget_record("uid-1")
    assert not store.identifier_taken("crak_b", by_other_than="uid-2")


def test_a_write_makes_its_identifier_known() -> None:
    store = Store()
    store.note_written(OWNER, record(1))
    assert store.identifier_taken("crak_x", by_other_than="uid-2")


def test_a_mint_draws_again_when_the_access_key_id_is_held_by_another_key() -> None:
    store = Store()
    draws = iter([bytes(32), bytes(32), bytes([1]) * 32])

    def random_bytes(count: int) -> bytes:
        return next(draws)[:count]

    taken = keyformat.new_access_key_id(lambda count: bytes(count))
    store.note_record("uid-other", RecordInfo("ns/other", (), taken))
    runtime = SimpleNamespace(store=store, random_bytes=random_bytes)
    fresh = _unused_access_key_id(runtime, "uid-1")  # type: ignore[arg-type]
    assert fresh != taken and fresh == keyformat.new_access_key_id(lambda count: bytes([1]) * count)
