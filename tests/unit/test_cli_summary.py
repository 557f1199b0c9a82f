"""The report's summary: counts by phase, policy problems, active clients against each namespace's limit."""

from __future__ import annotations

from credop.cli.rows import CredentialRow
from credop.cli.summary import BUILT_IN_MAX_ACTIVE_CLIENTS, policy_limits, summarize


def row(
    name: str,
    *,
    kind: str = "ApiClient",
    namespace: str = "team",
    phase: str | None = "Active",
    reason: str | None = None,
    compliance: tuple[str, ...] | None = (),
    policy: str = "default",
) -> CredentialRow:
    return CredentialRow(
        namespace=namespace,
        kind=kind,
        name=name,
        identifier=name,
        phase=phase,
        reason=reason,
        created_at=None,
        expires_at=None,
        never_expires=False,
        last_used_at=None,
        compliance=compliance,
        policy=policy,
    )


def test_counts_by_kind_and_phase_and_policy_problem() -> None:
    rows = [
        row("k1", kind="ServiceAccountKey", compliance=("expiring-soon", "unused")),
        row("k2", kind="ServiceAccountKey", phase="Expired", compliance=("expiring-soon",)),
        row("k3", kind="ServiceAccountKey", phase=None, compliance=None),
        row("c1"),
    ]
    summary = summarize(rows, {})
    assert summary.total == 4
    assert summary.phases_by_kind == {
        "ServiceAccountKey": {"Active": 1, "Expired": 1, "Pending": 1},
        "ApiClient": {"Active": 1},
    }
    assert summary.problems == {"expiring-soon": 2, "rotation-due": 0, "unused": 1, "secret-missing": 0}


def test_active_clients_against_the_namespaces_policy_limit() -> None:
    rows = [
        row("a"),
        row("b"),
        row("c", phase="Inactive", reason="ActiveLimitReached"),
        row("d", namespace="other", policy="(built-in)"),
    ]
    summary = summarize(rows, {("team", "default"): 2})
    entries = {entry.namespace: entry for entry in summary.active_clients}
    assert entries["team"].describe() == "team: 2/2 active (limit reached, 1 waiting)"
    assert entries["other"].limit == BUILT_IN_MAX_ACTIVE_CLIENTS
    assert entries["other"].describe() == f"other: 1/{BUILT_IN_MAX_ACTIVE_CLIENTS} active"


def test_the_strictest_policy_in_use_sets_the_limit() -> None:
    rows = [row("a", policy="lenient"), row("b", policy="strict")]
    summary = summarize(rows, {("team", "lenient"): 10, ("team", "strict"): 3})
    assert summary.active_clients[0].limit == 3


def test_summary_as_lines_and_as_a_document() -> None:
    summary = summarize([row("k", kind="ServiceAccountKey")], {})
    assert summary.lines() == [
        "1 credentials",
        "  ServiceAccountKeys: 1 (Active 1)",
        "  ApiClients: 0",
        "Policy: 0 expiring soon, 0 rotation due, 0 unused, 0 secret missing",
        "Active clients: no ApiClients",
    ]
    assert summary.as_dict()["byKind"] == {"ServiceAccountKey": {"Active": 1}, "ApiClient": {}}
    assert summary.as_dict()["activeClients"] == []


def test_policy_limits_read_max_active_clients_with_the_default() -> None:
    policies = [
        {"metadata": {"name": "default", "namespace": "team"}, "spec": {"maxActiveClients": 2}},
        {"metadata": {"name": "plain", "namespace": "team"}, "spec": {}},
    ]
    assert policy_limits(policies) == {("team", "default"): 2, ("team", "plain"): BUILT_IN_MAX_ACTIVE_CLIENTS}
