"""POST /oauth2/token: RFC 6749 §4.4 client credentials, §2.3.1 client authentication, §5.1/§5.2 answers, RFC 9068 tokens."""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus, urlencode

import jwt
import pytest
from aiohttp.test_utils import TestClient

from credop.domain.verifiers import password_verifier
from credop.service import Allowance, ServiceSettings, ServiceState
from tests.servicekit import (
    TEST_ISSUER,
    FakeClock,
    Minted,
    add_client,
    add_key,
    feed_secret,
    hmac_verifier,
    in_memory_state,
    recorded_usage,
)

FORM = "application/x-www-form-urlencoded"
Http = TestClient  # type: ignore[type-arg]


@pytest.fixture
def state(clock: FakeClock) -> Iterator[ServiceState]:
    settings = ServiceSettings(
        client_failures=Allowance(burst=3, per_second=0.1), address_failures=Allowance(burst=6, per_second=0.1)
    )
    built = in_memory_state(clock=clock, settings=settings)
    yield built
    built.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{quote_plus(user)}:{quote_plus(password)}".encode()).decode()


async def token_request(
    http: Http, fields: dict[str, str] | str, *, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    body = fields if isinstance(fields, str) else urlencode(fields)
    response = await http.post("/oauth2/token", data=body, headers={"Content-Type": FORM, **(headers or {})})
    return response.status, dict(response.headers), await response.json()


def grant(minted: Minted, **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": minted.identifier, "client_secret": minted.secret, **extra}


def claims_of(http: Http, state: ServiceState, token: str) -> dict[str, Any]:
    """Decode as a resource server would: with the JWKS, ES256 only."""
    jwks = state.keys.jwks(now=state.now())
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    return jwt.decode(  # type: ignore[no-any-return]
        token,
        key,
        algorithms=["ES256"],
        audience=TEST_ISSUER,
        issuer=TEST_ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )


# Success -----------------------------------------------------------------------------------------
async def test_client_secret_post_gets_an_rfc9068_token(http: Http, state: ServiceState, clock: FakeClock) -> None:
    client = add_client(state, "billing", permission="CanEdit", validity=600)
    status, headers, body = await token_request(http, grant(client))
    assert status == 200
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}  # never a refresh token
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["scope"] == "read write"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    assert header["kid"] in {key["kid"] for key in state.keys.jwks(now=clock())["keys"]}
    claims = claims_of(http, state, body["access_token"])
    assert claims["iss"] == TEST_ISSUER and claims["aud"] == TEST_ISSUER
    assert (
        claims["sub"] == "team-a/billing" and claims["client_id"] == "team-a/billing" and claims["tenant"] == "team-a"
    )
    assert claims["iat"] == int(clock().timestamp()) and claims["exp"] - claims["iat"] == 600
    assert claims["scope"] == "read write" and len(claims["jti"]) >= 16


async def test_client_secret_basic_works_and_each_token_is_distinct(http: Http, state: ServiceState) -> None:
    client = add_client(state, "billing")
    headers = {"Authorization": basic(client.identifier, client.secret)}
    first = await token_request(http, {"grant_type": "client_credentials"}, headers=headers)
    second = await token_request(http, {"grant_type": "client_credentials"}, headers=headers)
    assert first[0] == second[0] == 200
    assert first[2]["scope"] == "read"
    jtis = {claims_of(http, state, answer[2]["access_token"])["jti"] for answer in (first, second)}
    assert len(jtis) == 2


async def test_basic_credentials_are_form_decoded_first_then_taken_raw(http: Http, state: ServiceState) -> None:
    client = add_client(state, "chosen", password="p+ss%word-1!")
    encoded = await token_request(
        http, {"grant_type": "client_credentials"}, headers={"Authorization": basic("chosen", "p+ss%word-1!")}
    )
    raw = "Basic " + base64.b64encode(b"chosen:p+ss%word-1!").decode()
    unencoded = await token_request(http, {"grant_type": "client_credentials"}, headers={"Authorization": raw})
    assert encoded[0] == unencoded[0] == 200
    assert client.secret == "p+ss%word-1!"


async def test_the_namespace_qualified_client_id_always_works(http: Http, state: ServiceState) -> None:
    a = add_client(state, "shared", "team-a")
    b = add_client(state, "shared", "team-b")
    for minted in (a, b):
        status, _, body = await token_request(http, grant(minted, client_id=minted.namespaced_id))
        assert status == 200
        assert claims_of(http, state, body["access_token"])["tenant"] == minted.body["metadata"]["namespace"]
    ambiguous = await token_request(http, grant(a))
    assert ambiguous[0] == 401 and ambiguous[2]["error"] == "invalid_client"
    assert "<namespace>/<client ID>" in ambiguous[2]["error_description"]


async def test_a_service_account_key_gets_a_token_with_its_roles(http: Http, state: ServiceState) -> None:
    viewer = add_key(state, "viewer", roles=[{"name": "GlobalViewer"}])
    admin = add_key(state, "admin", roles=[{"name": "GlobalAdmin"}], service_account="deployer")
    status, _, body = await token_request(http, grant(viewer))
    assert status == 200 and body["scope"] == "read"
    claims = claims_of(http, state, body["access_token"])
    assert (
        claims["sub"] == "team-a/ci-bot"
        and claims["client_id"] == f"team-a/{viewer.identifier}"
        and claims["roles"] == ["GlobalViewer"]
    )
    status, _, body = await token_request(http, grant(admin))
    assert status == 200 and body["scope"] == "read write"
    assert claims_of(http, state, body["access_token"])["sub"] == "team-a/deployer"


async def test_a_key_token_never_outlives_the_key(http: Http, state: ServiceState, clock: FakeClock) -> None:
    key = add_key(state, "short", expires_at=clock() + datetime.timedelta(seconds=90))
    status, _, body = await token_request(http, grant(key))
    assert status == 200 and body["expires_in"] == 90


async def test_the_previous_secret_works_during_its_grace_period(
    http: Http, state: ServiceState, clock: FakeClock
) -> None:
    key = add_key(state, "rotated")
    new_secret = "crsk_" + "N" * 46
    feed_secret(
        state,
        key.body,
        verifier=hmac_verifier(state, new_secret),
        previous_verifier=hmac_verifier(state, key.secret),
        previous_valid_until=clock() + datetime.timedelta(seconds=60),
    )
    assert (await token_request(http, grant(key)))[0] == 200
    assert (await token_request(http, grant(key, client_secret=new_secret)))[0] == 200
    clock.advance(60)
    assert (await token_request(http, grant(key)))[0] == 401
    assert (await token_request(http, grant(key, client_secret=new_secret)))[0] == 200


async def test_a_token_issued_right_after_invalidation_is_not_caught_by_it(
    http: Http, state: ServiceState, clock: FakeClock
) -> None:
    """tokensInvalidBefore is the next whole second: a token issued in that second dates itself there."""
    client = add_client(state, "c", tokens_invalid_before=clock() + datetime.timedelta(seconds=1))
    status, _, body = await token_request(http, grant(client))
    assert status == 200
    assert claims_of(http, state, body["access_token"])["iat"] == int(clock().timestamp()) + 1
    assert state.tokens.active(body["access_token"], now=clock()) is not None


# Scope ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("permission", "requested", "status", "granted"),
    [
        ("ReadOnly", None, 200, "read"),
        ("ReadOnly", "read", 200, "read"),
        ("ReadOnly", "write", 400, None),
        ("ReadOnly", "read write", 400, None),
        ("CanEdit", None, 200, "read write"),
        ("CanEdit", "read", 200, "read"),
        ("CanEdit", "write", 200, "write"),
        ("CanEdit", "admin", 400, None),
    ],
)
async def test_scope_follows_the_permission_level(
    http: Http, state: ServiceState, permission: str, requested: str | None, status: int, granted: str | None
) -> None:
    client = add_client(state, "c", permission=permission)
    fields = grant(client, **({"scope": requested} if requested else {}))
    answer = await token_request(http, fields)
    assert answer[0] == status
    if granted is None:
        assert answer[2]["error"] == "invalid_scope"
    else:
        assert answer[2]["scope"] == granted


