"""KeyPolicy resolution and the policy checks, one small named function per rule.

Admission and the controller call the same checks, so a request that slipped
past the webhook is still caught. Each check returns :class:`Violation` values
that name the field, in words that never quote a secret.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from credop.api.apiclient import ApiClientSpec
from credop.api.keypolicy import DEFAULT_POLICY_NAME, ClientSecretRules, KeyPolicySpec
from credop.api.serviceaccountkey import Role, ServiceAccountKeySpec
from credop.domain.durations import parse_duration, parse_optional_duration
from credop.domain.keyformat import client_secret_problems
from credop.names import CONFIRM_DELETE, CREATED_BY

BUILT_IN = "(built-in)"
CLUSTER_ADMIN_GROUPS = ("system:masters", "kubeadm:cluster-admins")
"""The groups real clusters give cluster administrators (kubeadm and kind since 1.29 use the second)."""
BUILT_IN_POLICY = KeyPolicySpec(admin_groups=list(CLUSTER_ADMIN_GROUPS))
"""Where a namespace has no KeyPolicy: the defaults, with cluster administrators exempt from maxKeysPerOwner
(so a cluster admin, or a GitOps controller running as one, can apply a repository of keys)."""
WILDCARD_SCOPE = "*"


@dataclass(frozen=True)
class Violation:
    """A broken rule: the field it concerns and what is wrong."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class ResolvedPolicy:
    """The policy in force for a credential, and where it came from."""

    name: str
    spec: KeyPolicySpec | None

    @property
    def found(self) -> bool:
        return self.spec is not None


@dataclass(frozen=True)
class Requester:
    """Who asks, as the API server authenticated them."""

    user: str
    groups: tuple[str, ...] = ()


def resolve_policy(requested: str | None, policies: Mapping[str, KeyPolicySpec]) -> ResolvedPolicy:
    """``spec.policyName`` if set (absent → not found), else the namespace's ``default``, else built-in."""
    if requested:
        return ResolvedPolicy(requested, policies.get(requested))
    if DEFAULT_POLICY_NAME in policies:
        return ResolvedPolicy(DEFAULT_POLICY_NAME, policies[DEFAULT_POLICY_NAME])
    return ResolvedPolicy(BUILT_IN, BUILT_IN_POLICY)


def policy_not_found(resolved: ResolvedPolicy) -> Violation:
    return Violation("spec.policyName", f'KeyPolicy "{resolved.name}" does not exist in this namespace')


def is_admin(requester: Requester, policy: KeyPolicySpec) -> bool:
    return any(group in policy.admin_groups for group in requester.groups)


def check_creator(requester: Requester, policy: KeyPolicySpec) -> list[Violation]:
    """Only the policy's creators (when it names any) may create credentials."""
    creators = policy.creators
    if creators is None or is_admin(requester, policy):
        return []
    if requester.user in creators.users or any(group in creators.groups for group in requester.groups):
        return []
    return [Violation("metadata", f'user "{requester.user}" is not among the KeyPolicy\'s creators')]


def check_keys_per_owner(requester: Requester, owned: int, policy: KeyPolicySpec) -> list[Violation]:
    """A user may hold at most maxKeysPerOwner keys; admins are unlimited."""
    if is_admin(requester, policy) or owned < policy.max_keys_per_owner:
        return []
    return [
        Violation(
            "metadata",
            f'user "{requester.user}" already holds {owned} ServiceAccountKeys, '
            f"the KeyPolicy's maxKeysPerOwner is {policy.max_keys_per_owner}",
        )
    ]


def check_roles(roles: Iterable[Role], policy: KeyPolicySpec) -> list[Violation]:
    """Each role must be one of the policy's, with a scope where the policy requires one."""
    allowed = {rule.name: rule for rule in policy.roles}
    violations = []
    for index, role in enumerate(roles):
        rule = allowed.get(role.name)
        if rule is None:
            names = ", ".join(sorted(allowed)) or "none"
            violations.append(
                Violation(f"spec.roles[{index}].name", f'role "{role.name}" is not allowed (allowed: {names})')
            )
        elif rule.requires_scope and not role.scope:
            violations.append(
                Violation(
                    f"spec.roles[{index}].scope",
                    f'role "{role.name}" needs at least one account, or "{WILDCARD_SCOPE}" for all accounts',
                )
            )
    return violations


