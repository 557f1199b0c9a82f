"""The credential service's HTTP endpoints, as aiohttp handlers over a :class:`ServiceState`.

Handlers parse (``_oauth``), decide (``_authn``, ``_tokens``, the view) and
answer; nothing here calls the Kubernetes API except a revocation's one
ConfigMap write. Every answer about tokens or credentials carries
``Cache-Control: no-store``; errors are RFC 6749 §5.2 JSON objects.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST

from credop import audit
from credop.domain.conditions import RFC3339_SECONDS, timestamp
from credop.domain.tokens import (
    ACCESS_TOKEN_TYPE,
    KEY_TOKEN_TYPE,
    ROLE_ACCOUNTS_CLAIM,
    TOKEN_CLAIM_CREDENTIAL_UID,
    methods_for_scopes,
    narrowed_scopes,
    token_is_current,
)
from credop.service._addresses import client_address, trusted_networks
from credop.service._authorize import METHODS as AUTHORIZED_METHODS
from credop.service._authorize import PREFIX as AUTHORIZE_PREFIX
from credop.service._authorize import authorize
from credop.service._jwt import NoSigningKeyError, compact_json
from credop.service._oauth import OAuthError, Presented, grant_type_of, parse_form, presented_client, token_of
from credop.service._openapi import openapi_document
from credop.service._ratelimit import retry_after_header
from credop.service._records import API_CLIENT, SERVICE_ACCOUNT_KEY, Credential
from credop.service._state import ServiceState
from credop.service._tokens import presented_type

logger = logging.getLogger("credop.service.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
INTROSPECTED_CLAIMS = ("exp", "iat", "nbf", "sub", "aud", "iss", "jti", "client_id", "tenant")
VERIFY_FIELDS = {"token", "accessKeyId", "secretKey", "clientId", "clientSecret", "method"}
JSON_MEDIA_TYPE = "application/json"
MAX_REMEMBERED_DESCRIPTIONS = 10_000
"""About 1 KB each: at most about 10 MB, cleared when full (rebuilding one costs 2 us)."""
_JSON_HEADERS: CIMultiDict[str] = CIMultiDict({"Content-Type": JSON_MEDIA_TYPE})
_JSON_NO_STORE_HEADERS: CIMultiDict[str] = CIMultiDict({"Content-Type": JSON_MEDIA_TYPE, **NO_STORE})


def json_response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Compact JSON; the usual header sets are prebuilt (aiohttp copies them into each answer)."""
    if headers is None:
        all_headers = _JSON_HEADERS
    elif headers is NO_STORE:
        all_headers = _JSON_NO_STORE_HEADERS
    else:
        all_headers = CIMultiDict(headers)
        all_headers["Content-Type"] = JSON_MEDIA_TYPE
    return web.Response(body=compact_json(body).encode(), status=status, headers=all_headers)


