"""The report's summary: credentials by kind and phase, policy problems, active clients against the limit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credop.api.keypolicy import KeyPolicySpec
from credop.cli.kinds import API_CLIENT, SERVICE_ACCOUNT_KEY
from credop.cli.rows import POLICY_CONDITIONS, CredentialRow
from credop.domain.slots import LIMIT_REACHED

BUILT_IN_MAX_ACTIVE_CLIENTS = KeyPolicySpec().max_active_clients
PolicyLimits = Mapping[tuple[str, str], int]
"""maxActiveClients by (namespace, KeyPolicy name)."""


@dataclass(frozen=True)
class ActiveClients:
    """How many ApiClients of one namespace are Active, and how many the policy allows."""

    namespace: str
    active: int
    limit: int
    waiting: int
    """Clients Inactive only because the limit is reached."""

    @property
    def at_limit(self) -> bool:
        return self.active >= self.limit

    def describe(self) -> str:
        notes = ["limit reached"] if self.at_limit else []
        notes += [f"{self.waiting} waiting"] if self.waiting else []
        suffix = f" ({', '.join(notes)})" if notes else ""
        return f"{self.namespace}: {self.active}/{self.limit} active{suffix}"

    def as_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "active": self.active, "limit": self.limit, "waiting": self.waiting}


@dataclass(frozen=True)
class Summary:
    """Counts over a set of credential rows."""

    phases_by_kind: Mapping[str, Mapping[str, int]]
    problems: Mapping[str, int]
    active_clients: tuple[ActiveClients, ...]

    @property
    def total(self) -> int:
        return sum(sum(phases.values()) for phases in self.phases_by_kind.values())

    def lines(self) -> list[str]:
        """The summary as text lines, under the table."""
        lines = [f"{self.total} credentials"]
        lines += [_kind_line(kind, phases) for kind, phases in self.phases_by_kind.items()]
        problems = ", ".join(f"{count} {label.replace('-', ' ')}" for label, count in self.problems.items())
        lines.append(f"Policy: {problems}")
        if not self.active_clients:
            return [*lines, "Active clients: no ApiClients"]
        return [*lines, "Active clients:", *(f"  {entry.describe()}" for entry in self.active_clients)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "byKind": {kind: dict(sorted(phases.items())) for kind, phases in self.phases_by_kind.items()},
            "policy": dict(self.problems),
            "activeClients": [entry.as_dict() for entry in self.active_clients],
        }


def _kind_line(kind: str, phases: Mapping[str, int]) -> str:
    counts = ", ".join(f"{phase} {count}" for phase, count in sorted(phases.items()))
    return f"  {kind}s: {sum(phases.values())}" + (f" ({counts})" if counts else "")


def summarize(rows: Sequence[CredentialRow], limits: PolicyLimits) -> Summary:
    """Count ``rows`` by kind and phase and by policy problem; compare each namespace's Active clients to its limit."""
    phases_by_kind = {
        kind: dict(Counter(row.phase or "Pending" for row in rows if row.kind == kind))
        for kind in (SERVICE_ACCOUNT_KEY.kind, API_CLIENT.kind)
    }
    problems = {
        label: sum(1 for row in rows if label in (row.compliance or ())) for label in POLICY_CONDITIONS.values()
    }
    clients = [row for row in rows if row.kind == API_CLIENT.kind]
    return Summary(phases_by_kind, problems, tuple(_active_clients(clients, limits)))


def _active_clients(clients: Sequence[CredentialRow], limits: PolicyLimits) -> Iterable[ActiveClients]:
    for namespace in sorted({row.namespace for row in clients}):
        mine = [row for row in clients if row.namespace == namespace]
        yield ActiveClients(
            namespace=namespace,
            active=sum(1 for row in mine if row.phase == "Active"),
            limit=min(limits.get((namespace, row.policy), BUILT_IN_MAX_ACTIVE_CLIENTS) for row in mine),
            waiting=sum(1 for row in mine if row.reason == LIMIT_REACHED),
        )


def policy_limits(policies: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """maxActiveClients of each KeyPolicy object, by (namespace, name)."""
    return {
        (policy["metadata"].get("namespace", ""), policy["metadata"]["name"]): int(
            (policy.get("spec") or {}).get("maxActiveClients", BUILT_IN_MAX_ACTIVE_CLIENTS)
        )
        for policy in policies
    }
