"""Rate limits on failed authentication: a token bucket per client ID and per source address.

Each failure takes one token from the bucket of the client ID it named and of
the address it came from; buckets refill at a steady rate up to their burst.
While a bucket is empty every attempt under its key is answered 429 with
``Retry-After``, before any secret is checked, so guessing costs the guesser
time and the service nothing. Pure arithmetic: ``now`` is seconds (any epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Allowance:
    """``burst`` failures at once, then ``per_second`` more each second."""

    burst: float
    per_second: float

    def level_after(self, level: float, elapsed: float) -> float:
        return min(self.burst, level + max(0.0, elapsed) * self.per_second)

    def wait_for_one(self, level: float) -> float:
        """Seconds until a bucket at ``level`` holds a whole token again (0 when it does)."""
        return 0.0 if level >= 1 else (1 - level) / self.per_second


@dataclass
class _Bucket:
    level: float
    at: float


class FailureLimiter:
    """Buckets of remaining failures, one per key; full buckets are forgotten."""

    def __init__(self, allowance: Allowance, *, max_keys: int = 100_000) -> None:
        self.allowance = allowance
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, key: str, *, now: float) -> float:
        """Seconds the caller must wait before another attempt under ``key`` (0: go ahead)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        return self.allowance.wait_for_one(self.allowance.level_after(bucket.level, now - bucket.at))

    def record_failure(self, key: str, *, now: float) -> None:
        bucket = self._buckets.get(key)
        level = self.allowance.burst if bucket is None else self.allowance.level_after(bucket.level, now - bucket.at)
        self._buckets[key] = _Bucket(max(0.0, level - 1), now)
        if len(self._buckets) > self.max_keys:
            self.forget_refilled(now=now)

    def forget_refilled(self, *, now: float) -> None:
        """Drop buckets that are full again (they mean the same as no bucket); then the oldest if still too many."""
        burst = self.allowance.burst
        for key in [k for k, b in self._buckets.items() if self.allowance.level_after(b.level, now - b.at) >= burst]:
            del self._buckets[key]
        excess = len(self._buckets) - self.max_keys
        for key in list(self._buckets)[: max(0, excess)]:
            del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, never 0 while limited."""
    return str(max(1, math.ceil(seconds)))