class Endpoints:
    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self._trusted = trusted_networks(state.settings.trusted_proxies)
        self._descriptions: dict[tuple[str, tuple[str, ...]], tuple[Credential, dict[str, Any]]] = {}
        """Verify answers without ``expiresAt``, by credential uid and scopes, with the record they describe."""
        metrics = state.metrics
        self._issued = {kind: metrics.tokens_issued.labels(kind) for kind in (API_CLIENT, SERVICE_ACCOUNT_KEY)}
        self._results = {
            (endpoint, result): metrics.verifications.labels(endpoint, result)
            for endpoint, result in (
                ("introspect", "active"),
                ("introspect", "inactive"),
                ("verify", "valid"),
                ("verify", "invalid"),
            )
        }

    def remote_of(self, request: web.Request) -> str:
        if not self._trusted:
            return request.remote or "unknown"
        return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted=self._trusted)

    # OAuth 2.0 ----------------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        """RFC 6749 §4.4 client credentials grant; RFC 9068 JWT access tokens."""
        state, now = self.state, self.state.now()
        form = parse_form(await request.read(), request.headers.get("Content-Type"))
        grant_type_of(form)
        presented = presented_client(form, request.headers.get("Authorization"))
        credential = await state.authenticator.authenticate(presented, remote=self.remote_of(request), now=now)
        if credential.kind == SERVICE_ACCOUNT_KEY and credential.key_type != "Access":
            raise OAuthError("unauthorized_client", "data ingestion keys cannot get access tokens")
        scopes = narrowed_scopes(form.get("scope"), state.view.allowed_scopes(credential))
        if scopes is None:
            raise OAuthError("invalid_scope", "the requested scope exceeds what the client is allowed")
        issued = state.tokens.issue(credential, scopes, now=now)
        self._issued[credential.kind].inc()
        audit.token_issued(credential=credential, claims=issued.claims, scopes=scopes)
        # The token is base64url and dots, the scopes are names from the allow-list: only the scope is escaped.
        answer = (
            f'{{"access_token":"{issued.token}","token_type":"Bearer",'
            f'"expires_in":{issued.expires_in(now)},"scope":{encode_basestring_ascii(" ".join(scopes))}}}'
        )
        return web.Response(body=answer.encode(), headers=_JSON_NO_STORE_HEADERS)

    async def introspect(self, request: web.Request) -> web.Response:
        """RFC 7662: the caller authenticates; a token of another tenant, or not active, is ``active: false``."""
        state, now = self.state, self.state.now()
        form = parse_form(await request.read(), request.headers.get("Content-Type"))
        presented = presented_client(form, request.headers.get("Authorization"))
        caller = await state.authenticator.authenticate(presented, remote=self.remote_of(request), now=now)
        active = state.tokens.active(token_of(form), now=now)
        if active is None or active.credential.namespace != caller.namespace:
            self._results["introspect", "inactive"].inc()
            return json_response({"active": False}, headers=NO_STORE)
        self._results["introspect", "active"].inc()
        answer: dict[str, Any] = {"active": True, "scope": " ".join(active.scopes), "token_type": "Bearer"}
        answer.update({claim: active.claims[claim] for claim in INTROSPECTED_CLAIMS if claim in active.claims})
        if active.role_accounts or "roles" in active.claims:
            answer["roles"] = list(active.role_accounts)
            answer[ROLE_ACCOUNTS_CLAIM] = {role: list(accounts) for role, accounts in active.role_accounts.items()}
        return json_response(answer, headers=NO_STORE)

    async def revoke(self, request: web.Request) -> web.Response:
        """RFC 7009: revoke the caller's own token; an unknown or expired token is a success."""
        state, now = self.state, self.state.now()
        form = parse_form(await request.read(), request.headers.get("Content-Type"))
        presented = presented_client(form, request.headers.get("Authorization"))
        caller = await state.authenticator.authenticate(presented, remote=self.remote_of(request), now=now)
        token = token_of(form)
        if presented_type(token) == KEY_TOKEN_TYPE:
            raise OAuthError("unsupported_token_type", "access keys are revoked by rotating or deactivating them")
        read = state.tokens.signed(token, now=now)
        if read is None or not token_is_current(read.claims, now=now):
            return web.Response(status=200, headers=NO_STORE)
        if read.claims.get(TOKEN_CLAIM_CREDENTIAL_UID) != caller.uid:
            raise OAuthError("unauthorized_client", "the token was not issued to this client")
        jti = str(read.claims.get("jti", ""))
        if jti not in state.revoked:
            self._refuse_beyond_the_revocation_limits(caller, now=now)
            await self._revoke(caller.namespace, jti, int(read.claims["exp"]), now=now)
        return web.Response(status=200, headers=NO_STORE)

    def _refuse_beyond_the_revocation_limits(self, caller: Credential, *, now: datetime.datetime) -> None:
        """One client's revocations are rate-limited, and one tenant's list is capped: nobody else's fills."""
        state, instant = self.state, now.timestamp()
        wait = state.revocations.retry_after(caller.uid, now=instant)
        if wait > 0:
            raise OAuthError(
                "temporarily_unavailable", "too many revocations by this client; retry later", status=429,
                retry_after=retry_after_header(wait),
            )  # fmt: skip
        if state.revoked.count(caller.namespace) >= state.settings.max_revocations_per_namespace:
            raise OAuthError(
                "temporarily_unavailable",
                "this namespace's revocation list is full; invalidate the client's tokens instead "
                "(annotate it credop.dev/invalidate-tokens)",
                status=503,
                retry_after="60",
            )
        state.revocations.record_failure(caller.uid, now=instant)

    async def _revoke(self, namespace: str, jti: str, expires_at: int, *, now: datetime.datetime) -> None:
        state = self.state
        state.revoked.add_local(jti, expires_at)
        state.metrics.revocations.inc()
        prune = state.revoked.expired(now=now.timestamp()).get(namespace, [])
        try:
            await state.publisher.publish(namespace, jti, expires_at, prune=prune)
        except Exception as error:
            logger.warning("publishing a revocation failed (%s); this replica rejects the token", type(error).__name__)
            raise OAuthError(
                "temporarily_unavailable", "the revocation could not be shared; retry", status=503, retry_after="1"
            ) from None

    # Discovery ----------------------------------------------------------------------------
    async def jwks(self, request: web.Request) -> web.Response:
        if not self.state.keys.loaded:
            raise NoSigningKeyError("no keys yet")
        headers = {"Cache-Control": f"public, max-age={self.state.settings.jwks_max_age}"}
        return json_response(self.state.keys.jwks(now=self.state.now()), headers=headers)

    async def key_jwks(self, request: web.Request) -> web.Response:
        """The keys that sign JWT-format keys: a set of its own, so no access-token verifier trusts them."""
        keyring = self.state.view.keyring
        if keyring is None:
            raise NoSigningKeyError("no keys yet")
        keys = [key.public_jwk() for key in sorted(keyring.key_signing_keys, key=lambda key: key.kid)]
        headers = {"Cache-Control": f"public, max-age={self.state.settings.jwks_max_age}"}
        return json_response({"keys": keys}, headers=headers)

    async def metadata(self, request: web.Request) -> web.Response:
        """RFC 8414 authorization server metadata."""
        issuer = self.state.keys.issuer
        auth_methods = ["client_secret_basic", "client_secret_post"]
        answer = {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth2/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "introspection_endpoint": f"{issuer}/oauth2/introspect",
            "revocation_endpoint": f"{issuer}/oauth2/revoke",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "scopes_supported": ["read", "write"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "credop_verify_endpoint": f"{issuer}/v1/verify",
            "credop_key_jwks_uri": f"{issuer}/.well-known/key-jwks.json",
        }
        return json_response(answer, headers={"Cache-Control": "public, max-age=300"})

    # Resource servers ---------------------------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        """Is this access key + secret, client + secret, or token valid now, and what may it do?"""
        request_body = await _json_object(request)
        method = _optional_string(request_body, "method")
        if "token" in request_body:
            if set(request_body) - {"token", "method"}:
                raise OAuthError("invalid_request", "send a token or a secret, not both")
            answer = await self._verify_token(_string(request_body, "token"), remote=self.remote_of(request))
        else:
            answer = await self._verify_secret(_presented_pair(request_body), remote=self.remote_of(request))
        if answer.get("valid") and method is not None:
            answer["methodAllowed"] = method.upper() in answer["allowedMethods"]
        self._results["verify", "valid" if answer["valid"] else "invalid"].inc()
        return json_response(answer, headers=NO_STORE)

    async def _verify_token(self, token: str, *, remote: str) -> dict[str, Any]:
        state, now = self.state, self.state.now()
        kind = presented_type(token)
        if kind == ACCESS_TOKEN_TYPE:
            active = state.tokens.active(token, now=now)
            if active is None:
                return {"valid": False}
            expires = time.strftime(RFC3339_SECONDS, time.gmtime(int(active.claims["exp"])))
            return self._describe(active.credential, active.scopes, expires)
        key = state.tokens.key_of_key_token(token) if kind == KEY_TOKEN_TYPE else None
        if key is None:
            return {"valid": False}
        return await self._verify_secret(Presented(key.identifier, (token,), "client_secret_post"), remote=remote)

    async def _verify_secret(self, presented: Presented, *, remote: str) -> dict[str, Any]:
        state, now = self.state, self.state.now()
        try:
            credential = await state.authenticator.authenticate(presented, remote=remote, now=now)
        except OAuthError as error:
            if error.status == 429:
                raise
            return {"valid": False}
        expires = timestamp(credential.expires_at) if credential.expires_at is not None else None
        return self._describe(credential, state.view.allowed_scopes(credential), expires)

    def _describe(self, credential: Credential, scopes: tuple[str, ...], expires_at: str | None) -> dict[str, Any]:
        """A fresh answer; what the credential's record and the scopes fix is built once per record."""
        key = (credential.uid, scopes)
        known = self._descriptions.get(key)
        if known is None or known[0] is not credential:
            if len(self._descriptions) >= MAX_REMEMBERED_DESCRIPTIONS:
                self._descriptions.clear()
            known = self._descriptions[key] = (credential, self._description(credential, scopes))
        return {**known[1], "expiresAt": expires_at}

    @staticmethod
    def _description(credential: Credential, scopes: tuple[str, ...]) -> dict[str, Any]:
        identifier = "clientId" if credential.kind == API_CLIENT else "accessKeyId"
        answer: dict[str, Any] = {
            "valid": True,
            "tenant": credential.namespace,
            "kind": credential.kind,
            "name": credential.name,
            "subject": credential.subject,
            identifier: credential.identifier,
            "roles": [role.to_wire() for role in credential.roles],
            "scope": " ".join(scopes),
            "allowedMethods": list(methods_for_scopes(scopes)),
            "expiresAt": None,
        }
        if credential.kind == API_CLIENT:
            answer["permissionLevel"] = credential.permission
        return answer

    # Operations ---------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.Response:
        if self.state.ready:
            return web.Response(text="ready")
        waiting = sorted(self.state.unsynced) or ["credop's keys"]
        return web.Response(status=503, text="waiting for: " + ", ".join(waiting))

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.state.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi_document(self.state.keys.issuer))


