"""The credential service's OpenAPI 3.0 document, served at ``/openapi.json``.

Written by hand (the service is small) and checked by a schemathesis run in
the unit tests: every documented response code, media type and body shape is
what the handlers return.
"""

from __future__ import annotations

from typing import Any

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TEXT = "text/plain"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {TEXT: {"schema": {"type": "string"}}}}


NO_STORE_HEADER = {"Cache-Control": {"schema": {"type": "string", "enum": ["no-store"]}}}
RETRY_AFTER = {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
CHALLENGE = {"WWW-Authenticate": {"required": True, "schema": {"type": "string", "pattern": "^Basic "}}}
CLIENT_AUTH_ERRORS = {
    "400": _json("Malformed request (RFC 6749 §5.2)", "OAuthError"),
    "401": _json(
        "Client authentication failed: unknown, inactive or wrong secret alike", "OAuthError", headers=CHALLENGE
    ),
    "413": _text("Request body too large"),
    "429": _json("Too many failed authentications for this client ID or address", "OAuthError", headers=RETRY_AFTER),
}
CLIENT_FIELDS = {
    "client_id": {
        "type": "string",
        "description": "client_secret_post: `<namespace>/<clientId>`, a client ID unique across namespaces, or an access key ID",
    },
    "client_secret": {
        "type": "string",
        "description": "client_secret_post: the client secret or secret key (empty counts as absent)",
    },
}
TOKEN_FIELDS = {
    "token": {"type": "string", "minLength": 1, "description": "An access token credop issued"},
    "token_type_hint": {"type": "string", "description": "access_token or refresh_token (a hint only)"},
}

SCHEMAS: dict[str, Any] = {
    "OAuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "string",
                "enum": [
                    "invalid_request",
                    "invalid_client",
                    "invalid_grant",
                    "unauthorized_client",
                    "unsupported_grant_type",
                    "invalid_scope",
                    "unsupported_token_type",
                    "temporarily_unavailable",
                    "server_error",
                ],
            },
            "error_description": {"type": "string"},
        },
    },
    "TokenRequest": {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "scope": {
                "type": "string",
                "pattern": "^((read|write)( (read|write))*)?$",
                "description": "`read`, `write` or `read write` (default: all the client is allowed)",
            },
            **CLIENT_FIELDS,
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "additionalProperties": False,
        "properties": {
            "access_token": {"type": "string", "description": "An RFC 9068 JWT (typ at+jwt, ES256)"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer", "minimum": 1},
            "scope": {"type": "string"},
        },
    },
    "TokenRequestWithClient": {
        "type": "object",
        "required": ["token"],
        "properties": {**TOKEN_FIELDS, **CLIENT_FIELDS},
    },
    "Introspection": {
        "type": "object",
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "scope": {"type": "string"},
            "client_id": {"type": "string"},
            "token_type": {"type": "string"},
            "exp": {"type": "integer"},
            "iat": {"type": "integer"},
            "nbf": {"type": "integer"},
            "sub": {"type": "string"},
            "aud": {"type": "string"},
            "iss": {"type": "string"},
            "jti": {"type": "string"},
            "tenant": {"type": "string", "description": "The namespace of the token's credential"},
            "roles": {"type": "array", "items": {"type": "string"}, "description": "A key's role names"},
            "role_accounts": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": 'The accounts each role covers; "*" is every account (a role with no scope)',
            },
        },
    },
    "Jwks": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid", "use", "alg"],
                    "properties": {
                        "kty": {"type": "string", "enum": ["EC"]},
                        "crv": {"type": "string"},
                        "x": {"type": "string"},
                        "y": {"type": "string"},
                        "kid": {"type": "string"},
                        "use": {"type": "string", "enum": ["sig"]},
                        "alg": {"type": "string", "enum": ["ES256", "EdDSA"]},
                    },
                },
            }
        },
    },
    "ServerMetadata": {
        "type": "object",
        "required": ["issuer", "token_endpoint", "jwks_uri", "grant_types_supported", "response_types_supported"],
        "properties": {
            "issuer": {"type": "string"},
            "token_endpoint": {"type": "string"},
            "jwks_uri": {"type": "string"},
            "introspection_endpoint": {"type": "string"},
            "revocation_endpoint": {"type": "string"},
            "grant_types_supported": {"type": "array", "items": {"type": "string"}},
            "response_types_supported": {"type": "array", "items": {"type": "string"}},
            "scopes_supported": {"type": "array", "items": {"type": "string"}},
            "token_endpoint_auth_methods_supported": {"type": "array", "items": {"type": "string"}},
        },
    },
    "VerifyRequest": {
        "description": "One of: a token; an access key ID and secret key; a client ID and client secret",
        "oneOf": [
            {
                "type": "object",
                "required": ["token"],
                "additionalProperties": False,
                "properties": {
                    "token": {"type": "string", "minLength": 1},
                    "method": {"type": "string", "minLength": 1},
                },
            },
            {
                "type": "object",
                "required": ["accessKeyId", "secretKey"],
                "additionalProperties": False,
                "properties": {
                    "accessKeyId": {"type": "string", "minLength": 1},
                    "secretKey": {"type": "string", "minLength": 1},
                    "method": {"type": "string", "minLength": 1},
                },
            },
            {
                "type": "object",
                "required": ["clientId", "clientSecret"],
                "additionalProperties": False,
                "properties": {
                    "clientId": {"type": "string", "minLength": 1},
                    "clientSecret": {"type": "string", "minLength": 1},
                    "method": {"type": "string", "minLength": 1},
                },
            },
        ],
    },
    "VerifyResponse": {
        "type": "object",
        "required": ["valid"],
        "properties": {
            "valid": {"type": "boolean"},
            "tenant": {"type": "string"},
            "kind": {"type": "string", "enum": ["ApiClient", "ServiceAccountKey"]},
            "name": {"type": "string"},
            "subject": {"type": "string"},
            "clientId": {"type": "string"},
            "accessKeyId": {"type": "string"},
            "permissionLevel": {"type": "string", "enum": ["ReadOnly", "CanEdit"]},
            "roles": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "scope": {"type": "array", "items": {"type": "string"}}},
                },
            },
            "scope": {"type": "string"},
            "allowedMethods": {"type": "array", "items": {"type": "string"}},
            "methodAllowed": {"type": "boolean"},
            "expiresAt": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
}


