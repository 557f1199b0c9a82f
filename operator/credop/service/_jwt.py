"""Signing access tokens and checking presented ones, with pyjwt and credop's keys.

Signs with the key :func:`credop.domain.signing.signing_key` names now;
publishes and accepts only :func:`~credop.domain.signing.published_keys`, so
the JWKS always covers every live token across a rotation. A presented token
must name a published key, use that key's own algorithm from the allow-list
(never ``none``, never HS256 with a public key) and carry the expected
``typ``; claims are checked by :mod:`credop.domain.tokens` with ``now`` given.

Signing assembles the compact JWS itself (RFC 7515 §7.1): the header segment
is encoded once per key and type, the payload is compact JSON, and the
signature is the key's ECDSA signature as R || S (RFC 7518 §3.4). pyjwt's
``encode`` re-validated and re-serialised the header and claims on every
call, which cost as much as the signature; pyjwt still checks every presented
token (:meth:`TokenKeys.read`), so whatever is issued is read back by the
library the verifiers use (a unit test checks it).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from credop.domain.keyring import Keyring
from credop.domain.signing import KeysetSchedule, SigningKey, signing_key
from credop.domain.tokens import ALLOWED_ALGORITHMS

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_DAWN = datetime.datetime.min.replace(tzinfo=datetime.UTC)
_DUSK = datetime.datetime.max.replace(tzinfo=datetime.UTC)
_RELAXED = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


class NoSigningKeyError(RuntimeError):
    """credop's keyring has not been loaded yet (or holds no signing key)."""


@dataclass(frozen=True)
class ReadToken:
    """A token whose signature, algorithm, type, issuer and audience checked out."""

    kid: str
    claims: Mapping[str, Any]


