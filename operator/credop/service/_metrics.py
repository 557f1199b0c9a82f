"""Prometheus metrics of one service instance, in its own registry (two replicas can share a process).

Labels are bounded enumerations (endpoint, kind, reason, result): never a
client ID, a token or anything a caller can choose.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FAILURE_REASONS = (
    "invalid_request",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
    "rate_limited",
)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tokens_issued = Counter("credop_tokens_issued", "Access tokens issued", ["kind"], registry=self.registry)
        self.verifications = Counter(
            "credop_verifications",
            "Token introspections and credential verifications, by endpoint and result",
            ["endpoint", "result"],
            registry=self.registry,
        )
        self.failures = Counter(
            "credop_request_failures", "Refused requests, by reason", ["reason"], registry=self.registry
        )
        self.latency = Histogram(
            "credop_request_duration_seconds",
            "Time to answer, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.secret_cache_hits = Counter(
            "credop_secret_cache_hits", "argon2id verifications answered from memory", registry=self.registry
        )
        self.usage_writes = Counter(
            "credop_usage_writes", "lastUsedAt status writes", ["result"], registry=self.registry
        )
        self.revocations = Counter("credop_revocations", "Tokens revoked", registry=self.registry)
        self.credentials = Gauge(
            "credop_known_credentials", "Credentials in this replica's view", registry=self.registry
        )
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
