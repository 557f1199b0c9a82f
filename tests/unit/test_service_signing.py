"""Signing keys: the algorithm allow-list, token types, and rotation without a verification failure."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from credop.domain.keyring import Keyring
from credop.domain.signing import KeysetSchedule, rotated_keyset
from credop.domain.tokens import ACCESS_TOKEN_TYPE
from credop.service import ServiceState
from credop.service._records import API_CLIENT, client_of
from tests.servicekit import TEST_ISSUER, FakeClock, api_client_object, in_memory_state, make_key

HOUR = datetime.timedelta(hours=1)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forged(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@pytest.fixture
def state(clock: FakeClock) -> ServiceState:
    built = in_memory_state(clock=clock)
    built.put_object(API_CLIENT, api_client_object("c", uid="uid-c"))
    return built


def genuine(state: ServiceState) -> tuple[str, dict[str, Any]]:
    credential = state.view.credential("uid-c")
    assert credential is not None
    issued = state.tokens.issue(credential, ("read",), now=state.now())
    return issued.token, dict(issued.claims)


def test_a_genuine_token_is_active(state: ServiceState) -> None:
    token, _ = genuine(state)
    assert state.tokens.active(token, now=state.now()) is not None


def test_alg_none_is_refused(state: ServiceState) -> None:
    token, claims = genuine(state)
    kid = jwt.get_unverified_header(token)["kid"]
    unsigned = forged({"alg": "none", "typ": "at+jwt", "kid": kid}, claims, lambda _: b"")
    assert state.tokens.active(unsigned, now=state.now()) is None


def test_hs256_keyed_with_the_public_key_is_refused(state: ServiceState) -> None:
    """The classic confusion: an HMAC 'signature' made with the published public key."""
    token, claims = genuine(state)
    kid = jwt.get_unverified_header(token)["kid"]
    public = state.keys._loaded[kid].public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    confused = forged(header, claims, lambda data: hmac.new(public, data, hashlib.sha256).digest())
    assert state.tokens.active(confused, now=state.now()) is None


def test_a_token_signed_by_a_stranger_key_is_refused(state: ServiceState) -> None:
    _, claims = genuine(state)
    stranger = ec.generate_private_key(ec.SECP256R1())
    for kid in ("unknown-kid", jwt.get_unverified_header(genuine(state)[0])["kid"]):
        token = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
        assert state.tokens.active(token, now=state.now()) is None


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"typ": "application/at+jwt"}, True),
        ({"typ": "AT+JWT"}, True),
        ({"typ": "JWT"}, False),
        ({"typ": "credop-key+jwt"}, False),
        ({"iss": "https://evil.example"}, False),
        ({"aud": "https://another.example"}, False),
        ({"aud": ["https://another.example", TEST_ISSUER]}, True),
        ({"exp": None}, False),
    ],
)
def test_type_issuer_and_audience_must_match(state: ServiceState, change: dict[str, Any], accepted: bool) -> None:
    _, claims = genuine(state)
    typ = str(change.pop("typ", ACCESS_TOKEN_TYPE))
    claims = {key: value for key, value in {**claims, **change}.items() if value is not None}
    token = state.keys.sign(claims, now=state.now(), typ=typ)
    assert (state.tokens.active(token, now=state.now()) is not None) is accepted


def test_rotation_never_fails_a_live_token(state: ServiceState, clock: FakeClock) -> None:
    """Twelve days of hourly key housekeeping (a new key every three days): every token verifies until it expires."""
    schedule = KeysetSchedule(
        rotate_every=datetime.timedelta(days=3), publish_lead=datetime.timedelta(minutes=10), retain_after=2 * HOUR
    )
    state.keys.schedule = schedule
    keyring = state.view.keyring
    assert keyring is not None
    live: list[tuple[str, int]] = []
    signers: set[str] = set()
    for _ in range(24 * 12):
        rotated = rotated_keyset(list(keyring.signing_keys), now=clock(), schedule=schedule, make_key=make_key)
        if rotated is not None:
            keyring = keyring.with_signing_keys(rotated)
            state.set_keyring(keyring)
        token, claims = genuine(state)
        signers.add(jwt.get_unverified_header(token)["kid"])
        live.append((token, int(claims["exp"])))
        now = clock()
        published = {key["kid"] for key in state.keys.jwks(now=now)["keys"]}
        for token, expires in live:
            if now.timestamp() < expires:
                assert state.tokens.active(token, now=now) is not None
                assert jwt.get_unverified_header(token)["kid"] in published
        live = [(token, expires) for token, expires in live if now.timestamp() < expires]
        clock.advance(3600)
    assert len(signers) >= 3


def test_a_new_key_is_published_before_it_signs(state: ServiceState, clock: FakeClock) -> None:
    keyring = state.view.keyring
    assert keyring is not None
    newest = make_key(clock())
    state.set_keyring(Keyring(keyring.hmac_keys, keyring.current_hmac, (*keyring.signing_keys, newest)))
    assert newest.kid in {key["kid"] for key in state.keys.jwks(now=clock())["keys"]}
    assert jwt.get_unverified_header(genuine(state)[0])["kid"] != newest.kid
    clock.advance(600)
    assert jwt.get_unverified_header(genuine(state)[0])["kid"] == newest.kid


def test_a_retired_key_takes_its_tokens_with_it(state: ServiceState, clock: FakeClock) -> None:
    token, _ = genuine(state)
    keyring = state.view.keyring
    assert keyring is not None
    state.set_keyring(keyring.with_signing_keys([make_key(clock() - datetime.timedelta(days=1))]))
    assert state.tokens.active(token, now=clock()) is None


def test_records_parse_without_a_status(clock: FakeClock) -> None:
    body = api_client_object("fresh")
    del body["status"]
    credential = client_of(body)
    assert credential.identifier == "fresh" and not credential.usable(clock())
