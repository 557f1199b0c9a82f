"""Tokens the service assembles itself (compact JWS, ES256) are what pyjwt and any JOSE library read back."""

from __future__ import annotations

import base64
import datetime
import json

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credop.domain.keyring import Keyring
from credop.domain.signing import KeysetSchedule
from credop.service._jwt import TokenKeys, b64url, compact_json
from credop.service._oauth import OAuthError, parse_form
from tests.servicekit import EPOCH, make_key, sample_keyring

ISSUER = "https://credop.example.test"
FORM = "application/x-www-form-urlencoded"


def _keys(keyring: Keyring) -> TokenKeys:
    keys = TokenKeys(issuer=ISSUER, audience=ISSUER, schedule=KeysetSchedule())
    keys.load(keyring)
    return keys


def _segment(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


claims_values = st.one_of(
    st.text(max_size=40), st.integers(min_value=-(2**53), max_value=2**53), st.lists(st.text(max_size=10), max_size=3)
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), claims_values, max_size=8))
def test_assembled_tokens_verify_with_pyjwt_and_carry_the_claims(extra: dict[str, object]) -> None:
    keys = _keys(sample_keyring(EPOCH))
    claims = {**extra, "iss": ISSUER, "aud": ISSUER, "jti": "j"}
    token = keys.sign(claims, now=EPOCH, typ="at+jwt")
    (signing,) = keys.jwks(now=EPOCH)["keys"]
    public = jwt.PyJWK(signing).key
    decoded = jwt.decode(token, public, algorithms=["ES256"], audience=ISSUER, options={"verify_exp": False})
    assert decoded == claims
    assert _segment(token, 0) == {"alg": "ES256", "kid": signing["kid"], "typ": "at+jwt"}
    assert "=" not in token
    read = keys.read(token, now=EPOCH, typ="at+jwt")
    assert read is not None
    assert read.claims == claims


def test_a_tampered_assembled_token_is_refused() -> None:
    keys = _keys(sample_keyring(EPOCH))
    token = keys.sign({"iss": ISSUER, "aud": ISSUER, "jti": "j", "scope": "read"}, now=EPOCH, typ="at+jwt")
    header, _payload, signature = token.split(".")
    forged = b64url(compact_json({"iss": ISSUER, "aud": ISSUER, "jti": "j", "scope": "read write"}).encode())
    assert keys.read(f"{header}.{forged.decode()}.{signature}", now=EPOCH, typ="at+jwt") is None
    assert keys.read(token, now=EPOCH, typ="credop-key+jwt") is None


def test_the_signing_key_changes_when_the_next_key_ripens_and_not_before() -> None:
    schedule = KeysetSchedule()
    keyring = sample_keyring(EPOCH)
    newer = make_key(EPOCH)
    keyring = keyring.with_signing_keys([*keyring.signing_keys, newer])
    keys = _keys(keyring)
    claims = {"iss": ISSUER, "aud": ISSUER, "jti": "j"}
    ripe = EPOCH + schedule.publish_lead
    before = keys.sign(claims, now=ripe - datetime.timedelta(seconds=1), typ="at+jwt")
    after = keys.sign(claims, now=ripe, typ="at+jwt")
    again_before = keys.sign(claims, now=ripe - datetime.timedelta(seconds=1), typ="at+jwt")
    assert _segment(before, 0)["kid"] != newer.kid
    assert _segment(after, 0)["kid"] == newer.kid
    assert _segment(again_before, 0)["kid"] != newer.kid


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"grant_type=client_credentials", {"grant_type": "client_credentials"}),
        (
            b"grant_type=client_credentials&scope=read+write",
            {"grant_type": "client_credentials", "scope": "read write"},
        ),
        (b"scope=a%20b&&unknown=1&token=", {"scope": "a b"}),
        (b"client_id=team-a%2Fbilling&client_secret=%C3%A9", {"client_id": "team-a/billing", "client_secret": "é"}),
        (b"grant%5Ftype=x", {"grant_type": "x"}),
        (b"scope", {}),
    ],
)
def test_form_parsing(body: bytes, expected: dict[str, str]) -> None:
    assert parse_form(body, FORM) == expected
    assert parse_form(body, "Application/X-WWW-Form-Urlencoded; charset=utf-8") == expected


@pytest.mark.parametrize(
    "body", [b"scope=a&scope=b", b"scope=%ff", b"\xff=1", b"&".join([b"a=1"] * 65), b"scope=a&scope="]
)
def test_form_parsing_refuses(body: bytes) -> None:
    with pytest.raises(OAuthError) as raised:
        parse_form(body, FORM)
    assert raised.value.error == "invalid_request"
