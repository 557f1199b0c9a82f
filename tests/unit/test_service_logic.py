"""The credential service's pure decisions: client IDs, scopes, token time, rate limits, usage batching, caches."""

from __future__ import annotations

import datetime
import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credop.domain.tokens import (
    effective_scopes,
    narrowed_scopes,
    pending_invalidation_instant,
    scopes_for_roles,
    split_client_id,
    token_is_current,
    token_lifetime,
)
from credop.service._caches import CheckedTokens, KeyedFingerprints, VerifiedSecrets
from credop.service._ratelimit import Allowance, FailureLimiter, retry_after_header
from credop.service._records import client_of, key_of, material_of
from credop.service._revocations import RevokedTokens
from credop.service._usage import Decision, UsageBatch, write_decision
from credop.service._view import CredentialView
from tests.servicekit import EPOCH, api_client_object, key_object, secret_object

T0 = EPOCH
SECOND = datetime.timedelta(seconds=1)
MINUTE = datetime.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("presented", "expected"),
    [
        ("billing", (None, "billing")),
        ("team-a/billing", ("team-a", "billing")),
        ("team-a/", ("team-a", "")),
        ("/billing", ("", "billing")),
        ("crak_abc", (None, "crak_abc")),
        ("a/b/c", ("a", "b/c")),
    ],
)
def test_split_client_id(presented: str, expected: tuple[str | None, str]) -> None:
    assert split_client_id(presented) == expected


@pytest.mark.parametrize(
    ("requested", "allowed", "granted"),
    [
        (None, ("read",), ("read",)),
        ("", ("read", "write"), ("read", "write")),
        ("   ", ("read",), None),
        ("read  write", ("read", "write"), None),
        (" read", ("read",), None),
        ("read", ("read", "write"), ("read",)),
        ("write read", ("read", "write"), ("write", "read")),
        ("read read", ("read",), ("read",)),
        ("write", ("read",), None),
        ("read write", ("read",), None),
        ("admin", ("read", "write"), None),
    ],
)
def test_narrowed_scopes(requested: str | None, allowed: tuple[str, ...], granted: tuple[str, ...] | None) -> None:
    assert narrowed_scopes(requested, allowed) == granted


@given(
    st.lists(st.sampled_from(["read", "write", "admin", "x"]), max_size=5), st.sets(st.sampled_from(["read", "write"]))
)
def test_narrowed_scopes_never_grant_more_than_allowed(requested: list[str], allowed: set[str]) -> None:
    granted = narrowed_scopes(" ".join(requested), tuple(sorted(allowed)))
    if granted is not None:
        assert set(granted) <= allowed


@pytest.mark.parametrize(
    ("roles", "read_only", "scopes"),
    [
        ((), ("GlobalViewer",), ("read",)),
        (("GlobalViewer",), ("GlobalViewer",), ("read",)),
        (("GlobalViewer", "CloudAccountViewer"), ("GlobalViewer", "CloudAccountViewer"), ("read",)),
        (("GlobalAdmin",), ("GlobalViewer",), ("read", "write")),
        (("GlobalViewer", "GlobalAdmin"), ("GlobalViewer",), ("read", "write")),
    ],
)
def test_scopes_for_roles(roles: tuple[str, ...], read_only: tuple[str, ...], scopes: tuple[str, ...]) -> None:
    assert scopes_for_roles(roles, read_only_roles=read_only) == scopes


def test_effective_scopes_drop_what_the_credential_lost() -> None:
    assert effective_scopes("read write", ("read",)) == ("read",)
    assert effective_scopes("read write", ("read", "write")) == ("read", "write")
    assert effective_scopes("", ("read",)) == ()


@pytest.mark.parametrize(
    ("default", "expires_in", "lifetime"),
    [(3600, None, 3600), (3600, 7200, 3600), (3600, 600, 600), (3600, 0.4, 1), (3600, -10, 1)],
)
def test_token_lifetime_never_outlives_the_credential(default: int, expires_in: float | None, lifetime: int) -> None:
    expires = None if expires_in is None else T0 + datetime.timedelta(seconds=expires_in)
    assert token_lifetime(default, now=T0, credential_expires_at=expires) == lifetime


