"""Policy resolution and each named check, as tables."""

from __future__ import annotations

import datetime

import pytest

from credop.api.keypolicy import KeyPolicySpec, RoleRule, Subjects
from credop.api.serviceaccountkey import Role, ServiceAccountKeySpec
from credop.domain.policy import (
    BUILT_IN,
    Requester,
    check_client_secret,
    check_creator,
    check_keys_per_owner,
    check_max_expiry,
    check_never_expires_allowed,
    check_new_service_account_key,
    check_roles,
    check_token_validity,
    resolve_policy,
)

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
STRICT = KeyPolicySpec(
    creators=Subjects(users=["alice"], groups=["platform"]),
    admin_groups=["admins"],
    max_keys_per_owner=2,
    max_expiry="90d",
)


def key(**fields: object) -> ServiceAccountKeySpec:
    return ServiceAccountKeySpec.model_validate({"serviceAccount": "ci", **fields})


def test_resolution_order() -> None:
    named, default = KeyPolicySpec(max_active_clients=1), KeyPolicySpec(max_active_clients=2)
    policies = {"named": named, "default": default}
    assert resolve_policy("named", policies).spec is named
    assert resolve_policy(None, policies).spec is default
    assert resolve_policy(None, {"other": named}).name == BUILT_IN
    assert resolve_policy(None, {}).spec == KeyPolicySpec()
    missing = resolve_policy("gone", policies)
    assert not missing.found and missing.name == "gone"


@pytest.mark.parametrize(
    ("user", "groups", "allowed"),
    [
        ("alice", (), True),
        ("bob", ("platform",), True),
        ("carol", ("admins",), True),
        ("mallory", ("devs",), False),
    ],
)
def test_creators(user: str, groups: tuple[str, ...], allowed: bool) -> None:
    violations = check_creator(Requester(user, groups), STRICT)
    assert (violations == []) == allowed
    if not allowed:
        assert "creators" in violations[0].message and user in violations[0].message


def test_no_creators_means_rbac_decides() -> None:
    assert check_creator(Requester("anyone"), KeyPolicySpec()) == []


@pytest.mark.parametrize(
    ("owned", "groups", "allowed"), [(0, (), True), (1, (), True), (2, (), False), (50, ("admins",), True)]
)
def test_keys_per_owner(owned: int, groups: tuple[str, ...], allowed: bool) -> None:
    assert (check_keys_per_owner(Requester("alice", groups), owned, STRICT) == []) == allowed


@pytest.mark.parametrize(
    ("roles", "field"),
    [
        ([Role(name="GlobalAdmin")], None),
        ([Role(name="CloudAccountViewer", scope=["*"])], None),
        ([Role(name="CloudAccountViewer", scope=["acct-1"])], None),
        ([Role(name="CloudAccountViewer")], "spec.roles[0].scope"),
        ([Role(name="GlobalViewer"), Role(name="Root")], "spec.roles[1].name"),
    ],
)
def test_roles(roles: list[Role], field: str | None) -> None:
    violations = check_roles(roles, KeyPolicySpec())
    assert [v.field for v in violations] == ([field] if field else [])


def test_policy_defined_scoped_role() -> None:
    policy = KeyPolicySpec(roles=[RoleRule(name="Auditor", requires_scope=True)])
    assert check_roles([Role(name="Auditor")], policy)[0].field == "spec.roles[0].scope"
    assert check_roles([Role(name="GlobalAdmin")], policy)[0].field == "spec.roles[0].name"


@pytest.mark.parametrize(
    ("spec", "policy", "field"),
    [
        (key(neverExpires=True), KeyPolicySpec(), "spec.neverExpires"),
        (key(neverExpires=True), KeyPolicySpec(allow_never_expire=True), None),
        (key(), KeyPolicySpec(), None),
        (key(expiresIn="91d"), STRICT, "spec.expiresIn"),
        (key(expiresIn="90d"), STRICT, None),
        (key(expiresAt="2026-06-01T00:00:00Z"), STRICT, "spec.expiresAt"),
        (key(expiresAt="2025-06-01T00:00:00Z"), KeyPolicySpec(), "spec.expiresAt"),
        (key(), KeyPolicySpec(default_expiry="Never", max_expiry="30d"), "spec"),
    ],
)
def test_expiry_rules(spec: ServiceAccountKeySpec, policy: KeyPolicySpec, field: str | None) -> None:
    violations = check_new_service_account_key(spec, policy, now=NOW)
    assert [v.field for v in violations] == ([field] if field else [])


def test_default_expiry_beyond_max_is_capped_not_refused() -> None:
    policy = KeyPolicySpec(default_expiry="180d", max_expiry="90d")
    assert check_max_expiry(key(), policy, now=NOW)[0].field == "spec"
    assert check_never_expires_allowed(key(), policy) == []


@pytest.mark.parametrize(("seconds", "ok"), [(None, True), (60, True), (86400, True), (59, False), (86401, False)])
def test_token_validity(seconds: int | None, ok: bool) -> None:
    assert (check_token_validity(seconds, KeyPolicySpec()) == []) == ok


def test_client_secret_violations_name_the_field_never_the_secret() -> None:
    violations = check_client_secret("short1!", KeyPolicySpec())
    assert violations and all(v.field == "spec.clientSecretRef" for v in violations)
    assert all("short1!" not in str(v) for v in violations)
