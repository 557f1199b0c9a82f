"""Client authentication: find the credential, check the secret, count failures.

The order matters: the presented ID is resolved first (in memory, so ``ns/id``
and a bare ``id`` are one client), then the rate limits are checked before any
secret (a locked-out guesser costs no hashing), unusable credentials are
refused before their secret is checked, and every refusal is the same
:func:`invalid_client` whatever the cause. argon2id runs in a small thread
pool (it releases the GIL) and successes are remembered by keyed fingerprint,
so a client that authenticates often costs one hash per verifier, not one per
request.

Failures lock out a (client, address) pair, never a client everywhere: wrong
guesses from one place cannot turn the real client's next request into a 429.
A chosen (argon2id) secret also has a ceiling of wrong guesses per client from
all addresses together; past it, only a secret that has verified before, or a
request from an address the client has succeeded from, is checked at all.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Executor

from credop.domain.keyformat import CLIENT_SECRET, SECRET_KEY, recognised_format
from credop.domain.verifiers import UnknownVerifierKeyError, is_password_verifier, secret_matches
from credop.service._caches import VerifiedSecrets
from credop.service._metrics import ServiceMetrics
from credop.service._oauth import OAuthError, Presented, invalid_client, rate_limited
from credop.service._ratelimit import FailureLimiter, retry_after_header
from credop.service._records import Credential
from credop.service._usage import UsageBatch
from credop.service._view import CredentialView

logger = logging.getLogger("credop.service.auth")
MAX_LOGGED_ID = 120
MAX_WAITING_HASHES = 64
"""argon2id checks allowed to queue for the pool; beyond that, 503 (a flood of wrong chosen secrets)."""


def loggable_client_id(presented: str, *, known: bool) -> str:
    """The presented client ID for a log line.

    Only IDs of existing credentials are shown (printable, shortened): an unknown
    "ID" may be a secret pasted into the wrong field, so it is shown as a keyed
    fingerprint that lets repeated attempts be correlated without revealing it.
    """
    looks_like_jwt = presented.startswith("eyJ") and presented.count(".") == 2
    if not known or looks_like_jwt or recognised_format(presented) in (SECRET_KEY, CLIENT_SECRET):
        digest = hmac.new(_FINGERPRINT_KEY, presented.encode(), hashlib.sha256).hexdigest()[:12]
        return f"(unknown ID, fingerprint {digest}, {len(presented)} chars)"
    shown = "".join(char if char.isprintable() else "?" for char in presented[:MAX_LOGGED_ID])
    return shown + ("…" if len(presented) > MAX_LOGGED_ID else "")


_FINGERPRINT_KEY = secrets.token_bytes(32)


class Authenticator:
    def __init__(
        self,
        *,
        view: CredentialView,
        verified: VerifiedSecrets,
        by_client: FailureLimiter,
        by_address: FailureLimiter,
        ceiling: FailureLimiter,
        usage: UsageBatch,
        metrics: ServiceMetrics,
        hash_pool: Executor,
    ) -> None:
        self.view = view
        self.verified = verified
        self.by_client = by_client
        """Failures per (client, address)."""
        self.by_address = by_address
        """Failures per address, whatever client they named."""
        self.ceiling = ceiling
        """Failures per client with a chosen secret, from every address together."""
        self.usage = usage
        self.metrics = metrics
        self.hash_pool = hash_pool
        self.good_addresses = GoodAddresses()
        self._hashing = 0

    async def authenticate(self, presented: Presented, *, remote: str, now: datetime.datetime) -> Credential:
        """The credential these credentials belong to, if usable now; else :class:`OAuthError`."""
        credential = self.view.find(presented.client_id)
        subject = credential.uid if credential is not None else f"?{presented.client_id}"
        self.refuse_if_limited(subject, remote=remote, now=now)
        if credential is None or not credential.usable(now):
            raise self._failure(
                presented.client_id,
                subject=subject,
                remote=remote,
                now=now,
                why="unknown or unusable client",
                known=credential is not None,
                hint=self._ambiguity_hint(presented.client_id, credential),
            )
        if not await self.secret_matches(credential, presented.secrets, now=now, remote=remote):
            raise self._failure(
                presented.client_id, subject=subject, remote=remote, now=now, why="wrong secret", known=True
            )
        self.good_addresses.note(credential.uid, remote, now=now.timestamp())
        self.usage.record(credential.uid, now)
        return credential

    def refuse_if_limited(self, subject: str, *, remote: str, now: datetime.datetime) -> None:
        instant = now.timestamp()
        wait = max(
            self.by_client.retry_after(_pair(subject, remote), now=instant),
            self.by_address.retry_after(remote, now=instant),
        )
        if wait > 0:
            raise rate_limited(retry_after_header(wait))

    async def secret_matches(
        self, credential: Credential, secrets: Sequence[str], *, now: datetime.datetime, remote: str = ""
    ) -> bool:
        for verifier in self.view.verifiers(credential, now=now):
            for secret in secrets:
                if await self._matches(credential, secret, verifier, now=now, remote=remote):
                    return True
        return False

    async def _matches(
        self, credential: Credential, secret: str, verifier: str, *, now: datetime.datetime, remote: str
    ) -> bool:
        if not is_password_verifier(verifier):
            keys = self.view.keyring.hmac_keys if self.view.keyring is not None else {}
            try:
                return secret_matches(secret, verifier, keys=keys)
            except UnknownVerifierKeyError:
                logger.warning("the verifier of %s/%s names an unknown HMAC key", credential.namespace, credential.name)
                return False
        fingerprint = self.verified.fingerprint(credential.uid, verifier, secret)
        if (credential.uid, fingerprint) in self.verified:
            self.metrics.secret_cache_hits.inc()
            return True
        self._refuse_past_the_ceiling(credential, remote=remote, now=now)
        return await self._hash_check(credential, secret, verifier, fingerprint)

    def _refuse_past_the_ceiling(self, credential: Credential, *, remote: str, now: datetime.datetime) -> None:
        """Past its ceiling, a chosen-secret client's unknown secrets are checked only from its known addresses."""
        instant = now.timestamp()
        wait = self.ceiling.retry_after(credential.uid, now=instant)
        if wait > 0 and not self.good_addresses.known(credential.uid, remote, now=instant):
            raise rate_limited(retry_after_header(wait))

    async def _hash_check(self, credential: Credential, secret: str, verifier: str, fingerprint: bytes) -> bool:
        if self._hashing >= MAX_WAITING_HASHES:
            raise OAuthError("temporarily_unavailable", "too many checks in progress", status=503, retry_after="1")
        check = functools.partial(secret_matches, secret, verifier, keys={})
        self._hashing += 1
        try:
            matched = await asyncio.get_running_loop().run_in_executor(self.hash_pool, check)
        finally:
            self._hashing -= 1
        if matched:
            self.verified.remember(credential.uid, fingerprint)
        return matched

    def _ambiguity_hint(self, presented: str, credential: Credential | None) -> str | None:
        if credential is None and self.view.is_ambiguous(presented):
            return "this client ID exists in several namespaces: send it as <namespace>/<client ID>"
        return None

    def _failure(
        self,
        client_id: str,
        *,
        subject: str,
        remote: str,
        now: datetime.datetime,
        why: str,
        known: bool,
        hint: str | None = None,
    ) -> OAuthError:
        instant = now.timestamp()
        self.by_client.record_failure(_pair(subject, remote), now=instant)
        self.by_address.record_failure(remote, now=instant)
        if known:
            self.ceiling.record_failure(subject, now=instant)
        shown = loggable_client_id(client_id, known=known)
        logger.info(
            "authentication failed for client %s from %s: %s",
            shown,
            remote,
            why,
            extra={"client_id": shown, "remote": remote, "reason": why},
        )
        return invalid_client(hint)


def _pair(subject: str, remote: str) -> str:
    return f"{subject}\x00{remote}"


class GoodAddresses:
    """Where each client authenticated from lately (a day), a few addresses per client."""

    def __init__(self, *, per_client: int = 16, remember_seconds: float = 86_400.0, max_clients: int = 100_000) -> None:
        self._per_client = per_client
        self._remember = remember_seconds
        self._max_clients = max_clients
        self._seen: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()

    def note(self, uid: str, address: str, *, now: float) -> None:
        addresses = self._seen.setdefault(uid, OrderedDict())
        addresses[address] = now
        addresses.move_to_end(address)
        while len(addresses) > self._per_client:
            addresses.popitem(last=False)
        self._seen.move_to_end(uid)
        while len(self._seen) > self._max_clients:
            self._seen.popitem(last=False)

    def known(self, uid: str, address: str, *, now: float) -> bool:
        addresses = self._seen.get(uid)
        seen = addresses.get(address) if addresses is not None else None
        return seen is not None and now - seen < self._remember