@pytest.mark.parametrize(
    ("claims", "offset", "current"),
    [
        ({"iat": 0, "nbf": 0, "exp": 60}, 0, True),
        ({"iat": 0, "nbf": 0, "exp": 60}, 59, True),
        ({"iat": 0, "nbf": 0, "exp": 60}, 60, False),
        ({"iat": 0, "exp": 60}, 61, False),
        ({"iat": 20, "nbf": 20, "exp": 60}, 0, True),  # within the 30 s clock-skew leeway
        ({"iat": 40, "nbf": 40, "exp": 90}, 0, False),  # issued in the future
        ({"iat": 0}, 0, False),  # no exp
        ({"iat": 0, "exp": "soon"}, 0, False),
    ],
)
def test_token_is_current(claims: dict[str, object], offset: int, current: bool) -> None:
    base = int(T0.timestamp())
    shifted = {key: value + base if isinstance(value, int) else value for key, value in claims.items()}
    assert token_is_current(shifted, now=T0 + datetime.timedelta(seconds=offset)) is current


def test_pending_invalidation_rejects_tokens_issued_before_it_was_seen() -> None:
    seen = T0 + datetime.timedelta(milliseconds=300)
    assert pending_invalidation_instant(seen, None) == T0 + SECOND
    assert pending_invalidation_instant(seen, T0 - MINUTE) == T0 + SECOND
    assert pending_invalidation_instant(seen, T0 + MINUTE) == T0 + MINUTE


# Rate limits ---------------------------------------------------------------------------------
def test_failures_beyond_the_burst_are_limited_until_a_token_refills() -> None:
    limiter = FailureLimiter(Allowance(burst=3, per_second=0.5))
    for _ in range(3):
        assert limiter.retry_after("c", now=0.0) == 0
        limiter.record_failure("c", now=0.0)
    assert limiter.retry_after("c", now=0.0) == pytest.approx(2.0)
    assert limiter.retry_after("c", now=1.0) == pytest.approx(1.0)
    assert limiter.retry_after("c", now=2.0) == 0
    assert limiter.retry_after("other", now=0.0) == 0


@settings(max_examples=200)
@given(
    burst=st.integers(1, 10),
    per_second=st.floats(0.1, 5),
    gaps=st.lists(st.floats(0, 3), min_size=1, max_size=60),
)
def test_failures_accepted_never_exceed_burst_plus_refill(burst: int, per_second: float, gaps: list[float]) -> None:
    """An attacker who retries as soon as allowed gets at most burst + rate * elapsed attempts."""
    limiter = FailureLimiter(Allowance(burst=burst, per_second=per_second))
    now, accepted = 0.0, 0
    for gap in gaps:
        now += gap
        if limiter.retry_after("c", now=now) == 0:
            limiter.record_failure("c", now=now)
            accepted += 1
    assert accepted <= burst + per_second * now + 1e-9


def test_full_buckets_are_forgotten_and_the_map_stays_bounded() -> None:
    limiter = FailureLimiter(Allowance(burst=2, per_second=1), max_keys=10)
    for index in range(50):
        limiter.record_failure(f"c{index}", now=float(index) / 100)
    assert len(limiter) <= 10
    limiter.forget_refilled(now=100.0)
    assert len(limiter) == 0


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_retry_after_is_whole_seconds_and_never_zero(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


# Usage batching --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pending", "last_written", "observed", "decision"),
    [
        (T0, None, None, Decision.WRITE),
        (T0 + 2 * MINUTE, T0, T0, Decision.WRITE),
        (T0 + 30 * SECOND, None, T0, Decision.DROP),  # the API already shows a use within the interval
        (T0 + 90 * SECOND, T0 + 50 * SECOND, T0 - MINUTE, Decision.WAIT),  # this replica wrote 10 s ago
        (T0 - SECOND, None, T0, Decision.DROP),  # someone wrote a newer use
    ],
)
def test_write_decision(
    pending: datetime.datetime,
    last_written: datetime.datetime | None,
    observed: datetime.datetime | None,
    decision: Decision,
) -> None:
    now = T0 + MINUTE
    assert (
        write_decision(pending=pending, last_written=last_written, observed=observed, now=now, interval=MINUTE)
        is decision
    )