def check_never_expires_allowed(spec: ServiceAccountKeySpec, policy: KeyPolicySpec) -> list[Violation]:
    """Keys that never expire only where the policy allows them."""
    if spec.never_expires and not policy.allow_never_expire:
        return [Violation("spec.neverExpires", "the KeyPolicy does not allow keys that never expire")]
    if not spec.never_expires and _expires_never_by_default(spec, policy) and policy.max_expiry is not None:
        return [Violation("spec", f"the KeyPolicy's default expiry is Never but its maxExpiry is {policy.max_expiry}")]
    return []


def _expires_never_by_default(spec: ServiceAccountKeySpec, policy: KeyPolicySpec) -> bool:
    return (
        spec.expires_at is None and spec.expires_in is None and parse_optional_duration(policy.default_expiry) is None
    )


def check_expiry_in_future(spec: ServiceAccountKeySpec, *, now: datetime.datetime) -> list[Violation]:
    """A new key may not ask to have expired already."""
    if spec.expires_at is not None and spec.expires_at <= now:
        return [Violation("spec.expiresAt", "is in the past")]
    return []


def check_max_expiry(spec: ServiceAccountKeySpec, policy: KeyPolicySpec, *, now: datetime.datetime) -> list[Violation]:
    """No key may ask to live longer than the policy's maxExpiry."""
    limit = parse_optional_duration(policy.max_expiry)
    lifetime = requested_lifetime(spec, policy, now=now)
    if limit is None or spec.never_expires or lifetime is None or lifetime <= limit:
        return []
    field = "spec.expiresAt" if spec.expires_at else "spec.expiresIn" if spec.expires_in else "spec"
    return [Violation(field, f"the key would live longer than the KeyPolicy's maxExpiry of {policy.max_expiry}")]


def requested_lifetime(
    spec: ServiceAccountKeySpec, policy: KeyPolicySpec, *, now: datetime.datetime
) -> datetime.timedelta | None:
    """How long the key asks to live from ``now``; ``None`` for never."""
    if spec.never_expires:
        return None
    if spec.expires_at is not None:
        return spec.expires_at - now
    if spec.expires_in is not None:
        return parse_duration(spec.expires_in)
    return parse_optional_duration(policy.default_expiry)


def check_token_validity(seconds: int | None, policy: KeyPolicySpec) -> list[Violation]:
    """An ApiClient's token lifetime must lie within the policy's bounds."""
    bounds = policy.token_validity
    if seconds is None or bounds.min_seconds <= seconds <= bounds.max_seconds:
        return []
    return [
        Violation(
            "spec.tokenValiditySeconds",
            f"must be between {bounds.min_seconds} and {bounds.max_seconds} seconds (the KeyPolicy's tokenValidity)",
        )
    ]


def check_client_secret(secret: str, policy: KeyPolicySpec) -> list[Violation]:
    """A user-supplied client secret must satisfy the policy's clientSecret rules.

    The answer states the rules, never which of them the value broke: a denial or
    a status message must not tell its reader a secret's length or make-up.
    """
    if not client_secret_problems(secret, policy.client_secret):
        return []
    rules = describe_client_secret_rules(policy.client_secret)
    return [Violation("spec.clientSecretRef", f"the client secret does not meet the policy's rules ({rules})")]


def describe_client_secret_rules(rules: ClientSecretRules) -> str:
    """The policy's rules for chosen client secrets, in words: "8 to 30 characters, with a letter, ..."."""
    needs = [
        need
        for need, required in (
            ("a letter", rules.require_letter),
            ("a digit", rules.require_digit),
            ("a special character", rules.require_special),
        )
        if required
    ]
    text = f"{rules.min_length} to {rules.max_length} characters, no spaces"
    return text + (f", with {', '.join(needs)}" if needs else "")


def client_secret_not_readable(secret_name: str) -> Violation:
    """The requester may not read the Secret ``spec.clientSecretRef`` names (whether or not it exists)."""
    return Violation(
        "spec.clientSecretRef",
        f'you may not read Secret "{secret_name}" (get secrets): a client secret must be one its creator can read',
    )


def grace_period(spec: ServiceAccountKeySpec, policy: KeyPolicySpec) -> datetime.timedelta:
    """How long a replaced secret keeps working: the key's grace period, never beyond the policy's bound."""
    return min(parse_duration(spec.rotation.grace_period), parse_duration(policy.rotation.max_grace_period))


