"""Attacks with tokens: ambiguous identities across tenants, key JWTs passed off as access tokens, revocation floods."""

from __future__ import annotations

import uuid

import jwt

from tests.cluster.hostile import HostileBed, active_client, active_key


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def test_same_named_clients_in_two_tenants_get_distinct_qualified_identities(hostile: HostileBed) -> None:
    first, second = hostile.tenant(prefix="alpha"), hostile.tenant(prefix="beta")
    name = f"shared-{uuid.uuid4().hex[:6]}"
    first_id, first_secret = active_client(first, name)
    second_id, second_secret = active_client(second, name)
    first_claims = claims(hostile.token_when_ready(first_id, first_secret).body["access_token"])
    second_claims = claims(hostile.token_when_ready(second_id, second_secret).body["access_token"])
    assert first_claims["sub"] == first_id and first_claims["client_id"] == first_id
    assert second_claims["sub"] == second_id and second_claims["client_id"] == second_id
    assert first_claims["tenant"] == first.namespace and second_claims["tenant"] == second.namespace
    bare = hostile.token(name, first_secret)
    assert bare.status == 401 and bare.body["error"] == "invalid_client"
    assert "namespace" in bare.body["error_description"], "the answer says to qualify the ID"


def test_a_keys_subject_is_qualified_by_its_tenant(hostile: HostileBed) -> None:
    first, second = hostile.tenant(prefix="alpha"), hostile.tenant(prefix="beta")
    subjects = []
    for tenant in (first, second):
        access_key_id, secret = active_key(tenant, "bot-key", roles=[{"name": "GlobalViewer"}])
        issued = hostile.token_when_ready(f"{tenant.namespace}/{access_key_id}", secret)
        subjects.append(claims(issued.body["access_token"])["sub"])
    assert subjects == [f"{first.namespace}/bot", f"{second.namespace}/bot"]


def test_a_jwt_key_is_not_accepted_as_an_access_token(hostile: HostileBed) -> None:
    attacker = hostile.tenant(prefix="attacker")
    access_key_id, key_jwt = active_key(attacker, "jwt-key", format="JWT", roles=[{"name": "GlobalAdmin"}])
    header, body = jwt.get_unverified_header(key_jwt), claims(key_jwt)
    access_kids = {key["kid"] for key in hostile.get_json("/.well-known/jwks.json")["keys"]}
    key_kids = {key["kid"] for key in hostile.get_json("/.well-known/key-jwks.json")["keys"]}
    assert header["kid"] not in access_kids and header["kid"] in key_kids, "key JWTs have signing keys of their own"
    metadata = hostile.get_json("/.well-known/oauth-authorization-server")
    assert body["aud"] != metadata["issuer"], "no access-token consumer accepts a key JWT's audience"
    assert hostile.verify({"token": key_jwt}).body.get("tokenType") != "access_token"
    client_id, secret = active_client(attacker, "introspector")
    introspected = hostile.post(
        "/oauth2/introspect", {"token": key_jwt, "client_id": client_id, "client_secret": secret}
    )
    assert introspected.status == 200 and introspected.body == {"active": False}
    valid = hostile.verify({"accessKeyId": access_key_id, "secretKey": key_jwt})
    assert valid.body["valid"] is True, "the key itself still works as a key"


def test_one_tenant_cannot_fill_the_revocation_list_for_everyone(hostile: HostileBed) -> None:
    attacker, victim = hostile.tenant(prefix="attacker"), hostile.tenant(prefix="victim")
    client_id, secret = active_client(attacker, "flooder")
    statuses = []
    for _ in range(60):
        issued = hostile.token(client_id, secret)
        if issued.status != 200:
            statuses.append(issued.status)
            continue
        revoked = hostile.post(
            "/oauth2/revoke", {"token": issued.body["access_token"], "client_id": client_id, "client_secret": secret}
        )
        statuses.append(revoked.status)
    assert 429 in statuses, "revocations are rate-limited per client"
    victim_id, victim_secret = active_client(victim, "careful")
    token = hostile.token_when_ready(victim_id, victim_secret).body["access_token"]
    answer = hostile.post("/oauth2/revoke", {"token": token, "client_id": victim_id, "client_secret": victim_secret})
    assert answer.status == 200
    assert hostile.verify({"token": token}).body["valid"] is False
