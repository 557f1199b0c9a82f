"""Everything one service replica holds: its view, keys, caches, limits, usage batch and metrics.

The watches feed it and the HTTP handlers read it; tests build one in memory
(:meth:`ServiceState.__init__` needs no cluster) and feed it objects directly.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from credop.clock import utc_now
from credop.config import Config
from credop.domain.keyring import Keyring
from credop.domain.signing import KeysetSchedule
from credop.service._addresses import trusted_networks
from credop.service._authn import Authenticator
from credop.service._caches import CheckedTokens, VerifiedSecrets
from credop.service._jwt import TokenKeys
from credop.service._metrics import ServiceMetrics
from credop.service._ratelimit import Allowance, FailureLimiter
from credop.service._records import Credential, Kind, SecretMaterial, credential_of
from credop.service._revocations import MAX_PER_NAMESPACE, LocalPublisher, RevocationPublisher, RevokedTokens
from credop.service._tokens import AccessTokens
from credop.service._usage import UsageBatch, UsageWrite
from credop.service._view import CredentialView

logger = logging.getLogger("credop.service")
Clock = Callable[[], datetime.datetime]


@dataclass(frozen=True)
class ServiceSettings:
    """Service knobs that are not in :class:`~credop.controller.config.Config`."""

    audience: str | None = None
    """The ``aud`` of access tokens (default: the issuer)."""
    revocations_per_client: Allowance = field(default_factory=lambda: Allowance(burst=20, per_second=0.05))
    """Revocations one client may make: 20 at once, then one per 20 s (each is an entry every replica keeps)."""
    max_revocations_per_namespace: int = MAX_PER_NAMESPACE
    """Live revoked tokens one tenant namespace may have; past it, that tenant invalidates tokens instead."""
    client_failures: Allowance = field(default_factory=lambda: Allowance(burst=10, per_second=0.2))
    """Failed authentications per (client, source address): 10 at once, then one per 5 s."""
    address_failures: Allowance = field(default_factory=lambda: Allowance(burst=50, per_second=1.0))
    """Failed authentications per source address: 50 at once, then one per second."""
    chosen_secret_ceiling: Allowance = field(default_factory=lambda: Allowance(burst=100, per_second=0.5))
    """Wrong guesses of one chosen (argon2id) secret from all addresses together: 100, then one per 2 s.
    Past it, only secrets that verified before and addresses the client succeeded from are checked."""
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs of proxies whose X-Forwarded-For is believed (the client address is the last hop before them)."""
    hash_threads: int = 2
    """Threads for argon2id (each hash takes 19 MiB and one core for ~20 ms)."""
    jwks_max_age: int = 300
    """Cache-Control max-age of the JWKS, in seconds (below the keyset's publish lead)."""
    max_body_bytes: int = 64 * 1024
    tls_directory: str | None = None
    """A directory with tls.crt and tls.key: serve HTTPS with them (reloaded when they change)."""
    metrics_port: int | None = None
    """Serve /metrics on this port alone (plain HTTP), so a NetworkPolicy can scope it; else on the main port."""

    @classmethod
    def from_environment(cls) -> ServiceSettings:
        """``CREDOP_TRUSTED_PROXIES`` (comma-separated CIDRs, checked here so a typo stops the start),
        ``CREDOP_TLS_DIR`` and ``CREDOP_METRICS_PORT``."""
        proxies = tuple(p.strip() for p in os.environ.get("CREDOP_TRUSTED_PROXIES", "").split(",") if p.strip())
        trusted_networks(proxies)
        metrics_port = os.environ.get("CREDOP_METRICS_PORT")
        return cls(
            trusted_proxies=proxies,
            tls_directory=os.environ.get("CREDOP_TLS_DIR") or None,
            metrics_port=int(metrics_port) if metrics_port else None,
        )


class UsageWriter(Protocol):
    """Writes ``status.lastUsedAt``; returns False when the credential is gone."""

    async def write(self, credential: Credential, used_at: datetime.datetime) -> bool: ...


