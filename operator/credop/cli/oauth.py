"""Asking a token endpoint for an access token: the OAuth2 client credentials grant (RFC 6749 §4.4).

The client authenticates with HTTP Basic (client_secret_basic, §2.3.1: ID and
secret form-urlencoded, then base64). Redirects are never followed (they would
take the Authorization header elsewhere). Standard library only.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from credop.cli.errors import CliError

TOKEN_PATH = "/oauth2/token"
TIMEOUT_S = 30


@dataclass(frozen=True)
class ClientCredentials:
    """Who asks for the token and where; the secret never appears in repr or messages."""

    client_id: str
    client_secret: str = field(repr=False)
    token_url: str
    ca: str | None = None
    """The token endpoint's CA (PEM), from the credential's Secret (tokenCA)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the client's Authorization header to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(tls: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects(), urllib.request.HTTPSHandler(context=tls))


def token_url_for(endpoint: str) -> str:
    """``--endpoint`` as a token URL: a bare base URL gets ``/oauth2/token``; a URL with a path is used as is."""
    parsed = urllib.parse.urlsplit(endpoint)
    if not parsed.scheme or not parsed.netloc:
        raise CliError(
            f'"{endpoint}" is not a URL like http://localhost:8080 or https://credop.example.com/oauth2/token'
        )
    if parsed.path in ("", "/"):
        return endpoint.rstrip("/") + TOKEN_PATH
    return endpoint


def basic_authorization(credentials: ClientCredentials) -> str:
    """The Authorization header value for client_secret_basic."""
    user = urllib.parse.quote_plus(credentials.client_id)
    password = urllib.parse.quote_plus(credentials.client_secret)
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request_token(
    credentials: ClientCredentials, *, scope: str | None = None, tls: ssl.SSLContext | None = None
) -> dict[str, Any]:
    """The token endpoint's JSON answer; a CliError naming the client and endpoint when it refuses or is down."""
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    request = urllib.request.Request(
        credentials.token_url,
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Authorization": basic_authorization(credentials),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    try:
        with _opener(tls).open(request, timeout=TIMEOUT_S) as answer:
            return _json_object(answer.read(), credentials)
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:
            raise CliError(
                f"the token endpoint {credentials.token_url} answered a redirect (HTTP {error.code}); credop does not "
                "send credentials across redirects: pass the final URL with --endpoint"
            ) from None
        raise CliError(_refusal(credentials, error.code, error.read())) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CliError(
            f"cannot reach the token endpoint {credentials.token_url}: {reason} "
            "(outside the cluster, port-forward the credential service and pass --endpoint)"
        ) from None


def _json_object(raw: bytes, credentials: ClientCredentials) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "access_token" not in document:
        raise CliError(f"the token endpoint {credentials.token_url} did not answer with a token")
    return document


def _refusal(credentials: ClientCredentials, status: int, raw: bytes) -> str:
    """``token endpoint URL refused client "x": invalid_client: bad secret (HTTP 401)``."""
    try:
        document = json.loads(raw)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    details = ": ".join(str(document[key]) for key in ("error", "error_description") if document.get(key))
    return (
        f'the token endpoint {credentials.token_url} refused client "{credentials.client_id}": '
        f"{details or 'no reason given'} (HTTP {status})"
    )
