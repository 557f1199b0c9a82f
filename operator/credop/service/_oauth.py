"""OAuth 2.0 request parsing and error answers (RFC 6749 §2.3, §3.2, §5.2; RFC 7009; RFC 7662).

Pure: bytes and header strings in, values or :class:`OAuthError` out. Error
descriptions are fixed texts: they never echo what the client sent, so a
secret pasted into the wrong field cannot come back in a response or a log.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_plus

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
BASIC_CHALLENGE = 'Basic realm="credop", charset="UTF-8"'
MAX_FORM_FIELDS = 64
KNOWN_PARAMETERS = frozenset(
    {"grant_type", "scope", "client_id", "client_secret", "token", "token_type_hint", "resource", "audience"}
)
CLIENT_CREDENTIALS = "client_credentials"

ERROR_STATUS = {
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_grant": 400,
    "unauthorized_client": 400,
    "unsupported_grant_type": 400,
    "invalid_scope": 400,
    "unsupported_token_type": 400,
    "temporarily_unavailable": 503,
}
AuthMethod = Literal["client_secret_basic", "client_secret_post"]


class OAuthError(Exception):
    """An error answer: ``{"error": ..., "error_description": ...}`` with its HTTP status."""

    def __init__(self, error: str, description: str, *, status: int | None = None, retry_after: str | None = None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status or ERROR_STATUS[error]
        self.retry_after = retry_after

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

    def headers(self) -> dict[str, str]:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        return headers


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(hint: str | None = None) -> OAuthError:
    """The one answer for unknown, inactive, expired, disabled and wrong-secret clients alike.

    ``hint`` is only for what anyone could learn anyway (a bare client ID used in
    several namespaces), never for why a known client was refused.
    """
    return OAuthError(
        "invalid_client", f"client authentication failed: {hint}" if hint else "client authentication failed"
    )


def rate_limited(retry_after: str) -> OAuthError:
    return OAuthError(
        "temporarily_unavailable",
        "too many failed authentications; retry later",
        status=429,
        retry_after=retry_after,
    )


@dataclass(frozen=True)
class Presented:
    """A client ID and the secret forms to try (the RFC's form-encoded one first, then the raw one)."""

    client_id: str
    secrets: tuple[str, ...] = field(repr=False)
    method: AuthMethod


def parse_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body: empty values count as absent (§3.1), a repeated
    parameter of ours is refused (§3.2), parameters we do not know are ignored (§3.1).

    What ``urllib.parse.parse_qsl(keep_blank_values=True, errors="strict")`` does, without its
    per-field overhead: only fields that carry ``%`` or ``+`` are unquoted."""
    if content_type != FORM_MEDIA_TYPE:
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != FORM_MEDIA_TYPE:
            raise invalid_request("the request body must be application/x-www-form-urlencoded")
    if body.count(b"&") >= MAX_FORM_FIELDS:
        raise invalid_request("the request body is not a valid form")
    form: dict[str, str] = {}
    try:
        for field_text in body.decode().split("&"):
            if not field_text:
                continue
            name, _, value = field_text.partition("=")
            if "%" in name or "+" in name:
                name = unquote_plus(name, errors="strict")
            if name not in KNOWN_PARAMETERS:
                continue
            if name in form:
                raise invalid_request("a parameter is repeated")
            form[name] = unquote_plus(value, errors="strict") if "%" in value or "+" in value else value
    except UnicodeDecodeError:
        raise invalid_request("the request body is not a valid form") from None
    return {name: value for name, value in form.items() if value}


def presented_client(form: Mapping[str, str], authorization: str | None) -> Presented:
    """The client's credentials, from HTTP Basic (client_secret_basic) or the form (client_secret_post)."""
    if authorization is not None:
        if "client_secret" in form:
            raise invalid_request("use one client authentication method, not two")
        presented = _basic(authorization)
        if form.get("client_id", presented.client_id) != presented.client_id:
            raise invalid_request("client_id does not match the Authorization header")
        return presented
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if client_id is None or secret is None:
        raise invalid_client()
    return Presented(client_id, (secret,), "client_secret_post")


def _basic(authorization: str) -> Presented:
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client()
    try:
        decoded = binascii.a2b_base64(encoded.strip(), strict_mode=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_client() from None
    raw_id, separator, raw_secret = decoded.partition(":")
    if not separator or not raw_id or not raw_secret:
        raise invalid_client()
    secret = unquote_plus(raw_secret) if "%" in raw_secret or "+" in raw_secret else raw_secret
    secrets = (secret,) if secret == raw_secret else (secret, raw_secret)
    client_id = unquote_plus(raw_id) if "%" in raw_id or "+" in raw_id else raw_id
    return Presented(client_id, secrets, "client_secret_basic")


def grant_type_of(form: Mapping[str, str]) -> str:
    grant = form.get("grant_type")
    if grant is None:
        raise invalid_request("grant_type is required")
    if grant != CLIENT_CREDENTIALS:
        raise OAuthError("unsupported_grant_type", "only the client_credentials grant is supported")
    return grant


def token_of(form: Mapping[str, str]) -> str:
    token = form.get("token")
    if token is None:
        raise invalid_request("token is required")
    return token