class ServiceState:
    def __init__(
        self,
        config: Config,
        *,
        settings: ServiceSettings | None = None,
        clock: Clock = utc_now,
        publisher: RevocationPublisher | None = None,
        usage_writer: UsageWriter,
    ) -> None:
        self.config = config
        self.settings = settings or ServiceSettings()
        self.clock = clock
        self.view = CredentialView()
        schedule = KeysetSchedule(rotate_every=datetime.timedelta(days=config.signing_key_rotation_days))
        self.keys = TokenKeys(issuer=config.issuer, audience=self.settings.audience or config.issuer, schedule=schedule)
        self.revoked = RevokedTokens()
        self.publisher: RevocationPublisher = publisher or LocalPublisher(self.revoked)
        self.revocations = FailureLimiter(self.settings.revocations_per_client)
        """Revocations per client (each spends one)."""
        self.usage = UsageBatch(datetime.timedelta(seconds=config.usage_flush_interval))
        self.usage_writer = usage_writer
        self.metrics = ServiceMetrics()
        self.verified = VerifiedSecrets()
        self.hash_pool = ThreadPoolExecutor(self.settings.hash_threads, thread_name_prefix="credop-argon2")
        self.authenticator = Authenticator(
            view=self.view,
            verified=self.verified,
            by_client=FailureLimiter(self.settings.client_failures),
            by_address=FailureLimiter(self.settings.address_failures),
            ceiling=FailureLimiter(self.settings.chosen_secret_ceiling),
            usage=self.usage,
            metrics=self.metrics,
            hash_pool=self.hash_pool,
        )
        self.tokens = AccessTokens(view=self.view, keys=self.keys, revoked=self.revoked, checked=CheckedTokens())
        self.unsynced: set[str] = set()
        """Watches that have not delivered their first listing yet."""
        self.view.on_material_change(self.verified.forget)

    def now(self) -> datetime.datetime:
        return self.clock()

    @property
    def ready(self) -> bool:
        return self.keys.loaded and not self.unsynced

    # Feeding (the watches call these on the event loop) -------------------------------------
    def set_keyring(self, keyring: Keyring) -> None:
        self.view.keyring = keyring
        self.keys.load(keyring)
        self.tokens.checked.forget_keys_except({key.kid for key in keyring.signing_keys})

    def put_object(self, kind: Kind, body: Mapping[str, Any]) -> Credential:
        credential = credential_of(kind, body)
        self.view.put_credential(credential, now=self.now())
        self.metrics.credentials.set(len(self.view))
        return credential

    def drop_object(self, body: Mapping[str, Any]) -> None:
        uid = str(body["metadata"].get("uid", ""))
        self.view.drop_credential(uid)
        self.usage.forget(uid)
        self.metrics.credentials.set(len(self.view))

    def replace_credentials(self, kind: Kind, credentials: Sequence[Credential]) -> None:
        self.view.replace_credentials(kind, list(credentials), now=self.now())
        self.metrics.credentials.set(len(self.view))

    def put_material(self, secret_key: str, material: SecretMaterial) -> None:
        self.view.put_material(secret_key, material)

    # Usage -------------------------------------------------------------------------------
    async def flush_usage(self) -> int:
        """Write the lastUsedAt values that are due; returns how many were written."""
        now = self.now()
        self.usage.forget_idle(now=now)
        due = self.usage.due(now=now, observed=self._observed_last_use)
        results = await asyncio.gather(*(self._write_usage(write, now) for write in due))
        return sum(results)

    def _observed_last_use(self, uid: str) -> datetime.datetime | None:
        credential = self.view.credential(uid)
        return credential.last_used_at if credential is not None else None

    async def _write_usage(self, write: UsageWrite, now: datetime.datetime) -> bool:
        credential = self.view.credential(write.uid)
        if credential is None:
            self.usage.forget(write.uid)
            return False
        try:
            written = await self.usage_writer.write(credential, write.used_at)
        except Exception as error:
            self.usage.attempted(write, now=now)
            self.metrics.usage_writes.labels("error").inc()
            logger.warning("writing lastUsedAt of %s/%s failed: %s", credential.namespace, credential.name, error)
            return False
        self.usage.written(write, now=now)
        self.metrics.usage_writes.labels("written" if written else "gone").inc()
        return written

    def close(self) -> None:
        self.hash_pool.shutdown(wait=False, cancel_futures=True)