@settings(max_examples=200)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 5), st.booleans()), min_size=1, max_size=200
    ),
    interval=st.floats(0.5, 10),
    echo=st.booleans(),
)
def test_writes_per_credential_are_at_least_an_interval_apart(
    events: list[tuple[str, float, bool]], interval: float, echo: bool
) -> None:
    """Whatever the uses and flush times, one replica writes each credential at most once per interval."""
    batch = UsageBatch(datetime.timedelta(seconds=interval))
    observed: dict[str, datetime.datetime] = {}
    writes: dict[str, list[datetime.datetime]] = {}
    now = T0
    for uid, gap, flush in events:
        now += datetime.timedelta(seconds=gap)
        batch.record(uid, now)
        if flush:
            for write in batch.due(now=now, observed=observed.get):
                batch.written(write, now=now)
                writes.setdefault(write.uid, []).append(now)
                if echo:  # the watch shows the write back
                    observed[write.uid] = write.used_at
    for times in writes.values():
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap >= datetime.timedelta(seconds=interval) for gap in gaps)


def test_a_use_that_arrives_during_a_write_stays_pending() -> None:
    batch = UsageBatch(MINUTE)
    batch.record("a", T0)
    (write,) = batch.due(now=T0, observed=lambda uid: None)
    batch.record("a", T0 + SECOND)
    batch.written(write, now=T0 + SECOND)
    assert batch.pending() == {"a": T0 + SECOND}
    assert batch.due(now=T0 + 30 * SECOND, observed=lambda uid: None) == []
    assert [w.used_at for w in batch.due(now=T0 + 2 * MINUTE, observed=lambda uid: None)] == [T0 + SECOND]


def test_a_failed_write_still_counts_against_the_interval() -> None:
    batch = UsageBatch(MINUTE)
    batch.record("a", T0)
    (write,) = batch.due(now=T0, observed=lambda uid: None)
    batch.attempted(write, now=T0)
    assert batch.due(now=T0 + 30 * SECOND, observed=lambda uid: None) == []
    assert len(batch.due(now=T0 + MINUTE, observed=lambda uid: None)) == 1


# Caches and revocations ----------------------------------------------------------------------------
def test_verified_secrets_hold_fingerprints_only_and_depend_on_the_verifier() -> None:
    cache = VerifiedSecrets(per_credential=2)
    fingerprint = cache.fingerprint("uid-1", "$argon2id$v1", "hunter2-Secret")
    assert b"hunter2" not in fingerprint
    cache.remember("uid-1", fingerprint)
    assert ("uid-1", fingerprint) in cache
    assert cache.fingerprint("uid-1", "$argon2id$v2", "hunter2-Secret") != fingerprint
    assert cache.fingerprint("uid-2", "$argon2id$v1", "hunter2-Secret") != fingerprint
    assert VerifiedSecrets().fingerprint("uid-1", "$argon2id$v1", "hunter2-Secret") != fingerprint  # keyed
    for other in ("a", "b"):
        cache.remember("uid-1", cache.fingerprint("uid-1", "$argon2id$v1", other))
    assert ("uid-1", fingerprint) not in cache  # bounded per credential
    cache.forget("uid-1")
    assert len(cache) == 0


def test_keyed_fingerprints_are_keyed_blake2b_of_length_prefixed_parts() -> None:
    key = bytes(range(32))
    fingerprints = KeyedFingerprints(key)
    framed = b"\x00\x00\x00\x02ab\x00\x00\x00\x01c"
    assert fingerprints.of("ab", "c") == hashlib.blake2b(framed, key=key, digest_size=32).digest()
    assert fingerprints.of("ab", "c") == fingerprints.of("ab", "c")  # the keyed state is copied, never advanced
    assert fingerprints.of("ab", "c") != fingerprints.of("a", "bc")
    assert fingerprints.of("ab", "c") != KeyedFingerprints(bytes(32)).of("ab", "c")


