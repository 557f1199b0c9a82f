"""Key formats: prefixes, checksums scanners can check, and client secrets that satisfy the policy."""

from __future__ import annotations

import math
import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.api.keypolicy import ClientSecretRules
from credop.domain.keyformat import (
    ACCESS_KEY_ID,
    BASE62,
    CLIENT_SECRET,
    MIN_GENERATED_BITS,
    SECRET_KEY,
    checksum_is_valid,
    client_secret_problems,
    new_access_key_id,
    new_client_secret,
    new_secret_key,
    random_base62,
    recognised_format,
    with_checksum,
)


def seeded(seed: int):  # type: ignore[no-untyped-def]
    generator = random.Random(seed)
    return lambda n: bytes(generator.randrange(256) for _ in range(n))


@given(st.integers())
def test_minted_values_carry_prefix_and_valid_checksum(seed: int) -> None:
    access, secret = new_access_key_id(seeded(seed)), new_secret_key(seeded(seed))
    assert access.startswith("crak_") and len(access) == ACCESS_KEY_ID.length == 27
    assert secret.startswith("crsk_") and len(secret) == SECRET_KEY.length == 51
    assert recognised_format(access) is ACCESS_KEY_ID
    assert recognised_format(secret) is SECRET_KEY


@given(st.integers(), st.integers(min_value=5, max_value=50), st.sampled_from(BASE62))
def test_one_changed_character_breaks_the_checksum(seed: int, position: int, replacement: str) -> None:
    secret = new_secret_key(seeded(seed))
    changed = secret[:position] + replacement + secret[position + 1 :]
    if changed != secret:
        assert not checksum_is_valid(changed)
        assert recognised_format(changed) is None


def test_random_text_is_not_recognised() -> None:
    assert recognised_format("crsk_" + "a" * 46) is None
    assert recognised_format("AKIAIOSFODNN7EXAMPLE") is None


def test_base62_is_uniform_enough() -> None:
    text = random_base62(62 * 2000, os.urandom)
    counts = {char: text.count(char) for char in BASE62}
    assert min(counts.values()) > 1500 and max(counts.values()) < 2500


def test_values_differ_between_calls() -> None:
    assert len({new_secret_key(os.urandom) for _ in range(1000)}) == 1000


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_client_secrets_always_carry_128_bits_and_the_prefix(seed: int) -> None:
    secret = new_client_secret(seeded(seed))
    assert secret.startswith("crcs_") and checksum_is_valid(secret) and CLIENT_SECRET.recognises(secret)
    body = len(secret) - len("crcs_") - 6
    assert body * math.log2(62) >= MIN_GENERATED_BITS


def test_client_secrets_minted_by_earlier_versions_are_still_recognised() -> None:
    earlier = with_checksum("crcs_" + "a1B2c3D4e5F6g7H8i9J")  # 19 characters: the 30-character default of before
    assert CLIENT_SECRET.recognises(earlier)
    assert not CLIENT_SECRET.recognises(with_checksum("crcs_" + "a" * 15))


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("Ab1!xyz", "between 8 and 30 characters"),
        ("A" * 20 + "1!" + "b" * 9, "between 8 and 30"),
        ("abcdefgh!", "digit"),
        ("12345678!", "letter"),
        ("abcd1234", "special"),
        ("abc 1234!", "spaces"),
    ],
)
def test_client_secret_rules_name_the_problem(secret: str, problem: str) -> None:
    problems = client_secret_problems(secret, ClientSecretRules())
    assert any(problem in p for p in problems)
    assert all(secret not in p for p in problems)


def test_good_client_secret_passes() -> None:
    assert client_secret_problems("s3cret-Pass", ClientSecretRules()) == []