async def _json_object(request: web.Request) -> dict[str, Any]:
    media_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise OAuthError("invalid_request", "the request body must be application/json")
    try:
        parsed = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise OAuthError("invalid_request", "the request body is not valid JSON") from None
    if not isinstance(parsed, dict) or set(parsed) - VERIFY_FIELDS:
        raise OAuthError("invalid_request", "the request body must be an object with the documented fields")
    return parsed


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise OAuthError("invalid_request", "fields must be non-empty strings")
    return value


def _optional_string(body: Mapping[str, Any], name: str) -> str | None:
    return _string(body, name) if name in body else None


def _presented_pair(body: Mapping[str, Any]) -> Presented:
    """accessKeyId + secretKey, or clientId + clientSecret: exactly one pair."""
    if "accessKeyId" in body or "secretKey" in body:
        if "clientId" in body or "clientSecret" in body:
            raise OAuthError("invalid_request", "send one credential: an access key or a client")
        return Presented(_string(body, "accessKeyId"), (_string(body, "secretKey"),), "client_secret_post")
    if "clientId" in body or "clientSecret" in body:
        return Presented(_string(body, "clientId"), (_string(body, "clientSecret"),), "client_secret_post")
    raise OAuthError("invalid_request", "send a token, an access key and secret key, or a client ID and secret")


