"""Verifiers: keyed hashes for generated secrets, argon2id for chosen ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credop.domain.verifiers import (
    UnknownVerifierKeyError,
    is_password_verifier,
    keyed_verifier,
    password_verifier,
    secret_matches,
)

KEYS = {"k1": b"0" * 32, "k2": b"1" * 32}


@given(st.text(min_size=12, max_size=80), st.text(min_size=1, max_size=80))
def test_keyed_verifier_accepts_only_its_secret(secret: str, other: str) -> None:
    verifier = keyed_verifier(secret, key=KEYS["k1"], key_id="k1")
    assert secret not in verifier
    assert secret_matches(secret, verifier, keys=KEYS)
    assert secret_matches(other, verifier, keys=KEYS) == (other == secret)


def test_keyed_verifier_depends_on_the_key() -> None:
    assert (
        keyed_verifier("s", key=KEYS["k1"], key_id="k1").split("$")[2]
        != keyed_verifier("s", key=KEYS["k2"], key_id="k2").split("$")[2]
    )


def test_unknown_key_is_an_error_not_a_mismatch() -> None:
    verifier = keyed_verifier("s", key=b"x" * 32, key_id="gone")
    with pytest.raises(UnknownVerifierKeyError):
        secret_matches("s", verifier, keys=KEYS)


@settings(max_examples=5, deadline=None)
@given(st.text(min_size=12, max_size=30))
def test_password_verifier_is_argon2id(secret: str) -> None:
    verifier = password_verifier(secret)
    assert is_password_verifier(verifier) and secret not in verifier
    assert secret_matches(secret, verifier, keys={})
    assert not secret_matches(secret + "x", verifier, keys={})


def test_password_verifier_uses_owasp_argon2id_parameters() -> None:
    assert password_verifier("s3cret-Pass").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_garbage_verifier_never_matches() -> None:
    assert not secret_matches("x", "nonsense", keys=KEYS)
    assert not secret_matches("x", "$argon2id$broken", keys=KEYS)
