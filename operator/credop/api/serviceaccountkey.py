"""ServiceAccountKey: an access key ID and secret key for programmatic access."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from credop.api.common import (
    ApiModel,
    Condition,
    Duration,
    Name,
    SecretReference,
    SecretTemplate,
    StatusModel,
)
from credop.api.notifications import HISTORY_LIMIT, NOTICE_RECORD_LIMIT, HistoryEntry, NoticeRecord

KeyPhase = Literal["Pending", "Active", "Inactive", "Expired", "Disabled", "Failed"]
WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet"]


class Role(ApiModel):
    """A role the key carries, optionally limited to some accounts."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.name != 'CloudAccountViewer' || (has(self.scope) && size(self.scope) > 0)",
                    "message": 'roles[].scope: the CloudAccountViewer role needs at least one account, or "*" for all accounts',
                    "fieldPath": ".scope",
                },
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9._-]*$")
    """The role's name, one of the policy's roles (e.g. GlobalAdmin, GlobalViewer, CloudAccountViewer)."""
    scope: list[str] = Field(
        default_factory=list,
        max_length=256,
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 253}},
    )
    """The accounts the role is limited to; "*" means all accounts."""


class RestartTarget(ApiModel):
    """A workload to restart after a rotation, as `kubectl rollout restart` does."""

    kind: WorkloadKind = "Deployment"
    """Deployment, StatefulSet or DaemonSet."""
    name: Name
    """The workload's name, in the key's namespace."""


class KeyRotation(ApiModel):
    """Automatic rotation of this key."""

    auto_rotate: bool = False
    """Mint a new secret before the policy's rotation deadline, by itself."""
    renew_before: Duration | None = None
    """How long before the rotation deadline to rotate automatically (default: a third of the period)."""
    grace_period: Duration = "0s"
    """How long the previous secret keeps working after a rotation."""
    restart_targets: list[RestartTarget] = Field(default_factory=list, max_length=32)
    """Workloads to restart after each rotation."""


class ServiceAccountKeySpec(ApiModel):
    """The desired access key."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.expiresAt) ? 1 : 0) + (has(self.expiresIn) ? 1 : 0) + ((has(self.neverExpires) && self.neverExpires) ? 1 : 0) <= 1",
                    "message": "spec: set at most one of expiresAt, expiresIn and neverExpires",
                },
                {
                    "rule": "has(self.secretName) == has(oldSelf.secretName) && (!has(self.secretName) || self.secretName == oldSelf.secretName)",
                    "message": "spec.secretName is immutable",
                    "fieldPath": ".secretName",
                    "reason": "FieldValueForbidden",
                },
                {
                    "rule": "self.format == oldSelf.format",
                    "message": "spec.format is immutable",
                    "fieldPath": ".format",
                    "reason": "FieldValueForbidden",
                },
                {
                    "rule": "self.keyType == oldSelf.keyType",
                    "message": "spec.keyType is immutable",
                    "fieldPath": ".keyType",
                    "reason": "FieldValueForbidden",
                },
            ]
        }
    )

    service_account: str = Field(min_length=1, max_length=253)
    """The identity the key acts for (a name in your own directory, not necessarily a Kubernetes ServiceAccount)."""
    description: str | None = Field(default=None, max_length=1024)
    """What the key is for."""
    roles: list[Role] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """The roles the key carries; each must be allowed by the policy."""
    expires_at: datetime.datetime | None = None
    """When the key expires (RFC 3339)."""
    expires_in: Duration | None = None
    """How long after its secret is minted the key expires (e.g. 90d); rotation restarts it."""
    never_expires: bool | None = None
    """The key never expires (only where the policy allows it)."""
    key_type: Literal["Access", "Api"] = "Access"
    """Access for API calls, Api for data ingestion. Immutable."""
    format: Literal["Pair", "JWT"] = "Pair"
    """Pair: a random secret key; JWT: the secret is a signed JWT carrying the roles. Immutable."""
    active: bool = True
    """Whether the key should work; false deactivates it without deleting anything."""
    secret_name: Name | None = None
    """The Secret the key is written to (default: the key's name). Immutable."""
    secret_template: SecretTemplate | None = None
    """Extra keys, labels and annotations for the Secret."""
    policy_name: Name | None = None
    """The KeyPolicy to use (default: the namespace's `default` policy, else built-in defaults)."""
    rotation: KeyRotation = Field(default_factory=KeyRotation)
    """Automatic rotation."""
    deletion_protection: bool = False
    """Refuse DELETE unless the key carries the annotation credop.dev/confirm-delete: <its name>."""


class ServiceAccountKeyStatus(StatusModel):
    """What credop observed and did; never the secret."""

    observed_generation: int | None = None
    """The .metadata.generation this status describes."""
    phase: KeyPhase | None = None
    """Pending, Active, Inactive, Expired, Disabled or Failed."""
    reason: str | None = None
    """Why the key is in its phase, as a CamelCase word."""
    message: str | None = None
    """Why the key is in its phase, for humans."""
    access_key_id: str | None = None
    """The access key ID (public; the secret key is only in the Secret)."""
    policy: str | None = None
    """The KeyPolicy in force (`(built-in)` when none exists)."""
    created_by: str | None = None
    """The user who created the key, from the admission request."""
    created_at: datetime.datetime | None = None
    """When the first secret was minted."""
    expires_at: datetime.datetime | None = None
    """When the key expires; absent when it never does."""
    last_used_at: datetime.datetime | None = None
    """Last successful use; absent when never used."""
    last_rotated_at: datetime.datetime | None = None
    """When the current secret was minted."""
    rotation_due_at: datetime.datetime | None = None
    """When the rotation policy's period ends for the current secret."""
    secret_ref: SecretReference | None = None
    """The Secret holding the key."""
    key_generation: int | None = None
    """How many secrets have been minted for this key (1 before any rotation)."""
    previous_secret_valid_until: datetime.datetime | None = None
    """After a rotation with a grace period: until when the previous secret still works."""
    rotate_handled: str | None = None
    """The last credop.dev/rotate annotation value acted on."""
    tokens_invalid_before: datetime.datetime | None = None
    """Tokens issued to this key before this instant are rejected."""
    invalidate_tokens_handled: str | None = None
    """The last credop.dev/invalidate-tokens annotation value acted on."""
    claims_digest: str | None = None
    """JWT-format keys: a digest of the roles and expiry the current JWT carries (editing them mints a new JWT)."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, ExpiringSoon, RotationDue, Unused, SecretMissing."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    """The last transitions, oldest first (the audit log keeps every one)."""
    notices: list[NoticeRecord] = Field(default_factory=list, max_length=NOTICE_RECORD_LIMIT)
    """Notices sent for the current key generation, by receiver (each once per notice and generation)."""
