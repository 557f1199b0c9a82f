"""Forward authentication: "Read only = GET only", enforced by the ingress in front of a resource server.

ingress-nginx (``nginx.ingress.kubernetes.io/auth-url``), Traefik's ForwardAuth
and Envoy's HTTP ``ext_authz`` ask an auth service about each request before
passing it on. ``/v1/authorize`` answers for credop's access tokens: the
original method (``X-Original-Method``, ``X-Forwarded-Method``, or the request's
own when Envoy forwards it as is) must be one the token's scope allows —
``read`` is GET, HEAD and OPTIONS; ``write`` adds the rest. 200 carries the
identity as headers for the upstream; 401 means no usable token, 403 a method
the token may not use. ``X-Credop-Role-Accounts`` is the JSON object of the
accounts each of a key's roles covers (``"*"``: every account), as in tokens.
"""

from __future__ import annotations

import json

from aiohttp import web

from credop.domain.tokens import methods_for_scopes, qualified
from credop.service._state import ServiceState

PREFIX = "/v1/authorize"
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
"""The methods a proxy may ask with (Envoy asks with the original one)."""
METHOD_HEADERS = ("X-Original-Method", "X-Forwarded-Method")
NO_STORE = {"Cache-Control": "no-store"}


def original_method(request: web.Request) -> str:
    """The method of the request being authorized, as the proxy reports it."""
    for header in METHOD_HEADERS:
        value = request.headers.get(header)
        if value:
            return value.strip().upper()
    return request.method.upper()


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authorize(state: ServiceState, request: web.Request) -> web.Response:
    """200 with identity headers, 401 (no usable token) or 403 (a method the token's scope does not allow)."""
    token = bearer_token(request)
    active = state.tokens.active(token, now=state.now()) if token else None
    if active is None:
        headers = {**NO_STORE, "WWW-Authenticate": 'Bearer realm="credop", error="invalid_token"'}
        state.metrics.verifications.labels("authorize", "invalid").inc()
        return web.Response(status=401, headers=headers)
    method = original_method(request)
    allowed = methods_for_scopes(active.scopes)
    if method not in allowed:
        state.metrics.verifications.labels("authorize", "forbidden").inc()
        return web.Response(status=403, headers={**NO_STORE, "X-Credop-Allowed-Methods": ", ".join(allowed)})
    credential = active.credential
    state.metrics.verifications.labels("authorize", "allowed").inc()
    return web.Response(
        status=200,
        headers={
            **NO_STORE,
            "X-Credop-Subject": qualified(credential.namespace, credential.subject),
            "X-Credop-Client-Id": qualified(credential.namespace, credential.identifier),
            "X-Credop-Tenant": credential.namespace,
            "X-Credop-Scope": " ".join(active.scopes),
            "X-Credop-Roles": ",".join(active.role_accounts),
            "X-Credop-Role-Accounts": json.dumps(active.role_accounts, separators=(",", ":")),
        },
    )