def guarded(state: ServiceState, name: str, handler: Handler) -> Handler:
    """Time the handler; turn OAuth errors into their answers and anything unexpected into a bare 500."""
    latency = state.metrics.latency.labels(name)
    failures = state.metrics.failures

    async def answer(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await handler(request)
        except OAuthError as error:
            failures.labels("rate_limited" if error.status == 429 else error.error).inc()
            return json_response(error.body(), status=error.status, headers=error.headers())
        except NoSigningKeyError:
            unavailable = OAuthError("temporarily_unavailable", "the service is starting", status=503, retry_after="1")
            return json_response(unavailable.body(), status=503, headers=unavailable.headers())
        except web.HTTPException:
            raise
        except Exception:
            logger.exception("%s failed", name)
            return json_response({"error": "server_error"}, status=500, headers=NO_STORE)
        finally:
            latency.observe(time.perf_counter() - started)

    return answer


def _forward_auth(state: ServiceState) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return authorize(state, request)

    return handler


def build_metrics_app(state: ServiceState) -> web.Application:
    """/metrics alone, for a port of its own."""
    app = web.Application()
    app.router.add_route("GET", "/metrics", guarded(state, "metrics", Endpoints(state).metrics))
    return app


def build_app(state: ServiceState, *, metrics: bool = True) -> web.Application:
    """The aiohttp application serving every endpoint of ``state`` (/metrics too, unless served apart)."""
    endpoints = Endpoints(state)
    app = web.Application(client_max_size=state.settings.max_body_bytes)
    routes = [
        ("POST", "/oauth2/token", "token", endpoints.token),
        ("POST", "/oauth2/introspect", "introspect", endpoints.introspect),
        ("POST", "/oauth2/revoke", "revoke", endpoints.revoke),
        ("GET", "/.well-known/jwks.json", "jwks", endpoints.jwks),
        ("GET", "/.well-known/key-jwks.json", "key_jwks", endpoints.key_jwks),
        ("GET", "/.well-known/oauth-authorization-server", "metadata", endpoints.metadata),
        ("POST", "/v1/verify", "verify", endpoints.verify),
        ("GET", "/healthz", "healthz", endpoints.healthz),
        ("GET", "/readyz", "readyz", endpoints.readyz),
        ("GET", "/metrics", "metrics", endpoints.metrics),
        ("GET", "/openapi.json", "openapi", endpoints.openapi),
    ]
    authorize = guarded(state, "authorize", _forward_auth(state))
    for verb in AUTHORIZED_METHODS:  # Envoy's ext_authz asks with the original method and path
        app.router.add_route(verb, AUTHORIZE_PREFIX, authorize)
        app.router.add_route(verb, AUTHORIZE_PREFIX + "/{tail:.*}", authorize)
    for method, path, name, handler in routes:
        if name != "metrics" or metrics:
            app.router.add_route(method, path, guarded(state, name, handler))
    return app
