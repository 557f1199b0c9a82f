"""The periodic resync skips a credential only when a reconcile would read exactly what its last one read."""

from __future__ import annotations

import itertools
import zlib
from typing import Any

from credop.controller.store import EPOCH_BUCKETS, ObjectRef, Store

REF = ObjectRef("serviceaccountkeys", "team-a", "ci")
BUCKET_KEY = b"a key the tenant does not know"[:16]
"""Fixed, so which names share a bucket is the same in every run (credop draws its key per process)."""


def body(version: str) -> dict[str, Any]:
    return {"metadata": {"name": "ci", "namespace": "team-a", "uid": "u-1", "resourceVersion": version}}


def reconciled(store: Store, version: str) -> None:
    store.remember(REF, body(version))
    store.note_reconciled(REF, store.version(REF), store.epoch(REF))


def test_never_reconciled_counts_as_changed() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    store.remember(REF, body("1"))
    assert not store.unchanged_since_reconcile(REF)


def test_the_body_it_read_is_unchanged() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    assert store.unchanged_since_reconcile(REF)


def test_an_event_taken_in_but_not_handled_counts_as_changed() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    store.remember(REF, body("2"))
    assert not store.unchanged_since_reconcile(REF)


def test_credops_own_status_write_after_it_is_unchanged() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    store.note_own_write(REF, body("2"))
    store.remember(REF, body("2"))
    assert store.unchanged_since_reconcile(REF)
    store.remember(REF, body("3"))
    assert not store.unchanged_since_reconcile(REF)


def test_a_policy_in_its_namespace_and_the_keyring_count() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    store.touch("team-b")
    assert store.unchanged_since_reconcile(REF)
    store.touch("team-a")
    assert not store.unchanged_since_reconcile(REF)
    reconciled(store, "1")
    store.set_policy("team-a", "default", {})
    assert not store.unchanged_since_reconcile(REF)
    reconciled(store, "1")
    store.touch()
    assert not store.unchanged_since_reconcile(REF)


def test_its_own_secret_counts_and_another_credentials_secret_beside_it_does_not() -> None:
    """At 100,000 keys in one namespace, each Secret event used to make every key there count as changed."""
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    for other in range(1000):
        store.touch_secret("team-a", f"other-{other}")
    store.touch_secret("team-b", "ci")
    assert store.unchanged_since_reconcile(REF)
    store.touch_secret("team-a", "ci")
    assert not store.unchanged_since_reconcile(REF)


def test_the_secret_that_counts_is_the_one_spec_secret_name_names() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    named = body("1")
    named["spec"] = {"secretName": "ci-credentials"}
    store.remember(REF, named)
    store.note_reconciled(REF, store.version(REF), store.epoch(REF))
    store.touch_secret("team-a", "ci-credentials")
    assert not store.unchanged_since_reconcile(REF)


def crc32_bucket_mate(*, of: tuple[str, ...], namespace: str) -> str:
    """A Secret name in ``namespace`` whose bucket key has the same crc32 bucket as ``of``: what a tenant
    can compute without any secret of credop's."""
    aim = zlib.crc32("\0".join(of).encode()) % EPOCH_BUCKETS
    for index in itertools.count():
        name = f"noise-{index}"
        if zlib.crc32(f"secret\0{namespace}\0{name}".encode()) % EPOCH_BUCKETS == aim:
            return name
    raise AssertionError("unreachable")


def test_a_tenant_cannot_aim_its_secret_events_at_another_namespaces_credential() -> None:
    """Buckets are a keyed hash: a name a tenant computed to share another namespace's credential's
    bucket (as it could under crc32) lands elsewhere, so its Secret events do not make that credential
    count as changed at every resync."""
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    store.touch_secret("team-b", crc32_bucket_mate(of=("secret", "team-a", "ci"), namespace="team-b"))
    assert store.unchanged_since_reconcile(REF)


def test_its_own_record_counts_and_another_credentials_record_does_not() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    for other in range(1000):
        store.touch_record(f"u-other-{other}")
    assert store.unchanged_since_reconcile(REF)
    store.touch_record("u-1")
    assert not store.unchanged_since_reconcile(REF)


def test_forgetting_forgets_the_reconcile_and_the_uid() -> None:
    store = Store(bucket_key=BUCKET_KEY)
    reconciled(store, "1")
    assert store.uids() == {"u-1"}
    store.forget(REF)
    assert store.uids() == set()
    store.remember(REF, body("1"))
    assert not store.unchanged_since_reconcile(REF)
