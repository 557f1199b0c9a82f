"""KeyPolicy: a tenant's rules for the credentials in its namespace."""

from __future__ import annotations

import datetime

from pydantic import ConfigDict, Field, model_validator

from credop.api.common import (
    ApiModel,
    Condition,
    Duration,
    DurationOrNever,
    NotifyBefore,
    PolicyAction,
    StatusModel,
)
from credop.api.notifications import Notifications

DEFAULT_POLICY_NAME = "default"


class RotationPolicy(ApiModel):
    """How often keys must be rotated, and what happens when they are not."""

    period: DurationOrNever = "90d"
    """How long a key's secret may live before it must be rotated (30d, 60d, 90d, any duration, or Never)."""
    notify_before: NotifyBefore = "14d"
    """How long before the period ends to set RotationDue and warn; or None for no notice."""
    action: PolicyAction = "None"
    """What happens when the period ends: Disable the key, or None (only the RotationDue condition)."""
    max_grace_period: Duration = "24h"
    """The longest rotation.gracePeriod a key may ask for: how long a replaced secret may keep working."""


class UsagePolicy(ApiModel):
    """How long keys may go unused, and what happens when they do."""

    max_idle: DurationOrNever = "90d"
    """How long a key may go without a successful use (30d, 60d, 90d, any duration, or Never)."""
    notify_before: NotifyBefore = "14d"
    """How long before the idle limit to set Unused and warn; or None for no notice."""
    action: PolicyAction = "None"
    """What happens at the idle limit: Disable the key, or None (only the Unused condition)."""


class Subjects(ApiModel):
    """Users and groups, as the API server authenticates them."""

    users: list[str] = Field(default_factory=list, max_length=256)
    """User names, e.g. alice@example.com or system:serviceaccount:ns:name."""
    groups: list[str] = Field(default_factory=list, max_length=256)
    """Group names, e.g. platform-admins."""


class ClientSecretRules(ApiModel):
    """Rules for client secrets users bring themselves (generated ones are always credop's 131-bit crcs_ format)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minLength) || !has(self.maxLength) || self.minLength <= self.maxLength",
                    "message": "spec.clientSecret.minLength must not exceed maxLength",
                    "fieldPath": ".minLength",
                }
            ]
        }
    )

    min_length: int = Field(default=8, ge=1, le=256)
    """Fewest characters."""
    max_length: int = Field(default=30, ge=1, le=256)
    """Most characters."""
    require_letter: bool = True
    """At least one letter."""
    require_digit: bool = True
    """At least one digit."""
    require_special: bool = True
    """At least one character that is neither a letter nor a digit."""

    @model_validator(mode="after")
    def _lengths_are_ordered(self) -> ClientSecretRules:
        if self.min_length > self.max_length:
            raise ValueError("clientSecret.minLength must not exceed maxLength")
        return self


class TokenValidity(ApiModel):
    """Lifetime of access tokens issued to ApiClients, in seconds."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minSeconds <= self.defaultSeconds && self.defaultSeconds <= self.maxSeconds",
                    "message": "spec.tokenValidity: minSeconds <= defaultSeconds <= maxSeconds",
                    "fieldPath": ".defaultSeconds",
                }
            ]
        }
    )

    default_seconds: int = Field(default=3600, ge=1, le=31_536_000)
    """Used when an ApiClient sets no tokenValiditySeconds."""
    min_seconds: int = Field(default=60, ge=1, le=31_536_000)
    """Shortest lifetime a client may ask for."""
    max_seconds: int = Field(default=86_400, ge=1, le=31_536_000)
    """Longest lifetime a client may ask for."""

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> TokenValidity:
        if not self.min_seconds <= self.default_seconds <= self.max_seconds:
            raise ValueError("tokenValidity: minSeconds <= defaultSeconds <= maxSeconds")
        return self


class RoleRule(ApiModel):
    """A role keys may carry."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9._-]*$")
    """The role's name, e.g. CloudAccountViewer."""
    requires_scope: bool = False
    """Whether keys must list at least one account (or "*") in this role's scope."""
    read_only: bool = False
    """Whether the role allows only reads (GET) on resource servers."""


DEFAULT_ROLES = (
    RoleRule(name="GlobalAdmin"),
    RoleRule(name="GlobalViewer", read_only=True),
    RoleRule(name="CloudAccountViewer", requires_scope=True, read_only=True),
)


class KeyPolicySpec(ApiModel):
    """The rules for credentials that use this policy (by spec.policyName, or as the namespace's `default`)."""

    default_expiry: DurationOrNever = "180d"
    """Lifetime of a ServiceAccountKey that sets no expiry (six months)."""
    max_expiry: Duration | None = None
    """Longest lifetime a key may ask for; leave out for no limit."""
    allow_never_expire: bool = False
    """Whether keys may set neverExpires: true."""
    expiry_notify_before: NotifyBefore = "14d"
    """How long before expiry to set ExpiringSoon and warn; or None for no notice."""
    rotation: RotationPolicy = Field(default_factory=RotationPolicy)
    """The rotation policy."""
    usage: UsagePolicy = Field(default_factory=UsagePolicy)
    """The usage (idleness) policy."""
    max_keys_per_owner: int = Field(default=2, ge=0, le=1_000_000)
    """How many ServiceAccountKeys one user may create in the namespace (members of adminGroups: unlimited)."""
    max_active_clients: int = Field(default=5, ge=0, le=10_000)
    """How many ApiClients may be Active at once in the namespace."""
    creators: Subjects | None = None
    """Who may create credentials; leave out to let anyone RBAC allows."""
    admin_groups: list[str] = Field(default_factory=list, max_length=256)
    """Groups whose members are not limited by maxKeysPerOwner."""
    client_secret: ClientSecretRules = Field(default_factory=ClientSecretRules)
    """Rules for user-supplied client secrets."""
    token_validity: TokenValidity = Field(default_factory=TokenValidity)
    """Access token lifetimes for ApiClients."""
    roles: list[RoleRule] = Field(
        default_factory=lambda: list(DEFAULT_ROLES),
        max_length=256,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """The roles keys may carry, and which of them need a scope."""
    owner: str | None = Field(default=None, max_length=63, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
    """The team that owns this policy's credentials: the `owner` label of credop's metrics, for alert routing."""
    notifications: Notifications | None = None
    """Notices to people and systems: expiring, expired, rotation due, rotated, unused, disabled, deactivated, active-client limit, Secret missing."""


class KeyPolicyStatus(StatusModel):
    """What credop observed of the policy."""

    observed_generation: int | None = None
    """The .metadata.generation this status describes."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready is True when the policy is valid and in force."""
    credentials: int | None = None
    """How many credentials in the namespace use this policy."""
    active_clients: int | None = None
    """How many ApiClients using this policy are Active."""
    last_updated: datetime.datetime | None = None
    """When credop last wrote this status."""
