"""Credential rows and the status table, from objects as the API server returns them."""

from __future__ import annotations

import datetime
from typing import Any

from credop.cli.rows import compliance_of, credential_table, row_of, sorted_rows
from credop.cli.tables import render_table

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)


def condition(kind: str, status: str = "True") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": kind, "lastTransitionTime": "2026-03-01T00:00:00Z"}


def key(name: str, namespace: str = "team", *, spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "kind": "ServiceAccountKey",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-03-01T11:00:00Z"},
        "spec": {"serviceAccount": "bot", **(spec or {})},
        "status": status,
    }


def client(name: str, namespace: str = "team", **status: Any) -> dict[str, Any]:
    return {
        "kind": "ApiClient",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-02-01T12:00:00Z"},
        "spec": {},
        "status": status,
    }


def test_key_row_shows_id_phase_deadlines_and_compliance() -> None:
    row = row_of(
        key(
            "ci",
            accessKeyId="crak_abc",
            phase="Active",
            reason="Active",
            expiresAt="2026-03-11T12:00:00Z",
            conditions=[condition("Ready"), condition("ExpiringSoon"), condition("Unused", "False")],
        )
    )
    assert row.cells(now=NOW) == [
        "ServiceAccountKey",
        "ci",
        "crak_abc",
        "Active",
        "-",
        "60m",
        "in 10d",
        "never",
        "expiring-soon",
    ]


def test_client_row_uses_the_client_id_and_last_use() -> None:
    row = row_of(
        client(
            "billing",
            clientId="billing-prod",
            phase="Inactive",
            reason="ActiveLimitReached",
            lastUsedAt="2026-03-01T11:59:00Z",
            conditions=[condition("Ready", "False")],
        )
    )
    cells = row.cells(now=NOW)
    assert cells[:5] == ["ApiClient", "billing", "billing-prod", "Inactive", "ActiveLimitReached"]
    assert cells[5:] == ["28d", "-", "60s ago", "ok"]


def test_a_credential_without_status_is_pending_with_unknown_compliance() -> None:
    row = row_of(key("new", spec={"neverExpires": True}))
    cells = row.cells(now=NOW)
    assert cells[2:5] == ["-", "Pending", "-"]
    assert cells[6] == "never"
    assert cells[8] == "-"


def test_compliance_lists_true_policy_conditions_in_a_fixed_order() -> None:
    conditions = [condition("SecretMissing"), condition("RotationDue"), condition("Ready"), condition("ExpiringSoon")]
    assert compliance_of(conditions) == ("expiring-soon", "rotation-due", "secret-missing")
    assert compliance_of([condition("Ready")]) == ()
    assert compliance_of(None) is None


def test_policy_comes_from_status_then_spec_then_default() -> None:
    assert row_of(key("a", policy="strict")).policy == "strict"
    assert row_of(key("b", spec={"policyName": "named"})).policy == "named"
    assert row_of(key("c")).policy == "default"


def test_rows_sort_by_namespace_then_keys_before_clients_then_name() -> None:
    rows = sorted_rows([row_of(client("a", "x")), row_of(key("z", "x")), row_of(key("b", "w"))])
    assert [(row.namespace, row.name) for row in rows] == [("w", "b"), ("x", "z"), ("x", "a")]


def test_row_as_dict_keeps_raw_timestamps_and_human_spelling() -> None:
    document = row_of(key("ci", accessKeyId="crak_abc", phase="Active", lastUsedAt="2026-03-01T11:00:00Z")).as_dict(
        now=NOW
    )
    assert document["id"] == "crak_abc"
    assert document["lastUsedAt"] == "2026-03-01T11:00:00Z"
    assert document["lastUsed"] == "60m ago"
    assert document["compliance"] is None


def test_table_aligns_columns_without_trailing_spaces() -> None:
    text = render_table(("NAME", "PHASE"), [["a-long-name", "Active"], ["b", "Failed"]])
    assert text.splitlines() == ["NAME          PHASE", "a-long-name   Active", "b             Failed"]


def test_all_namespaces_table_starts_with_the_namespace() -> None:
    text = credential_table([row_of(key("ci", "team-a"))], all_namespaces=True, now=NOW)
    header, line = text.splitlines()
    assert header.split()[:3] == ["NAMESPACE", "KIND", "NAME"]
    assert line.split()[:3] == ["team-a", "ServiceAccountKey", "ci"]


def test_search_matches_name_id_service_account_and_creator_in_any_case() -> None:
    row = row_of(
        key(
            "deploy",
            spec={"serviceAccount": "CI-Bot", "roles": [{"name": "GlobalViewer"}]},
            accessKeyId="crak_XYZ",
            createdBy="alice@example.com",
        )
    )
    for text in ("deploy", "crak_xyz", "ci-bot", "ALICE", "example.com"):
        assert row.matches(text), text
    assert not row.matches("bob")
    assert not row_of(client("c", clientId="billing")).matches("crak")


def test_the_wide_table_adds_service_account_roles_creator_and_last_update() -> None:
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-01T11:30:00Z"}
    row = row_of(
        key(
            "deploy",
            spec={"roles": [{"name": "GlobalViewer"}, {"name": "Auditor"}]},
            createdBy="alice",
            conditions=[ready],
        )
    )
    table = credential_table([row], all_namespaces=False, now=NOW, wide=True)
    header, line = table.splitlines()[:2]
    assert header.split()[-4:] == ["SERVICE-ACCOUNT", "ROLES", "CREATED-BY", "LAST-UPDATED"]
    assert line.split()[-4:] == ["bot", "GlobalViewer,Auditor", "alice", "30m"]
    assert row.as_dict(now=NOW)["roles"] == ["GlobalViewer", "Auditor"]
