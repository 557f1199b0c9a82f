"""Key formats: prefixes, checksums scanners can check, and client secrets that satisfy the policy."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.api.keypolicy import ClientSecretRules
from credop.domain.keyformat import (
    ACCESS_KEY_ID,
    BASE62,
    SECRET_KEY,
    checksum_is_valid,
    client_secret_problems,
    new_access_key_id,
    new_client_secret,
    new_secret_key,
    random_base62,
    recognised_format,
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


@given(
    st.integers(),
    st.integers(min_value=8, max_value=64),
    st.integers(min_value=0, max_value=40),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_generated_client_secret_satisfies_any_satisfiable_rules(
    seed: int, min_length: int, extra: int, letter: bool, digit: bool, special: bool
) -> None:
    rules = ClientSecretRules(
        min_length=min_length,
        max_length=min_length + extra,
        require_letter=letter,
        require_digit=digit,
        require_special=special,
    )
    secret = new_client_secret(rules, seeded(seed))
    assert client_secret_problems(secret, rules) == []


def test_default_generated_client_secret_is_checksummed_and_30_chars() -> None:
    secret = new_client_secret(ClientSecretRules(), os.urandom)
    assert len(secret) == 30 and secret.startswith("crcs_") and checksum_is_valid(secret)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("Ab1!xyz", "between 8 and 30"),
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
