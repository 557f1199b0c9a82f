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
    assert resolve_policy(None, {}).spec == KeyPolicySpec(admin_groups=["system:masters", "kubeadm:cluster-admins"])
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


# Admission-only checks ----------------------------------------------------------------------------

from credop.domain.policy import (  # noqa: E402 - appended with the admission checks
    CREATED_BY_FIELD,
    check_client_id_unique,
    check_created_by_is_requester,
    check_created_by_unchanged,
    check_deletion_confirmed,
    check_policy_found,
    check_unchanged_fields,
    client_secret_not_found,
    expiry_changed,
)

CREATED_BY = "credop.dev/created-by"
CONFIRM = "credop.dev/confirm-delete"


def test_a_named_policy_must_exist() -> None:
    assert check_policy_found(resolve_policy(None, {})) == []
    missing = check_policy_found(resolve_policy("gone", {}))
    assert [v.field for v in missing] == ["spec.policyName"]
    assert '"gone" does not exist' in missing[0].message


@pytest.mark.parametrize(
    ("annotations", "ok"), [({CREATED_BY: "alice"}, True), ({CREATED_BY: "mallory"}, False), ({}, False)]
)
def test_created_by_names_the_requester(annotations: dict[str, str], ok: bool) -> None:
    violations = check_created_by_is_requester(annotations, Requester("alice"))
    assert (violations == []) == ok
    assert all(v.field == CREATED_BY_FIELD == f"metadata.annotations[{CREATED_BY}]" for v in violations)


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ({CREATED_BY: "alice"}, {CREATED_BY: "alice", "x": "y"}, True),
        ({}, {}, True),
        ({CREATED_BY: "alice"}, {CREATED_BY: "mallory"}, False),
        ({CREATED_BY: "alice"}, {}, False),
        ({}, {CREATED_BY: "mallory"}, False),
    ],
)
def test_created_by_never_changes(old: dict[str, str], new: dict[str, str], ok: bool) -> None:
    assert (check_created_by_unchanged(old, new) == []) == ok


def test_unchanged_fields_name_each_changed_field() -> None:
    old = {"format": "Pair", "keyType": "Access", "description": "a"}
    new = {"format": "JWT", "secretName": "s", "description": "b"}
    violations = check_unchanged_fields(old, new, ("format", "keyType", "secretName"))
    assert [v.field for v in violations] == ["spec.format", "spec.keyType", "spec.secretName"]
    assert check_unchanged_fields(old, {**old, "description": "c"}, ("format", "keyType")) == []


def test_client_ids_are_unique() -> None:
    assert check_client_id_unique("portal", []) == []
    violations = check_client_id_unique("portal", ["zeta", "alpha"])
    assert violations[0].field == "spec.clientId"
    assert 'ApiClient "alpha"' in violations[0].message


def test_a_missing_client_secret_names_the_secret_and_the_key() -> None:
    absent = client_secret_not_found("mine", "clientSecret", secret_exists=False)
    keyless = client_secret_not_found("mine", "other", secret_exists=True)
    assert absent.field == keyless.field == "spec.clientSecretRef"
    assert 'Secret "mine" does not exist' in absent.message
    assert 'has no key "other"' in keyless.message


@pytest.mark.parametrize(
    ("protected", "annotations", "ok"),
    [
        (False, {}, True),
        (True, {}, False),
        (True, {CONFIRM: "other"}, False),
        (True, {CONFIRM: "ci"}, True),
    ],
)
def test_deletion_protection_needs_the_objects_name(protected: bool, annotations: dict[str, str], ok: bool) -> None:
    violations = check_deletion_confirmed("ci", protected=protected, annotations=annotations)
    assert (violations == []) == ok
    assert all(v.field == "spec.deletionProtection" and f"{CONFIRM}=ci" in v.message for v in violations)


def test_expiry_changed_looks_at_the_three_expiry_fields() -> None:
    assert not expiry_changed(key(expiresIn="30d"), key(expiresIn="30d", description="x"))
    assert expiry_changed(key(expiresIn="30d"), key(expiresIn="31d"))
    assert expiry_changed(key(), key(neverExpires=True))
    assert expiry_changed(key(), key(expiresAt="2026-06-01T00:00:00Z"))


def test_cluster_admins_are_not_limited_by_the_built_in_policy_but_people_are() -> None:
    from credop.domain.policy import BUILT_IN_POLICY, Requester, check_keys_per_owner

    admin = Requester("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated"))
    masters = Requester("admin", ("system:masters",))
    person = Requester("alice", ("system:authenticated",))
    assert check_keys_per_owner(admin, 10, BUILT_IN_POLICY) == []
    assert check_keys_per_owner(masters, 10, BUILT_IN_POLICY) == []
    assert check_keys_per_owner(person, 2, BUILT_IN_POLICY) != []
