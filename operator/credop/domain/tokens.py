"""Token claims and the rules for accepting them (RFC 9068 access tokens, JWT-format keys).

Signing and signature checks are pyjwt's; this module decides what goes into
a token and what a verified token must say to be accepted now.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from credop.domain.policy import WILDCARD_SCOPE

ACCESS_TOKEN_TYPE = "at+jwt"
KEY_TOKEN_TYPE = "credop-key+jwt"
KEY_TOKEN_AUDIENCE = "urn:credop:service-account-key"
"""The ``aud`` of JWT-format keys: no access-token consumer (whose audience is the issuer) accepts it."""
ALLOWED_ALGORITHMS = ("ES256", "EdDSA")
LEEWAY = datetime.timedelta(seconds=30)
READ_SCOPE = "read"
WRITE_SCOPE = "write"

Permission = Literal["ReadOnly", "CanEdit"]
ROLE_ACCOUNTS_CLAIM = "role_accounts"


def scopes_for(permission: Permission) -> tuple[str, ...]:
    """ReadOnly → ``read``; CanEdit → ``read write``."""
    return (READ_SCOPE,) if permission == "ReadOnly" else (READ_SCOPE, WRITE_SCOPE)


def methods_for_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """The HTTP methods a resource server should allow: GET only for read."""
    if WRITE_SCOPE in scopes:
        return ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
    return ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class TokenSubject:
    """Who a token is issued to."""

    namespace: str
    kind: Literal["ApiClient", "ServiceAccountKey"]
    name: str
    client_id: str
    subject: str
    roles: tuple[str, ...] = ()
    role_accounts: Mapping[str, tuple[str, ...]] | None = None
    """Each role's accounts (:func:`accounts_by_role`), for the ``role_accounts`` claim."""


def accounts_by_role(roles: Sequence[tuple[str, Sequence[str]]]) -> dict[str, tuple[str, ...]]:
    """The accounts each role covers, from (name, scope) pairs: what a resource server checks offline.

    A role without a scope is a global role and covers every account (``("*",)``),
    said explicitly so that a consumer never reads a missing entry as "all";
    a role listed twice covers the union of its scopes, and ``*`` anywhere covers all.
    """
    accounts: dict[str, tuple[str, ...]] = {}
    for name, scope in roles:
        wanted = tuple(scope) or (WILDCARD_SCOPE,)
        merged = tuple(dict.fromkeys((*accounts.get(name, ()), *wanted)))
        accounts[name] = (WILDCARD_SCOPE,) if WILDCARD_SCOPE in merged else merged
    return accounts