def _form_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {FORM: {"schema": _ref(schema)}}}


def _paths() -> dict[str, Any]:
    client_auth: list[dict[str, list[str]]] = [{"clientSecretBasic": []}, {}]
    return {
        "/oauth2/token": {
            "post": {
                "summary": "Client credentials grant (RFC 6749 §4.4): a JWT access token (RFC 9068)",
                "security": client_auth,
                "requestBody": _form_body("TokenRequest"),
                "responses": {
                    "200": _json("An access token; never a refresh token", "TokenResponse", headers=NO_STORE_HEADER),
                    **CLIENT_AUTH_ERRORS,
                    "503": _json("No signing key loaded yet", "OAuthError", headers=RETRY_AFTER),
                },
            }
        },
        "/oauth2/introspect": {
            "post": {
                "summary": "Token introspection (RFC 7662); the caller authenticates as a client of the same tenant",
                "security": client_auth,
                "requestBody": _form_body("TokenRequestWithClient"),
                "responses": {
                    "200": _json("Active with claims, or only active false", "Introspection"),
                    **CLIENT_AUTH_ERRORS,
                },
            }
        },
        "/oauth2/revoke": {
            "post": {
                "summary": "Token revocation (RFC 7009): every replica rejects the token within seconds",
                "security": client_auth,
                "requestBody": _form_body("TokenRequestWithClient"),
                "responses": {
                    "200": {"description": "Revoked, or not a live token (nothing to do)"},
                    **CLIENT_AUTH_ERRORS,
                    "503": _json(
                        "The revocation could not be shared with other replicas yet", "OAuthError", headers=RETRY_AFTER
                    ),
                },
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "The public signing keys (JWKS)",
                "responses": {
                    "200": _json("Published keys", "Jwks"),
                    "503": _json("No keys loaded yet", "OAuthError", headers=RETRY_AFTER),
                },
            }
        },
        "/.well-known/key-jwks.json": {
            "get": {
                "summary": "The public keys that sign JWT-format ServiceAccountKeys (never access tokens)",
                "responses": {
                    "200": _json("Published keys", "Jwks"),
                    "503": _json("No keys loaded yet", "OAuthError", headers=RETRY_AFTER),
                },
            }
        },
        "/.well-known/oauth-authorization-server": {
            "get": {
                "summary": "Authorization server metadata (RFC 8414)",
                "responses": {"200": _json("Metadata", "ServerMetadata")},
            }
        },
        "/v1/authorize": {
            method: {
                "summary": "Forward authentication for an ingress: may this bearer token make this request?",
                "description": "For ingress-nginx auth-url, Traefik ForwardAuth and Envoy ext_authz (HTTP). The "
                "original method comes from X-Original-Method or X-Forwarded-Method (else this request's own).",
                "parameters": [
                    {"name": "X-Original-Method", "in": "header", "required": False, "schema": {"type": "string"}},
                    {"name": "X-Forwarded-Method", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "Allowed; X-Credop-Subject, -Client-Id, -Tenant, -Scope, -Roles name who"},
                    "401": {"description": "No active credop access token"},
                    "403": {"description": "The token's scope does not allow the original method"},
                },
            }
            for method in ("get", "head", "options", "post", "put", "patch", "delete")
        },
        "/v1/verify": {
            "post": {
                "summary": "Is this access key + secret, client + secret, or token valid now, and what may it do?",
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("VerifyRequest")}}},
                "responses": {
                    "200": _json(
                        "valid true with roles, scope and allowed methods; or only valid false", "VerifyResponse"
                    ),
                    "400": _json("Malformed request", "OAuthError"),
                    "413": _text("Request body too large"),
                    "429": _json("Too many failed verifications", "OAuthError", headers=RETRY_AFTER),
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _text("ok")}}},
        "/readyz": {
            "get": {
                "summary": "Readiness: every watch listed, credop's keys loaded",
                "responses": {"200": _text("ready"), "503": _text("what it waits for")},
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": _text("exposition format")}}},
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.0", "content": {JSON: {"schema": {"type": "object"}}}}},
            }
        },
    }


def openapi_document(issuer: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "credop credential service",
            "version": "v1alpha1",
            "description": "OAuth 2.0 client credentials, introspection, revocation, JWKS and credential verification.",
        },
        "servers": [{"url": issuer}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"clientSecretBasic": {"type": "http", "scheme": "basic"}},
        },
    }
