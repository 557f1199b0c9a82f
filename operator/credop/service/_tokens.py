"""Issuing access tokens (RFC 9068) and deciding whether a presented one is active now.

A token is active when credop signed it with a published key, it has not
expired, it is not revoked, its credential (named by uid, so a deleted and
re-created credential does not inherit tokens) is usable now, and it was not
issued before the credential's tokens were invalidated. Its scopes are those
it was issued with that the credential still allows.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credop.domain.tokens import (
    ACCESS_TOKEN_TYPE,
    KEY_TOKEN_TYPE,
    TOKEN_CLAIM_CREDENTIAL_UID,
    TokenSubject,
    access_token_claims,
    accounts_by_role,
    effective_scopes,
    granted_accounts,
    issued_before_invalidation,
    narrowed_accounts,
    qualified,
    token_is_current,
)
from credop.service._caches import CheckedTokens
from credop.service._jwt import ReadToken, TokenKeys, media_type, unverified_part
from credop.service._records import Credential
from credop.service._revocations import RevokedTokens
from credop.service._view import CredentialView


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: Mapping[str, Any]

    def expires_in(self, now: datetime.datetime) -> int:
        return int(self.claims["exp"]) - int(now.timestamp())


@dataclass(frozen=True)
class ActiveToken:
    """A presented access token that is valid now, with its credential, current scopes and role accounts."""

    claims: Mapping[str, Any]
    credential: Credential
    scopes: tuple[str, ...]
    role_accounts: Mapping[str, tuple[str, ...]]
    """What the token's roles still cover (:func:`~credop.domain.tokens.narrowed_accounts`)."""


MAX_REMEMBERED_SUBJECTS = 100_000
_TYPES: dict[str, str | None] = {}
"""``typ`` by header segment: credop's tokens carry a handful of distinct headers (one per key and type)."""
_MAX_TYPES = 256


def presented_type(token: str) -> str | None:
    """The ``typ`` a token says it has (unverified: only to choose how to check it)."""
    segment = token.partition(".")[0]
    if segment in _TYPES and token.count(".") == 2:
        return _TYPES[segment]
    header = unverified_part(token, 0)
    typ = media_type(header.get("typ")) if header is not None else None
    if header is not None and len(segment) <= 512:
        if len(_TYPES) >= _MAX_TYPES:
            _TYPES.clear()
        _TYPES[segment] = typ
    return typ


def unverified_claims(token: str) -> Mapping[str, Any] | None:
    """A JWT's payload without checking its signature: only to find which credential to check it against."""
    return unverified_part(token, 1)


class AccessTokens:
    def __init__(self, *, view: CredentialView, keys: TokenKeys, revoked: RevokedTokens, checked: CheckedTokens):
        self.view = view
        self.keys = keys
        self.revoked = revoked
        self.checked = checked
        self._subjects: dict[str, tuple[Credential, TokenSubject]] = {}

    def issue(self, credential: Credential, scopes: tuple[str, ...], *, now: datetime.datetime) -> IssuedToken:
        claims = access_token_claims(
            self._subject(credential),
            issuer=self.keys.issuer,
            audience=self.keys.audience,
            scopes=scopes,
            now=now,
            lifetime_seconds=self.view.token_validity(credential, now=now),
            jti=os.urandom(16).hex(),
            not_before=credential.invalid_before(),
        )
        claims[TOKEN_CLAIM_CREDENTIAL_UID] = credential.uid
        return IssuedToken(self.keys.sign(claims, now=now, typ=ACCESS_TOKEN_TYPE), claims)

    def _subject(self, credential: Credential) -> TokenSubject:
        """Who tokens of this credential are issued to (remembered while the credential's record is unchanged)."""
        known = self._subjects.get(credential.uid)
        if known is not None and known[0] is credential:
            return known[1]
        subject = TokenSubject(
            namespace=credential.namespace,
            kind=credential.kind,
            name=credential.name,
            client_id=qualified(credential.namespace, credential.identifier),
            subject=qualified(credential.namespace, credential.subject),
            roles=tuple(dict.fromkeys(role.name for role in credential.roles)),
            role_accounts=accounts_by_role([(role.name, role.scope) for role in credential.roles]),
        )
        if len(self._subjects) >= MAX_REMEMBERED_SUBJECTS:
            self._subjects.clear()
        self._subjects[credential.uid] = (credential, subject)
        return subject

    def signed(self, token: str, *, now: datetime.datetime) -> ReadToken | None:
        """The token's claims if credop signed it with a key still published (remembered once checked)."""
        fingerprint = self.checked.fingerprint(token)
        known = self.checked.get(fingerprint, now=now.timestamp())
        if known is not None:
            kid, claims = known
            return ReadToken(kid, claims) if kid in self.keys.published_kids(now=now) else None
        read = self.keys.read(token, now=now, typ=ACCESS_TOKEN_TYPE)
        if read is not None and "exp" in read.claims:
            self.checked.put(fingerprint, read.kid, read.claims)
        return read

    def active(self, token: str, *, now: datetime.datetime) -> ActiveToken | None:
        read = self.signed(token, now=now)
        if read is None:
            return None
        claims = read.claims
        if not token_is_current(claims, now=now) or claims.get("jti") in self.revoked:
            return None
        credential = self.view.credential(str(claims.get(TOKEN_CLAIM_CREDENTIAL_UID, "")))
        if credential is None or not credential.usable(now):
            return None
        if issued_before_invalidation(claims, credential.invalid_before()):
            return None
        scopes = effective_scopes(str(claims.get("scope", "")), self.view.allowed_scopes(credential))
        allowed_accounts = self._subject(credential).role_accounts or {}  # computed once per credential record
        return ActiveToken(claims, credential, scopes, narrowed_accounts(granted_accounts(claims), allowed_accounts))

    def key_of_key_token(self, token: str) -> Credential | None:
        """The ServiceAccountKey a JWT-format secret key claims to be (its secret is checked separately)."""
        if presented_type(token) != KEY_TOKEN_TYPE:
            return None
        claims = unverified_claims(token)
        if claims is None:
            return None
        credential = self.view.find_access_key(str(claims.get("access_key_id", "")))
        if credential is None or credential.namespace != claims.get("tenant"):
            return None
        return credential