def test_checked_tokens_expire_with_the_token_and_with_their_key() -> None:
    cache = CheckedTokens(max_entries=2)
    fingerprint = cache.fingerprint("a.b.c")
    cache.put(fingerprint, "k1", {"exp": 100})
    assert cache.get(fingerprint, now=99) == ("k1", {"exp": 100})
    assert cache.get(fingerprint, now=100) is None
    cache.put(fingerprint, "k1", {"exp": 100})
    cache.forget_keys_except({"k2"})
    assert cache.get(fingerprint, now=0) is None
    for index in range(5):
        cache.put(cache.fingerprint(str(index)), "k", {"exp": 100})
    assert len(cache) == 2


def test_revoked_tokens_merge_the_shared_lists_with_local_ones() -> None:
    revoked = RevokedTokens()
    revoked.add_local("j1", 100)
    revoked.replace_shared("team-a", {"j2": "200", "bad": "not-a-number"})
    assert "j1" in revoked and "j2" in revoked and "bad" not in revoked
    revoked.replace_shared("team-a", {"j1": "100"})
    assert "j1" in revoked and "j2" not in revoked
    revoked.replace_shared("team-b", {"j4": "300"})
    assert revoked.count("team-a") == 1 and revoked.count("team-b") == 1
    assert revoked.expired(now=150) == {"team-a": ["j1"]}
    revoked.add_local("j3", 120)
    revoked.forget_expired(now=130)
    assert "j3" not in revoked
    revoked.replace_all({"team-b": {"j4": "300"}})
    assert "j1" not in revoked and "j4" in revoked and revoked.count("team-a") == 0


