"""Introspection (RFC 7662), revocation (RFC 7009), /v1/verify, discovery, health and metrics."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from aiohttp.test_utils import TestClient

from credop.domain.conditions import timestamp
from credop.domain.tokens import KEY_TOKEN_TYPE, key_token_claims
from credop.service import ServiceState
from credop.service._records import SERVICE_ACCOUNT_KEY
from tests.servicekit import (
    TEST_ISSUER,
    FakeClock,
    Minted,
    add_client,
    add_key,
    api_client_object,
    feed_secret,
    hmac_verifier,
    key_object,
)

FORM = "application/x-www-form-urlencoded"
Http = TestClient  # type: ignore[type-arg]


def credentials(minted: Minted) -> dict[str, str]:
    return {"client_id": minted.identifier, "client_secret": minted.secret}


async def form_post(http: Http, path: str, fields: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    response = await http.post(path, data=urlencode(fields), headers={"Content-Type": FORM})
    text = await response.text()
    return response.status, dict(response.headers), (await response.json()) if text else None


async def token_for(http: Http, minted: Minted, **extra: str) -> str:
    status, _, body = await form_post(
        http, "/oauth2/token", {"grant_type": "client_credentials", **credentials(minted), **extra}
    )
    assert status == 200, body
    return str(body["access_token"])


async def introspect(http: Http, caller: Minted, token: str) -> tuple[int, Any]:
    status, _, body = await form_post(http, "/oauth2/introspect", {"token": token, **credentials(caller)})
    return status, body


async def verify(http: Http, body: Any) -> tuple[int, Any]:
    response = await http.post("/v1/verify", json=body)
    return response.status, await response.json()


# Introspection ------------------------------------------------------------------------------------------
async def test_an_active_token_is_introspected_with_its_claims(http: Http, state: ServiceState) -> None:
    client = add_client(state, "billing", permission="CanEdit")
    resource_server = add_key(state, "rs")
    token = await token_for(http, client)
    status, body = await introspect(http, resource_server, token)
    assert status == 200
    assert body["active"] is True and body["scope"] == "read write" and body["client_id"] == "team-a/billing"
    assert body["iss"] == TEST_ISSUER and body["sub"] == "team-a/billing" and body["token_type"] == "Bearer"
    assert {"exp", "iat", "nbf", "jti", "aud"} <= set(body)


async def test_a_viewer_keys_token_names_its_accounts_in_claims_introspection_and_forward_auth(
    http: Http, state: ServiceState
) -> None:
    viewer = add_key(state, "viewer", roles=[{"name": "CloudAccountViewer", "scope": ["acct-1", "acct-2"]}])
    resource_server = add_key(state, "rs")
    token = await token_for(http, viewer)
    status, body = await introspect(http, resource_server, token)
    assert status == 200 and body["active"] is True
    assert body["roles"] == ["CloudAccountViewer"]
    assert body["role_accounts"] == {"CloudAccountViewer": ["acct-1", "acct-2"]}
    response = await http.get("/v1/authorize", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert json.loads(response.headers["X-Credop-Role-Accounts"]) == {"CloudAccountViewer": ["acct-1", "acct-2"]}
    assert response.headers["X-Credop-Roles"] == "CloudAccountViewer"


async def test_a_narrowed_keys_earlier_tokens_answer_only_what_it_still_covers(http: Http, state: ServiceState) -> None:
    viewer = add_key(state, "viewer", roles=[{"name": "CloudAccountViewer", "scope": ["acct-1", "acct-2"]}])
    resource_server = add_key(state, "rs")
    token = await token_for(http, viewer)
    narrowed = {
        **viewer.body,
        "spec": {**viewer.body["spec"], "roles": [{"name": "CloudAccountViewer", "scope": ["acct-2"]}]},
    }
    state.put_object("ServiceAccountKey", narrowed)
    status, body = await introspect(http, resource_server, token)
    assert status == 200 and body["role_accounts"] == {"CloudAccountViewer": ["acct-2"]}
    response = await http.get("/v1/authorize", headers={"Authorization": f"Bearer {token}"})
    assert json.loads(response.headers["X-Credop-Role-Accounts"]) == {"CloudAccountViewer": ["acct-2"]}
    widened = {
        **viewer.body,
        "spec": {**viewer.body["spec"], "roles": [{"name": "CloudAccountViewer", "scope": ["*"]}]},
    }
    state.put_object("ServiceAccountKey", widened)
    status, body = await introspect(http, resource_server, token)
    assert body["role_accounts"] == {"CloudAccountViewer": ["acct-1", "acct-2"]}


async def test_a_global_roles_accounts_are_all_accounts_said_explicitly(http: Http, state: ServiceState) -> None:
    admin = add_key(state, "admin", roles=[{"name": "GlobalAdmin"}])
    resource_server = add_key(state, "rs")
    status, body = await introspect(http, resource_server, await token_for(http, admin))
    assert status == 200 and body["role_accounts"] == {"GlobalAdmin": ["*"]}


INACTIVE_CASES = [
    "garbage",
    "expired",
    "revoked",
    "deactivated",
    "deleted",
    "recreated with the same name",
    "invalidated",
    "invalidation pending in the operator",
    "other tenant",
]


@pytest.mark.parametrize("case", INACTIVE_CASES)
async def test_an_inactive_token_is_only_active_false(
    http: Http, state: ServiceState, clock: FakeClock, case: str
) -> None:
    client = add_client(state, "billing", validity=300)
    caller = add_key(state, "rs", "team-b") if case == "other tenant" else add_key(state, "rs")
    token = "not.a.token" if case == "garbage" else await token_for(http, client)
    body = client.body
    if case == "expired":
        clock.advance(300)
    elif case == "revoked":
        assert (await form_post(http, "/oauth2/revoke", {"token": token, **credentials(client)}))[0] == 200
    elif case == "deactivated":
        state.put_object("ApiClient", {**body, "spec": {**body["spec"], "active": False}})
    elif case == "deleted":
        state.drop_object(body)
    elif case == "recreated with the same name":
        state.drop_object(body)
        add_client(state, "billing")
    elif case == "invalidated":
        clock.advance(1)
        state.put_object("ApiClient", api_client_object("billing", uid=client.uid, tokens_invalid_before=clock()))
    elif case == "invalidation pending in the operator":
        clock.advance(1)
        pending = api_client_object("billing", uid=client.uid, annotations={"credop.dev/invalidate-tokens": "now"})
        state.put_object("ApiClient", pending)
    status, answer = await introspect(http, caller, token)
    assert (status, answer) == (200, {"active": False})


async def test_a_downgraded_client_keeps_only_read_on_its_tokens(http: Http, state: ServiceState) -> None:
    client = add_client(state, "editor", permission="CanEdit")
    token = await token_for(http, client)
    state.put_object("ApiClient", api_client_object("editor", uid=client.uid, permission="ReadOnly"))
    status, answer = await verify(http, {"token": token, "method": "POST"})
    assert status == 200 and answer["scope"] == "read" and answer["methodAllowed"] is False


async def test_introspection_needs_an_authenticated_caller(http: Http, state: ServiceState) -> None:
    client = add_client(state, "billing")
    token = await token_for(http, client)
    status, headers, body = await form_post(http, "/oauth2/introspect", {"token": token})
    assert (status, body["error"]) == (401, "invalid_client") and "WWW-Authenticate" in headers
    status, _, body = await form_post(
        http, "/oauth2/introspect", {"token": token, "client_id": "billing", "client_secret": "x"}
    )
    assert (status, body["error"]) == (401, "invalid_client")
    status, _, body = await form_post(http, "/oauth2/introspect", credentials(client))
    assert (status, body["error"]) == (400, "invalid_request")


# Revocation -----------------------------------------------------------------------------------------------
async def test_revoking_a_token_shares_it_and_rejects_it(http: Http, state: ServiceState, clock: FakeClock) -> None:
    client = add_client(state, "billing", validity=300)
    token = await token_for(http, client)
    other = await token_for(http, client)
    status, headers, _ = await form_post(
        http, "/oauth2/revoke", {"token": token, "token_type_hint": "refresh_token", **credentials(client)}
    )
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert (await introspect(http, client, token))[1] == {"active": False}
    assert (await introspect(http, client, other))[1]["active"] is True
    shared = state.publisher.entries  # type: ignore[attr-defined]
    assert list(shared["team-a"].values()) == [str(int(clock().timestamp()) + 300)]


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
async def test_revoking_an_unknown_token_is_a_success(http: Http, state: ServiceState, token: str) -> None:
    client = add_client(state, "billing")
    status, _, body = await form_post(http, "/oauth2/revoke", {"token": token, **credentials(client)})
    if token:
        assert status == 200
    else:
        assert (status, body["error"]) == (400, "invalid_request")


async def test_revoking_an_expired_token_changes_nothing(http: Http, state: ServiceState, clock: FakeClock) -> None:
    client = add_client(state, "billing", validity=60)
    token = await token_for(http, client)
    clock.advance(60)
    assert (await form_post(http, "/oauth2/revoke", {"token": token, **credentials(client)}))[0] == 200
    assert state.publisher.entries == {}  # type: ignore[attr-defined]


async def test_only_the_token_holder_may_revoke_it(http: Http, state: ServiceState) -> None:
    owner = add_client(state, "owner")
    stranger = add_client(state, "stranger")
    token = await token_for(http, owner)
    status, _, body = await form_post(http, "/oauth2/revoke", {"token": token, **credentials(stranger)})
    assert (status, body["error"]) == (400, "unauthorized_client")
    assert (await introspect(http, owner, token))[1]["active"] is True
    status, _, body = await form_post(http, "/oauth2/revoke", {"token": token})
    assert (status, body["error"]) == (401, "invalid_client")


async def test_a_key_secret_is_not_revocable_as_a_token(http: Http, state: ServiceState) -> None:
    client = add_client(state, "owner")
    key_jwt = state.keys.sign({"iss": TEST_ISSUER, "access_key_id": "crak_x"}, now=state.now(), typ=KEY_TOKEN_TYPE)
    status, _, body = await form_post(http, "/oauth2/revoke", {"token": key_jwt, **credentials(client)})
    assert (status, body["error"]) == (400, "unsupported_token_type")


async def test_when_sharing_fails_the_answer_is_503_and_this_replica_still_rejects(
    http: Http, state: ServiceState
) -> None:
    class Broken:
        async def publish(self, namespace: str, jti: str, expires_at: int, *, prune: list[str]) -> None:
            raise ConnectionError("the API server is away")

        async def prune(self, namespace: str, expired: list[str]) -> None:
            raise ConnectionError("the API server is away")

    state.publisher = Broken()
    client = add_client(state, "billing")
    token = await token_for(http, client)
    status, headers, body = await form_post(http, "/oauth2/revoke", {"token": token, **credentials(client)})
    assert (status, body["error"], headers["Retry-After"]) == (503, "temporarily_unavailable", "1")
    assert (await introspect(http, client, token))[1] == {"active": False}


async def test_revocations_are_limited_per_client_and_capped_per_namespace(http: Http, state: ServiceState) -> None:
    flooder = add_client(state, "flooder", validity=300)
    answers = []
    for _ in range(25):
        token = await token_for(http, flooder)
        answers.append((await form_post(http, "/oauth2/revoke", {"token": token, **credentials(flooder)}))[0])
    assert answers[:20] == [200] * 20 and set(answers[20:]) == {429}
    other = add_client(state, "other", "team-b", validity=300)
    token = await token_for(http, other)
    assert (await form_post(http, "/oauth2/revoke", {"token": token, **credentials(other)}))[0] == 200
    state.settings = dataclasses.replace(state.settings, max_revocations_per_namespace=1)
    neighbour = add_client(state, "neighbour", "team-b", validity=300)
    token = await token_for(http, neighbour)
    status, _, body = await form_post(http, "/oauth2/revoke", {"token": token, **credentials(neighbour)})
    assert status == 503 and "invalidate-tokens" in body["error_description"]


# /v1/verify -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("permission", "method", "allowed"),
    [("ReadOnly", "GET", True), ("ReadOnly", "post", False), ("CanEdit", "DELETE", True), ("CanEdit", "get", True)],
)
async def test_verify_a_token_says_what_it_may_do(
    http: Http, state: ServiceState, permission: str, method: str, allowed: bool
) -> None:
    client = add_client(state, "c", permission=permission)
    status, answer = await verify(http, {"token": await token_for(http, client), "method": method})
    assert status == 200
    assert answer["valid"] is True and answer["kind"] == "ApiClient" and answer["clientId"] == "c"
    assert answer["permissionLevel"] == permission and answer["tenant"] == "team-a"
    assert answer["methodAllowed"] is allowed
    assert ("POST" in answer["allowedMethods"]) is (permission == "CanEdit")


async def test_verify_a_token_says_when_it_expires(http: Http, state: ServiceState) -> None:
    token = await token_for(http, add_client(state, "c", validity=300))
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert (await verify(http, {"token": token}))[1]["expiresAt"] == timestamp(
        datetime.datetime.fromtimestamp(expires, datetime.UTC)
    )


async def test_verify_describes_a_changed_credential_anew(http: Http, state: ServiceState) -> None:
    """Answers are built once per credential record and scopes; a new record is described again."""
    viewer = [{"name": "CloudAccountViewer", "scope": ["acct-1"]}]
    key = add_key(state, "k", roles=viewer)
    request = {"accessKeyId": key.identifier, "secretKey": key.secret}
    assert (await verify(http, request))[1]["roles"] == viewer
    widened = [{"name": "CloudAccountViewer", "scope": ["acct-1", "acct-2"]}]
    uid = key.body["metadata"]["uid"]
    state.put_object(SERVICE_ACCOUNT_KEY, key_object("k", access_key_id=key.identifier, roles=widened, uid=uid))
    assert (await verify(http, request))[1]["roles"] == widened


async def test_verify_an_access_key_and_secret(http: Http, state: ServiceState, clock: FakeClock) -> None:
    roles = [{"name": "CloudAccountViewer", "scope": ["acct-1"]}]
    key = add_key(state, "k", roles=roles, expires_at=clock() + datetime.timedelta(days=1))
    status, answer = await verify(http, {"accessKeyId": key.identifier, "secretKey": key.secret, "method": "GET"})
    assert status == 200
    assert answer == {
        "valid": True,
        "tenant": "team-a",
        "kind": "ServiceAccountKey",
        "name": "k",
        "subject": "ci-bot",
        "accessKeyId": key.identifier,
        "roles": roles,
        "scope": "read",
        "allowedMethods": ["GET", "HEAD", "OPTIONS"],
        "expiresAt": "2030-01-02T00:00:00Z",
        "methodAllowed": True,
    }
    assert await state.flush_usage() == 1  # a verification is a use of the key


async def test_verify_a_client_id_and_secret(http: Http, state: ServiceState) -> None:
    client = add_client(state, "c", permission="CanEdit")
    status, answer = await verify(http, {"clientId": client.namespaced_id, "clientSecret": client.secret})
    assert status == 200 and answer["valid"] is True and answer["scope"] == "read write"


@pytest.mark.parametrize(
    "case", ["wrong secret", "unknown key", "inactive key", "deactivated key", "expired key", "garbage token"]
)
async def test_verify_says_only_valid_false_for_anything_wrong(
    http: Http, state: ServiceState, clock: FakeClock, case: str
) -> None:
    key = add_key(
        state,
        "k",
        phase="Inactive" if case == "inactive key" else "Active",
        active=case != "deactivated key",
        expires_at=clock() - datetime.timedelta(seconds=1) if case == "expired key" else None,
    )
    request: dict[str, str] = {"accessKeyId": key.identifier, "secretKey": key.secret}
    if case == "wrong secret":
        request["secretKey"] = "crsk_wrong"
    elif case == "unknown key":
        request["accessKeyId"] = "crak_unknown"
    elif case == "garbage token":
        request = {"token": "x.y.z"}
    assert await verify(http, request) == (200, {"valid": False})


async def test_a_jwt_format_key_is_verified_against_its_verifier(
    http: Http, state: ServiceState, clock: FakeClock
) -> None:
    body = key_object("jwt-key", access_key_id="crak_jwtkey", roles=[{"name": "GlobalAdmin"}])
    state.put_object("ServiceAccountKey", body)
    claims = key_token_claims(
        issuer=TEST_ISSUER,
        namespace="team-a",
        access_key_id="crak_jwtkey",
        service_account="ci-bot",
        roles=[{"name": "GlobalAdmin"}],
        now=clock(),
        expires_at=None,
        jti="j",
    )
    secret = state.keys.sign(claims, now=clock(), typ=KEY_TOKEN_TYPE)
    feed_secret(state, body, verifier=hmac_verifier(state, secret))
    status, answer = await verify(http, {"token": secret})
    assert status == 200 and answer["valid"] is True and answer["accessKeyId"] == "crak_jwtkey"
    assert answer["scope"] == "read write"
    feed_secret(state, body, verifier=hmac_verifier(state, "a rotated secret"))
    assert await verify(http, {"token": secret}) == (200, {"valid": False})
    forged = state.keys.sign({**claims, "jti": "other"}, now=clock(), typ=KEY_TOKEN_TYPE)
    assert await verify(http, {"token": forged}) == (200, {"valid": False})


@pytest.mark.parametrize(
    "body",
    [
        [],
        "token",
        {},
        {"token": 3},
        {"token": ""},
        {"accessKeyId": "crak_x"},
        {"accessKeyId": "crak_x", "secretKey": "s", "clientId": "c"},
        {"token": "t", "extra": 1},
        {"token": "t", "method": 5},
        {"token": "t", "accessKeyId": "crak_x", "secretKey": "s"},
    ],
)
async def test_verify_refuses_malformed_requests(http: Http, body: Any) -> None:
    status, answer = await verify(http, body)
    assert (status, answer["error"]) == (400, "invalid_request")


async def test_verify_needs_json(http: Http) -> None:
    response = await http.post("/v1/verify", data="token=x", headers={"Content-Type": FORM})
    assert response.status == 400
    response = await http.post("/v1/verify", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400


async def test_verify_failures_are_rate_limited(http: Http, state: ServiceState) -> None:
    key = add_key(state, "k")
    answers = [await verify(http, {"accessKeyId": key.identifier, "secretKey": "crsk_guess"}) for _ in range(11)]
    assert answers[0] == (200, {"valid": False})
    assert answers[-1][0] == 429


# Discovery ---------------------------------------------------------------------------------------------------
async def test_the_jwks_publishes_public_keys_only(http: Http, state: ServiceState) -> None:
    response = await http.get("/.well-known/jwks.json")
    assert response.status == 200 and "max-age" in response.headers["Cache-Control"]
    (key,) = (await response.json())["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert (key["kty"], key["use"], key["alg"]) == ("EC", "sig", "ES256")


async def test_the_metadata_describes_this_server(http: Http, state: ServiceState) -> None:
    response = await http.get("/.well-known/oauth-authorization-server")
    metadata = await response.json()
    assert metadata["issuer"] == TEST_ISSUER
    assert metadata["token_endpoint"] == f"{TEST_ISSUER}/oauth2/token"
    assert metadata["jwks_uri"] == f"{TEST_ISSUER}/.well-known/jwks.json"
    assert metadata["introspection_endpoint"] == f"{TEST_ISSUER}/oauth2/introspect"
    assert metadata["revocation_endpoint"] == f"{TEST_ISSUER}/oauth2/revoke"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert metadata["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]


# Operations ---------------------------------------------------------------------------------------------------
async def test_health_and_readiness(http: Http, state: ServiceState) -> None:
    assert (await http.get("/healthz")).status == 200
    assert (await http.get("/readyz")).status == 200
    state.unsynced.add("apiclients")
    response = await http.get("/readyz")
    assert response.status == 503 and "apiclients" in await response.text()


async def test_metrics_count_tokens_verifications_and_failures_without_secrets(http: Http, state: ServiceState) -> None:
    client = add_client(state, "c")
    token = await token_for(http, client)
    await form_post(http, "/oauth2/token", {"grant_type": "client_credentials", "client_id": "c", "client_secret": "x"})
    await verify(http, {"token": token})
    text = await (await http.get("/metrics")).text()
    assert 'credop_tokens_issued_total{kind="ApiClient"} 1.0' in text
    assert 'credop_request_failures_total{reason="invalid_client"} 1.0' in text
    assert 'credop_verifications_total{endpoint="verify",result="valid"} 1.0' in text
    assert 'credop_request_duration_seconds_bucket{endpoint="token"' in text
    assert client.secret not in text and token not in text and '"c"' not in text


async def test_the_openapi_document_lists_every_endpoint(http: Http) -> None:
    document = await (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/oauth2/token",
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/.well-known/jwks.json",
        "/.well-known/key-jwks.json",
        "/v1/authorize",
        "/.well-known/oauth-authorization-server",
        "/v1/verify",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }


async def test_an_unexpected_error_is_a_bare_500(
    http: Http, state: ServiceState, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom with details")

    monkeypatch.setattr(state.view, "find", explode)
    response = await http.post(
        "/oauth2/token",
        data=urlencode({"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}),
        headers={"Content-Type": FORM},
    )
    assert response.status == 500 and await response.json() == {"error": "server_error"}