def check_grace_period(spec: ServiceAccountKeySpec, policy: KeyPolicySpec) -> list[Violation]:
    bound = policy.rotation.max_grace_period
    if parse_duration(spec.rotation.grace_period) <= parse_duration(bound):
        return []
    return [
        Violation(
            "spec.rotation.gracePeriod",
            f"{spec.rotation.grace_period} is longer than the policy's rotation.maxGracePeriod ({bound})",
        )
    ]


def check_service_account_key(spec: ServiceAccountKeySpec, policy: KeyPolicySpec) -> list[Violation]:
    """The spec rules that hold for a key's whole life (what the controller re-checks)."""
    return check_roles(spec.roles, policy) + check_never_expires_allowed(spec, policy)


def check_new_service_account_key(
    spec: ServiceAccountKeySpec, policy: KeyPolicySpec, *, now: datetime.datetime
) -> list[Violation]:
    """Every spec rule for a key being created or edited (admission)."""
    return (
        check_service_account_key(spec, policy)
        + check_grace_period(spec, policy)
        + check_expiry_in_future(spec, now=now)
        + check_max_expiry(spec, policy, now=now)
    )


def check_api_client(spec: ApiClientSpec, policy: KeyPolicySpec) -> list[Violation]:
    """Every spec-only rule for an ApiClient (the client secret is checked where it is read)."""
    return check_token_validity(spec.token_validity_seconds, policy)


def effective_token_validity(spec: ApiClientSpec, policy: KeyPolicySpec) -> int:
    return spec.token_validity_seconds or policy.token_validity.default_seconds


# Admission-only checks: what only the API request can show (who asks, what changed, deletion). --------------

CREATED_BY_FIELD = f"metadata.annotations[{CREATED_BY}]"


def check_policy_found(resolved: ResolvedPolicy) -> list[Violation]:
    """A credential may only name a KeyPolicy that exists (else creators and limits could not be checked)."""
    return [] if resolved.found else [policy_not_found(resolved)]


def check_created_by_is_requester(annotations: Mapping[str, str], requester: Requester) -> list[Violation]:
    """On create, the created-by annotation names the requesting user (the mutating webhook writes it)."""
    if annotations.get(CREATED_BY) == requester.user:
        return []
    return [Violation(CREATED_BY_FIELD, f'must be the requesting user "{requester.user}" (credop sets it)')]


def check_created_by_unchanged(old: Mapping[str, str], new: Mapping[str, str]) -> list[Violation]:
    """Nobody may change or remove who created a credential."""
    if old.get(CREATED_BY) == new.get(CREATED_BY):
        return []
    return [Violation(CREATED_BY_FIELD, "is immutable: it records who created the credential")]


def check_unchanged_fields(
    old_spec: Mapping[str, Any], new_spec: Mapping[str, Any], fields: Iterable[str]
) -> list[Violation]:
    """Fields fixed at creation keep their value (absent stays absent)."""
    return [
        Violation(f"spec.{field}", "is immutable: create a new credential instead")
        for field in fields
        if old_spec.get(field) != new_spec.get(field)
    ]


def check_client_id_unique(client_id: str, holders: Iterable[str]) -> list[Violation]:
    """A client ID names one ApiClient in its namespace; ``holders`` are the other ApiClients using it."""
    taken = sorted(holders)
    if not taken:
        return []
    return [Violation("spec.clientId", f'"{client_id}" is already used by ApiClient "{taken[0]}" in this namespace')]


def client_secret_not_found(secret_name: str, key: str, *, secret_exists: bool) -> Violation:
    """The Secret (or its key) that ``spec.clientSecretRef`` names is missing."""
    missing = (
        f'Secret "{secret_name}" has no key "{key}"' if secret_exists else f'Secret "{secret_name}" does not exist'
    )
    return Violation("spec.clientSecretRef", f"{missing} in this namespace; create it first")


def check_deletion_confirmed(name: str, *, protected: bool, annotations: Mapping[str, str]) -> list[Violation]:
    """With deletionProtection, DELETE needs the confirm-delete annotation set to the object's name."""
    if not protected or annotations.get(CONFIRM_DELETE) == name:
        return []
    return [
        Violation(
            "spec.deletionProtection",
            f"is true: to delete, first set the annotation {CONFIRM_DELETE}={name}, or set deletionProtection to false",
        )
    ]


def expiry_changed(old: ServiceAccountKeySpec, new: ServiceAccountKeySpec) -> bool:
    """Whether an edit touches expiresAt, expiresIn or neverExpires (then the expiry rules apply again)."""
    return (old.expires_at, old.expires_in, old.never_expires) != (new.expires_at, new.expires_in, new.never_expires)