# Records and the view ------------------------------------------------------------------------------
def test_usable_means_active_wanted_unexpired_and_not_deleting() -> None:
    now = T0
    assert client_of(api_client_object("c")).usable(now)
    assert not client_of(api_client_object("c", phase="Inactive")).usable(now)
    assert not client_of(api_client_object("c", active=False)).usable(now)
    deleting = api_client_object("c")
    deleting["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    assert not client_of(deleting).usable(now)
    key = key_object("k", access_key_id="crak_x", expires_at=now + SECOND)
    assert key_of(key).usable(now)
    assert not key_of(key).usable(now + SECOND)
    assert not key_of(key_object("k", access_key_id="crak_x", phase="Expired")).usable(now)


def test_a_pending_invalidation_applies_from_when_the_replica_saw_it() -> None:
    view = CredentialView()
    body = api_client_object("c", uid="u1", annotations={"credop.dev/invalidate-tokens": "t1"})
    view.put_credential(client_of(body), now=T0 + datetime.timedelta(milliseconds=10))
    view.put_credential(client_of(body), now=T0 + MINUTE)  # a later event keeps the first sighting
    seen = view.credential("u1")
    assert seen is not None and seen.invalid_before() == T0 + SECOND
    handled = api_client_object(
        "c",
        uid="u1",
        annotations={"credop.dev/invalidate-tokens": "t1"},
        invalidate_handled="t1",
        tokens_invalid_before=T0 + 2 * SECOND,
    )
    view.put_credential(client_of(handled), now=T0 + MINUTE)
    done = view.credential("u1")
    assert done is not None and done.pending_invalidation is None and done.invalid_before() == T0 + 2 * SECOND


def test_client_ids_resolve_per_namespace_and_bare_only_when_unique() -> None:
    view = CredentialView()
    view.put_credential(client_of(api_client_object("shared", "team-a", uid="a")), now=T0)
    view.put_credential(client_of(api_client_object("shared", "team-b", uid="b")), now=T0)
    view.put_credential(client_of(api_client_object("solo", "team-a", uid="s")), now=T0)
    view.put_credential(key_of(key_object("k", "team-b", access_key_id="crak_1", uid="k")), now=T0)
    assert view.find("shared") is None
    assert _uid(view.find("team-a/shared")) == "a"
    assert _uid(view.find("team-b/shared")) == "b"
    assert _uid(view.find("solo")) == "s"
    assert view.find("team-b/solo") is None
    assert _uid(view.find("crak_1")) == "k"
    assert _uid(view.find("team-b/crak_1")) == "k"
    assert view.find("team-a/crak_1") is None
    view.drop_credential("b")
    assert _uid(view.find("shared")) == "a"


def test_a_renamed_client_id_leaves_the_old_one_unknown() -> None:
    view = CredentialView()
    view.put_credential(client_of(api_client_object("c", client_id="old-id", uid="u")), now=T0)
    view.put_credential(client_of(api_client_object("c", client_id="new-id", uid="u")), now=T0)
    assert view.find("old-id") is None
    assert _uid(view.find("new-id")) == "u"


def test_of_duplicate_client_ids_the_active_one_is_found() -> None:
    view = CredentialView()
    view.put_credential(client_of(api_client_object("a", client_id="dup", uid="1")), now=T0)
    view.put_credential(client_of(api_client_object("b", client_id="dup", uid="2", phase="Failed")), now=T0)
    assert _uid(view.find("dup")) == "1"


def test_a_relist_drops_credentials_that_disappeared() -> None:
    view = CredentialView()
    view.put_credential(client_of(api_client_object("gone", uid="g")), now=T0)
    view.put_credential(key_of(key_object("key", access_key_id="crak_k", uid="k")), now=T0)
    view.replace_credentials("ApiClient", [client_of(api_client_object("new", uid="n"))], now=T0)
    assert view.credential("g") is None and view.find("gone") is None
    assert view.credential("k") is not None  # another kind is untouched


KEYED_A = "hmac-sha256$k$" + "A" * 43
KEYED_B = "hmac-sha256$k$" + "B" * 43


def test_materials_come_from_credop_records_and_notify_on_change() -> None:
    owner = api_client_object("c", uid="u")
    changed: list[str] = []
    view = CredentialView()
    view.on_material_change(changed.append)
    material = material_of(secret_object(owner, verifier=KEYED_A))
    assert material is not None and "AAAA" not in repr(material)
    view.put_material("credop-record-u", material)
    view.put_material("credop-record-u", material)
    assert changed == ["u"]
    view.drop_material("credop-record-other", "u")  # another record's deletion does not drop this one
    assert view.verifiers(client_of(owner), now=T0) == (KEYED_A,)
    view.drop_material("credop-record-u", "u")
    assert changed == ["u", "u"] and view.verifiers(client_of(owner), now=T0) == ()


def test_a_record_without_an_owner_or_with_a_foreign_verifier_is_ignored() -> None:
    owner = api_client_object("c", uid="u")
    unowned = secret_object(owner, verifier=KEYED_A)
    del unowned["metadata"]["labels"]["credop.dev/owner-uid"]
    assert material_of(unowned) is None
    assert material_of(secret_object(owner, verifier="x")) is None
    costly = "$argon2id$v=19$m=262144,t=20,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43
    assert material_of(secret_object(owner, verifier=costly)) is None


def test_a_record_for_another_identifier_gives_no_verifier() -> None:
    owner = api_client_object("c", uid="u")
    view = CredentialView()
    material = material_of(secret_object(owner, verifier=KEYED_A, identifier="someone-else"))
    assert material is not None
    view.put_material("credop-record-u", material)
    assert view.verifiers(client_of(owner), now=T0) == ()


def test_the_previous_verifier_counts_only_during_its_grace_period() -> None:
    owner = key_object("k", access_key_id="crak_1", uid="u")
    secret = secret_object(owner, verifier=KEYED_B, previous_verifier=KEYED_A, previous_valid_until=T0 + MINUTE)
    material = material_of(secret)
    assert material is not None
    assert material.verifiers_at(T0) == (KEYED_B, KEYED_A)
    assert material.verifiers_at(T0 + MINUTE) == (KEYED_B,)


def _uid(credential: object) -> str | None:
    return getattr(credential, "uid", None)


@given(st.text(max_size=200))
def test_reading_an_unverified_jwt_part_never_raises(text: str) -> None:
    from credop.service._jwt import unverified_part

    for index in (0, 1):
        part = unverified_part(text, index)
        assert part is None or isinstance(part, dict)


def test_reading_an_unverified_jwt_part() -> None:
    from credop.service._jwt import unverified_part

    token = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ4In0.c2ln"
    assert unverified_part(token, 0) == {"alg": "ES256", "typ": "at+jwt"}
    assert unverified_part(token, 1) == {"sub": "x"}
    assert unverified_part("W10.e30.x", 0) is None  # a JSON list, not an object
    assert unverified_part("a.b", 0) is None