def narrowed_accounts(
    granted: Mapping[str, Sequence[str]], allowed_now: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """The accounts a token's roles still cover: each role it was granted that the key still carries,
    with only the accounts both allow (``*`` on one side yields the other side's list).

    A key whose roles are narrowed narrows its tokens at once for every online
    check (introspection, forward auth), as :func:`effective_scopes` does for scopes."""
    narrowed: dict[str, tuple[str, ...]] = {}
    for role, accounts in granted.items():
        now = allowed_now.get(role)
        if now is None:
            continue
        if WILDCARD_SCOPE in now:
            kept = tuple(accounts)
        elif WILDCARD_SCOPE in accounts:
            kept = tuple(now)
        else:
            kept = tuple(account for account in accounts if account in now)
        if kept:
            narrowed[role] = kept
    return narrowed


def granted_accounts(claims: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The ``role_accounts`` a token carries (a token from before the claim existed: its roles, unscoped)."""
    carried = claims.get(ROLE_ACCOUNTS_CLAIM)
    if isinstance(carried, Mapping):
        return {str(role): tuple(str(account) for account in accounts) for role, accounts in carried.items()}
    return {str(role): (WILDCARD_SCOPE,) for role in claims.get("roles") or ()}


def access_token_claims(
    subject: TokenSubject,
    *,
    issuer: str,
    audience: str,
    scopes: Sequence[str],
    now: datetime.datetime,
    lifetime_seconds: int,
    jti: str,
    not_before: datetime.datetime | None = None,
) -> dict[str, Any]:
    """RFC 9068 claims. ``iat`` is never before ``not_before`` (the tokens-invalid-before instant).

    ``sub`` and ``client_id`` are tenant-qualified (``<namespace>/<id>``) so no two
    tenants' tokens share them; ``tenant`` goes with the roles, whose names are
    each tenant's own, and ``role_accounts`` says which accounts each role covers
    (a CloudAccountViewer limited to two accounts says those two)."""
    issued = max(now, not_before) if not_before else now
    iat = int(issued.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject.subject,
        "aud": audience,
        "client_id": subject.client_id,
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime_seconds,
        "jti": jti,
        "scope": " ".join(scopes),
        "tenant": subject.namespace,
    }
    if subject.roles:
        claims["roles"] = list(subject.roles)
    if subject.role_accounts:
        claims[ROLE_ACCOUNTS_CLAIM] = {name: list(accounts) for name, accounts in subject.role_accounts.items()}
    return claims


def key_token_claims(
    *,
    issuer: str,
    namespace: str,
    access_key_id: str,
    service_account: str,
    roles: Sequence[Mapping[str, Any]],
    now: datetime.datetime,
    expires_at: datetime.datetime | None,
    jti: str,
) -> dict[str, Any]:
    """Claims of a JWT-format ServiceAccountKey secret: the roles, expiring with the key."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": f"{namespace}{NAMESPACE_SEPARATOR}{service_account}",
        "aud": KEY_TOKEN_AUDIENCE,
        "access_key_id": access_key_id,
        "tenant": namespace,
        "roles": [dict(role) for role in roles],
        "iat": int(now.timestamp()),
        "jti": jti,
    }
    if expires_at is not None:
        claims["exp"] = int(expires_at.timestamp())
    return claims


def issued_before_invalidation(claims: Mapping[str, Any], invalid_before: datetime.datetime | None) -> bool:
    """Whether a token was issued before its subject's tokens were invalidated."""
    if invalid_before is None:
        return False
    return int(claims.get("iat", 0)) < int(invalid_before.timestamp())


def invalidation_instant(now: datetime.datetime) -> datetime.datetime:
    """The tokensInvalidBefore to record: the next whole second, so every earlier token is caught."""
    whole = now.replace(microsecond=0)
    return whole if whole == now else whole + datetime.timedelta(seconds=1)


# Credential service decisions (issue 4) ------------------------------------------------------

NAMESPACE_SEPARATOR = "/"
TOKEN_CLAIM_CREDENTIAL_UID = "credential_uid"
"""The private claim naming the credential (its object uid) a token was issued to."""


def qualified(namespace: str, identifier: str) -> str:
    """``<namespace>/<identifier>``: unique across tenants (client IDs and subjects are unique per namespace only)."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{identifier}"


def split_client_id(presented: str) -> tuple[str | None, str]:
    """``<namespace>/<id>`` → (namespace, id); a bare ``<id>`` → (None, id). IDs never contain ``/``."""
    namespace, separator, identifier = presented.partition(NAMESPACE_SEPARATOR)
    return (namespace, identifier) if separator else (None, presented)


def narrowed_scopes(requested: str | None, allowed: Sequence[str]) -> tuple[str, ...] | None:
    """The scopes to grant: all allowed when none are asked for; ``None`` when more are asked than allowed,
    or the request is not RFC 6749 §3.3 syntax (scope tokens separated by single spaces)."""
    if not requested:
        return tuple(allowed)
    asked = requested.split(" ")
    if "" in asked or not set(asked) <= set(allowed):
        return None
    return tuple(dict.fromkeys(asked))


def scopes_for_roles(roles: Sequence[str], *, read_only_roles: Sequence[str]) -> tuple[str, ...]:
    """A key's scopes: ``read`` when every role it carries is read-only (or it has none), else ``read write``."""
    if all(role in read_only_roles for role in roles):
        return (READ_SCOPE,)
    return (READ_SCOPE, WRITE_SCOPE)


def effective_scopes(token_scope: str, allowed_now: Sequence[str]) -> tuple[str, ...]:
    """A token's scopes that its credential still allows (a downgraded client loses ``write`` at once)."""
    return tuple(scope for scope in dict.fromkeys(token_scope.split()) if scope in allowed_now)


def token_lifetime(
    default_seconds: int, *, now: datetime.datetime, credential_expires_at: datetime.datetime | None
) -> int:
    """Seconds a new token lives: the credential's validity, never past the credential's own expiry."""
    if credential_expires_at is None:
        return default_seconds
    remaining = int((credential_expires_at - now).total_seconds())
    return max(1, min(default_seconds, remaining))


def token_is_current(claims: Mapping[str, Any], *, now: datetime.datetime, leeway: datetime.timedelta = LEEWAY) -> bool:
    """Not expired (strictly), and not issued in the future beyond the clock-skew leeway."""
    try:
        expires = int(claims["exp"])
        issued = int(claims.get("nbf", claims.get("iat", 0)))
    except (KeyError, TypeError, ValueError):
        return False
    instant = now.timestamp()
    return instant < expires and issued <= instant + leeway.total_seconds()


def pending_invalidation_instant(
    observed_at: datetime.datetime, recorded: datetime.datetime | None
) -> datetime.datetime:
    """The tokens-invalid-before to apply while an invalidate-tokens request awaits the operator.

    A replica that sees the annotation before the operator has recorded it rejects
    tokens issued before it saw it; the operator's instant (recorded) wins once later.
    """
    provisional = invalidation_instant(observed_at)
    return provisional if recorded is None or recorded < provisional else recorded
