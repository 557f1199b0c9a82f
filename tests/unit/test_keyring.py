"""credop's keyring: HMAC key rotation and retirement, merging a backup, which keys a verifier names."""

from __future__ import annotations

import datetime
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.domain.keyring import (
    Keyring,
    decode_keyring,
    encode_keyring,
    hmac_key_created_at,
    merged_keyrings,
    new_keyring,
    verifier_key_ids,
    with_new_hmac_key_when_due,
    without_unused_hmac_keys,
)
from credop.domain.signing import new_signing_key

NOW = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def key(kid: str, at: datetime.datetime = NOW):  # type: ignore[no-untyped-def]
    return new_signing_key(now=at, kid=kid)


def keyring_at(made: datetime.datetime) -> Keyring:
    return new_keyring(now=made, random_bytes=os.urandom, make_signing_key=lambda at: key(f"s-{at:%Y%m%d}", at))


def test_a_new_keyring_has_keys_of_every_kind_and_survives_its_secret() -> None:
    keyring = keyring_at(NOW)
    assert keyring.current_hmac == "h20261203090000" and keyring.current_hmac_key
    assert keyring.signing_keys and keyring.key_signing_keys
    import base64

    data = {name: base64.b64encode(value.encode()).decode() for name, value in encode_keyring(keyring).items()}
    assert decode_keyring(data) == keyring


@pytest.mark.parametrize(
    ("age", "rotated"),
    [(DAY * 10, False), (DAY * 89, False), (DAY * 90, True), (DAY * 400, True)],
)
def test_the_hmac_key_rotates_when_it_is_due(age: datetime.timedelta, rotated: bool) -> None:
    keyring = keyring_at(NOW - age)
    after = with_new_hmac_key_when_due(keyring, now=NOW, every=DAY * 90, random_bytes=os.urandom)
    assert (after is not None) == rotated
    if after is not None:
        assert after.current_hmac == "h20261203090000"
        assert set(after.hmac_keys) == {keyring.current_hmac, after.current_hmac}, "the old key stays"


@pytest.mark.parametrize(
    ("in_use", "kept"),
    [
        (set(), {"h20261203090000"}),
        ({"h20260101000000"}, {"h20260101000000", "h20261203090000"}),
        ({"h20261203090000"}, {"h20261203090000"}),
    ],
)
def test_an_hmac_key_is_retired_only_when_no_verifier_names_it(in_use: set[str], kept: set[str]) -> None:
    keyring = Keyring({"h20260101000000": b"a" * 32, "h20261203090000": b"b" * 32}, "h20261203090000")
    after = without_unused_hmac_keys(keyring, in_use=in_use) or keyring
    assert set(after.hmac_keys) == kept


def test_merging_a_backup_keeps_every_key_and_the_newest_current_one() -> None:
    cluster = Keyring({"h20261203090000": b"n" * 32}, "h20261203090000", (key("s2"),), (key("k2"),))
    backup = Keyring({"h20260101000000": b"o" * 32}, "h20260101000000", (key("s1", NOW - DAY),), (key("k1"),))
    merged = merged_keyrings(cluster, backup)
    assert set(merged.hmac_keys) == {"h20260101000000", "h20261203090000"}
    assert merged.current_hmac == "h20261203090000"
    assert [k.kid for k in merged.signing_keys] == ["s1", "s2"]
    assert {k.kid for k in merged.key_signing_keys} == {"k1", "k2"}
    assert merged_keyrings(Keyring(), backup).current_hmac == "h20260101000000"


@given(
    st.sets(st.integers(min_value=0, max_value=40), max_size=6),
    st.sets(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_a_merge_is_the_union_of_hmac_keys(first: set[int], second: set[int]) -> None:
    def ring(days: set[int]) -> Keyring:
        keys = {(NOW - DAY * d).strftime("h%Y%m%d%H%M%S"): bytes([d]) * 32 for d in days}
        return Keyring(keys, max(keys, default=""))

    merged = merged_keyrings(ring(first), ring(second))
    assert set(merged.hmac_keys) == set(ring(first).hmac_keys) | set(ring(second).hmac_keys)
    assert merged.current_hmac == max(merged.hmac_keys, default="")


def test_which_keys_verifiers_name() -> None:
    keyed = "hmac-sha256$h20261203090000$" + "A" * 43
    assert verifier_key_ids(keyed, None, "$argon2id$v=19$m=19456,t=2,p=1$x$y", keyed) == ("h20261203090000",)
    assert hmac_key_created_at("h20261203090000") == NOW
    assert hmac_key_created_at("not-a-kid") is None