# Errors (RFC 6749 §5.2) ---------------------------------------------------------------------------
ERROR_CASES: list[tuple[str, Any, dict[str, str], int, str]] = [
    ("no grant_type", {"client_id": "{id}", "client_secret": "{secret}"}, {}, 400, "invalid_request"),
    ("password grant", {"grant_type": "password", "username": "u", "password": "p"}, {}, 400, "unsupported_grant_type"),
    ("authorization code", {"grant_type": "authorization_code", "code": "x"}, {}, 400, "unsupported_grant_type"),
    ("refresh token grant", {"grant_type": "refresh_token", "refresh_token": "x"}, {}, 400, "unsupported_grant_type"),
    ("repeated parameter", "grant_type=client_credentials&grant_type=client_credentials", {}, 400, "invalid_request"),
    (
        "secret without id",
        {"grant_type": "client_credentials", "client_secret": "{secret}"},
        {},
        401,
        "invalid_client",
    ),
    ("no client authentication", {"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
    ("id without secret", {"grant_type": "client_credentials", "client_id": "{id}"}, {}, 401, "invalid_client"),
    (
        "empty secret",
        {"grant_type": "client_credentials", "client_id": "{id}", "client_secret": ""},
        {},
        401,
        "invalid_client",
    ),
    (
        "wrong secret",
        {"grant_type": "client_credentials", "client_id": "{id}", "client_secret": "nope"},
        {},
        401,
        "invalid_client",
    ),
    (
        "unknown client",
        {"grant_type": "client_credentials", "client_id": "ghost", "client_secret": "{secret}"},
        {},
        401,
        "invalid_client",
    ),
    (
        "wrong namespace",
        {"grant_type": "client_credentials", "client_id": "team-b/{id}", "client_secret": "{secret}"},
        {},
        401,
        "invalid_client",
    ),
    (
        "bearer instead of basic",
        {"grant_type": "client_credentials"},
        {"Authorization": "Bearer abc"},
        401,
        "invalid_client",
    ),
    ("basic not base64", {"grant_type": "client_credentials"}, {"Authorization": "Basic %%%"}, 401, "invalid_client"),
    (
        "basic without colon",
        {"grant_type": "client_credentials"},
        {"Authorization": "Basic " + base64.b64encode(b"x").decode()},
        401,
        "invalid_client",
    ),
    (
        "basic and post secret",
        {"grant_type": "client_credentials", "client_id": "{id}", "client_secret": "{secret}"},
        {"Authorization": "basic"},
        400,
        "invalid_request",
    ),
    (
        "basic and another client_id",
        {"grant_type": "client_credentials", "client_id": "other"},
        {"Authorization": "basic"},
        400,
        "invalid_request",
    ),
]


@pytest.mark.parametrize(("case", "fields", "headers", "status", "error"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_errors_have_their_rfc_status(
    http: Http, state: ServiceState, case: str, fields: Any, headers: dict[str, str], status: int, error: str
) -> None:
    client = add_client(state, "billing")

    def filled(text: str) -> str:
        return text.replace("{id}", client.identifier).replace("{secret}", client.secret)

    form = fields if isinstance(fields, str) else {name: filled(value) for name, value in fields.items()}
    if headers.get("Authorization") == "basic":
        headers = {"Authorization": basic(client.identifier, client.secret)}
    answer_status, answer_headers, body = await token_request(http, form, headers=headers)
    assert (answer_status, body["error"]) == (status, error)
    assert set(body) <= {"error", "error_description"}
    assert client.secret not in body.get("error_description", "")
    assert answer_headers["Cache-Control"] == "no-store"
    if status == 401:
        assert answer_headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", '{"grant_type": "client_credentials"}'),
        ("text/plain", "grant_type=client_credentials"),
        (FORM, b"grant_type=\xff\xfe"),
        (FORM, "grant_type=client%FF"),
    ],
)
async def test_a_body_that_is_not_a_utf8_form_is_an_invalid_request(
    http: Http, content_type: str, body: str | bytes
) -> None:
    response = await http.post("/oauth2/token", data=body, headers={"Content-Type": content_type})
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_request"


async def test_only_post_is_allowed(http: Http) -> None:
    assert (await http.get("/oauth2/token")).status == 405


async def test_a_data_ingestion_key_is_an_unauthorized_client(http: Http, state: ServiceState) -> None:
    key = add_key(state, "ingest", key_type="Api")
    status, _, body = await token_request(http, grant(key))
    assert (status, body["error"]) == (400, "unauthorized_client")


# Unusable credentials all get the same answer ---------------------------------------------------------
UNUSABLE = [
    ("inactive client", "client", {"phase": "Inactive"}),
    ("pending client", "client", {"phase": "Pending"}),
    ("failed client", "client", {"phase": "Failed"}),
    ("deactivated client (spec, before the operator acts)", "client", {"active": False}),
    ("expired key", "key", {"phase": "Expired"}),
    ("disabled key", "key", {"phase": "Disabled"}),
    ("deactivated key", "key", {"active": False}),
]


@pytest.mark.parametrize(("case", "kind", "fields"), UNUSABLE, ids=[c[0] for c in UNUSABLE])
async def test_unusable_credentials_are_indistinguishable_from_unknown_ones(
    http: Http, state: ServiceState, case: str, kind: str, fields: dict[str, Any]
) -> None:
    minted = add_client(state, "c", **fields) if kind == "client" else add_key(state, "k", **fields)
    unusable = await token_request(http, grant(minted))
    unknown = await token_request(http, grant(minted, client_id="nobody"))
    wrong = await token_request(http, {**grant(add_client(state, "ok")), "client_secret": "wrong"})
    assert unusable[0] == unknown[0] == wrong[0] == 401
    assert unusable[2] == unknown[2] == wrong[2]


async def test_a_key_past_its_expiry_is_refused_even_if_the_operator_has_not_caught_up(
    http: Http, state: ServiceState, clock: FakeClock
) -> None:
    key = add_key(state, "k", expires_at=clock() + datetime.timedelta(seconds=5))
    assert (await token_request(http, grant(key)))[0] == 200
    clock.advance(5)
    assert (await token_request(http, grant(key)))[0] == 401


# argon2id cache -------------------------------------------------------------------------------------------
async def test_a_chosen_secret_is_hashed_once_then_answered_from_memory(
    http: Http, state: ServiceState, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = add_client(state, "chosen", password="s3cret-Pass")
    hashed: list[str] = []
    from credop.service import _authn

    real = _authn.secret_matches

    def counting(secret: str, verifier: str, **kwargs: Any) -> bool:
        hashed.append(verifier[:10])
        return real(secret, verifier, **kwargs)

    monkeypatch.setattr(_authn, "secret_matches", counting)
    for _ in range(5):
        assert (await token_request(http, grant(client)))[0] == 200
    assert len(hashed) == 1
    assert (await token_request(http, grant(client, client_secret="s3cret-Wrong")))[0] == 401
    assert len(hashed) == 2  # failures are never cached
    feed_secret(state, client.body, verifier=password_verifier("n3w-Secret!"))
    assert (await token_request(http, grant(client)))[0] == 401  # the old secret is gone with its verifier
    assert (await token_request(http, grant(client, client_secret="n3w-Secret!")))[0] == 200


async def test_a_flood_of_chosen_secret_checks_is_shed_not_queued(
    http: Http, state: ServiceState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from credop.service import _authn

    client = add_client(state, "chosen", password="s3cret-Pass")
    monkeypatch.setattr(_authn, "MAX_WAITING_HASHES", 0)
    status, headers, body = await token_request(http, grant(client))
    assert (status, body["error"], headers["Retry-After"]) == (503, "temporarily_unavailable", "1")


@pytest.mark.parametrize(
    ("presented", "logged"),
    [
        ("billing", "billing"),
        ("team-a/my.client.id", "team-a/my.client.id"),
        ("crcs_" + "a" * 19 + "000000", None),
        ("eyJhbGciOi.eyJzdWIi.c2ln", None),
        ("bad\nline", "bad?line"),
        ("bad\x00byte", "bad?byte"),
        ("x" * 500, "x" * 120 + "…"),
    ],
)
def test_what_the_log_says_about_a_known_client_id(presented: str, logged: str | None) -> None:
    from credop.domain.keyformat import CLIENT_SECRET, with_checksum
    from credop.service._authn import loggable_client_id

    if presented.startswith("crcs_"):
        presented = with_checksum(presented[:-6])
        assert CLIENT_SECRET.recognises(presented)
    shown = loggable_client_id(presented, known=True)
    if logged is None:
        assert shown.startswith("(unknown ID, fingerprint ")
        assert presented not in shown
    else:
        assert shown == logged


def test_an_unknown_client_id_is_logged_only_as_a_fingerprint() -> None:
    from credop.service._authn import loggable_client_id

    pasted_secret = "My-Own-Secret-42!"
    shown = loggable_client_id(pasted_secret, known=False)
    assert pasted_secret not in shown
    assert shown == loggable_client_id(pasted_secret, known=False), "the same ID gives the same fingerprint"
    assert shown != loggable_client_id("another-id", known=False)


# Rate limits ------------------------------------------------------------------------------------------------
async def test_failed_authentications_are_limited_per_client_id(
    http: Http, state: ServiceState, clock: FakeClock
) -> None:
    client = add_client(state, "target")
    for _ in range(3):
        assert (await token_request(http, grant(client, client_secret="guess")))[0] == 401
    status, headers, body = await token_request(http, grant(client))
    assert status == 429 and headers["Retry-After"] == "10" and body["error"] == "temporarily_unavailable"
    other = add_client(state, "bystander")
    assert (await token_request(http, grant(other)))[0] == 200
    clock.advance(10)
    assert (await token_request(http, grant(client)))[0] == 200


async def test_failed_authentications_are_limited_per_address(http: Http, state: ServiceState) -> None:
    client = add_client(state, "real")
    for index in range(6):
        assert (await token_request(http, grant(client, client_id=f"ghost-{index}")))[0] == 401
    status, headers, _ = await token_request(http, grant(client))
    assert status == 429 and int(headers["Retry-After"]) >= 1


async def test_failures_are_logged_with_the_client_id_and_never_the_secret(
    http: Http, state: ServiceState, caplog: pytest.LogCaptureFixture
) -> None:
    client = add_client(state, "logged")
    caplog.set_level(logging.INFO, logger="credop.service")
    await token_request(http, grant(client, client_secret="wrong-" + client.secret))
    await token_request(http, grant(client, client_id=client.secret))  # a secret pasted as the client ID
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "client logged" in text
    assert client.secret not in text
    assert "unknown ID, fingerprint" in text


# Usage -------------------------------------------------------------------------------------------------------
async def test_each_success_records_a_use_and_writes_are_batched(
    http: Http, state: ServiceState, clock: FakeClock
) -> None:
    client = add_client(state, "busy")
    for _ in range(20):
        assert (await token_request(http, grant(client)))[0] == 200
        clock.advance(1)
    assert await state.flush_usage() == 1
    assert await state.flush_usage() == 0
    clock.advance(59)
    assert (await token_request(http, grant(client)))[0] == 200
    assert await state.flush_usage() == 0  # an interval has not passed since the write
    clock.advance(1)
    assert await state.flush_usage() == 1
    assert [uid for uid, _ in recorded_usage(state)] == [client.uid, client.uid]