@dataclass(frozen=True)
class _LoadedKey:
    key: SigningKey
    private: ec.EllipticCurvePrivateKey
    public: ec.EllipticCurvePublicKey
    jwk: Mapping[str, Any]


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _compact_encoder() -> Callable[[Any], str]:
    """Compact ASCII JSON, no NaN; with the C encoder built once (``json.dumps`` builds one per call)."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
        return encoder.encode
    chunks = c_make_encoder(None, _refuse, encode_basestring_ascii, None, ":", ",", False, False, False)
    return lambda value: "".join(chunks(value, 0))


compact_json = _compact_encoder()
"""``json.dumps(value, separators=(",", ":"), allow_nan=False)``, faster (no cycle check: plain data only)."""


def b64url(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 §2)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _es256_signature(private: ec.EllipticCurvePrivateKey, signing_input: bytes) -> bytes:
    """The JWS signature: ECDSA P-256 SHA-256 as R || S, 32 bytes each (RFC 7518 §3.4)."""
    r, s = decode_dss_signature(private.sign(signing_input, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def unverified_part(token: str, index: int) -> dict[str, Any] | None:
    """The JSON header (0) or payload (1) of a compact JWT, *unverified*: only to decide how to check it.

    pyjwt's own unverified reading validates every character in Python, which
    costs more than the signature check; this is a plain base64url + JSON decode.
    """
    parts = token.split(".")
    if len(parts) != 3 or len(parts[index]) > 16_384:
        return None
    segment = parts[index]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None


def media_type(typ: object) -> str:
    """``typ`` compared as RFC 7515 says: case-insensitive, ``application/`` optional."""
    text = str(typ).lower()
    return text.removeprefix("application/")


class TokenKeys:
    """credop's signing keys, loaded once per keyring change (parsing a PEM per request would be slow)."""

    def __init__(self, *, issuer: str, audience: str, schedule: KeysetSchedule) -> None:
        self.issuer = issuer
        self.audience = audience
        self.schedule = schedule
        self._loaded: dict[str, _LoadedKey] = {}
        self._kids: frozenset[str] = frozenset()
        self._signer: tuple[_LoadedKey, datetime.datetime, datetime.datetime] | None = None
        """The key that signs, and the span [since, until) it is the one for (between two keys ripening)."""
        self._headers: dict[tuple[str, str], bytes] = {}
        """Encoded JOSE header segments by (kid, typ)."""

    @property
    def loaded(self) -> bool:
        return bool(self._loaded)

    def load(self, keyring: Keyring) -> None:
        loaded = {}
        for key in keyring.signing_keys:
            known = self._loaded.get(key.kid)
            if known is not None and known.key == key:
                loaded[key.kid] = known
                continue
            private = key.private_key()
            loaded[key.kid] = _LoadedKey(key, private, private.public_key(), key.public_jwk())
        self._loaded = loaded
        self._kids = frozenset(loaded)
        self._signer = None
        self._headers = {}

    def published_kids(self, *, now: datetime.datetime) -> frozenset[str]:
        """Every key in credop's keyring: the operator adds keys ahead of use and retires them after
        the longest token lifetime its policies allow, so the keyring itself is what to publish."""
        return self._kids

    def jwks(self, *, now: datetime.datetime) -> dict[str, Any]:
        """The JSON Web Key Set: public parts of the published keys only."""
        kids = self.published_kids(now=now)
        return {"keys": [dict(self._loaded[kid].jwk) for kid in sorted(kids)]}

    def sign(self, claims: Mapping[str, Any], *, now: datetime.datetime, typ: str) -> str:
        """A compact JWS of ``claims`` with the key that signs now."""
        loaded = self._signing_key(now)
        kid, algorithm = loaded.key.kid, loaded.key.algorithm
        if algorithm != "ES256":
            return jwt.encode(dict(claims), loaded.private, algorithm=algorithm, headers={"kid": kid, "typ": typ})
        header = self._headers.get((kid, typ))
        if header is None:
            header = self._headers[(kid, typ)] = b64url(
                compact_json({"alg": algorithm, "kid": kid, "typ": typ}).encode()
            )
        signing_input = header + b"." + b64url(compact_json(claims).encode())
        return (signing_input + b"." + b64url(_es256_signature(loaded.private, signing_input))).decode("ascii")

    def _signing_key(self, now: datetime.datetime) -> _LoadedKey:
        """:func:`signing_key` of the loaded keys; chosen again only when ``now`` leaves the span it holds for."""
        cached = self._signer
        if cached is not None and cached[1] <= now < cached[2]:
            return cached[0]
        if not self._loaded:
            raise NoSigningKeyError("no signing key loaded")
        keys = [loaded.key for loaded in self._loaded.values()]
        chosen = self._loaded[signing_key(keys, now=now, schedule=self.schedule).kid]
        ripening = [key.created_at + self.schedule.publish_lead for key in keys]
        since = max((instant for instant in ripening if instant <= now), default=_DAWN)
        until = min((instant for instant in ripening if instant > now), default=_DUSK)
        self._signer = (chosen, since, until)
        return chosen

    def read(self, token: str, *, now: datetime.datetime, typ: str, audience: str | None = None) -> ReadToken | None:
        """The token's claims if credop signed it with a published key and it is of type ``typ``; else ``None``."""
        header = unverified_part(token, 0)
        loaded = self._acceptable_key(header, now=now, typ=typ) if header is not None else None
        if loaded is None:
            return None
        try:
            claims = jwt.decode(token, loaded.public, algorithms=[loaded.key.algorithm], options=_RELAXED)  # type: ignore[arg-type]
        except (jwt.InvalidTokenError, ValueError, TypeError):
            return None
        if not self._issued_here(claims, audience or self.audience):
            return None
        return ReadToken(loaded.key.kid, claims)

    def _acceptable_key(self, header: Mapping[str, Any], *, now: datetime.datetime, typ: str) -> _LoadedKey | None:
        kid, algorithm = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or algorithm not in ALLOWED_ALGORITHMS or media_type(header.get("typ")) != typ:
            return None
        loaded = self._loaded.get(kid)
        if loaded is None or loaded.key.algorithm != algorithm or kid not in self.published_kids(now=now):
            return None
        return loaded

    def _issued_here(self, claims: Mapping[str, Any], audience: str) -> bool:
        audiences = claims.get("aud")
        listed = audiences if isinstance(audiences, list) else [audiences]
        return claims.get("iss") == self.issuer and audience in listed and isinstance(claims.get("jti", ""), str)
