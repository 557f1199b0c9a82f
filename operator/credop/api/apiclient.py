"""ApiClient: an OAuth2 client that gets short-lived access tokens."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from credop.api.common import (
    ApiModel,
    Condition,
    Name,
    SecretKeyReference,
    SecretReference,
    SecretTemplate,
    StatusModel,
)
from credop.api.notifications import HISTORY_LIMIT, NOTICE_RECORD_LIMIT, HistoryEntry, NoticeRecord

ClientPhase = Literal["Pending", "Active", "Inactive", "Failed"]
PermissionLevel = Literal["ReadOnly", "CanEdit"]
CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


class ApiClientSpec(ApiModel):
    """The desired OAuth2 client."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretName) == has(oldSelf.secretName) && (!has(self.secretName) || self.secretName == oldSelf.secretName)",
                    "message": "spec.secretName is immutable",
                    "fieldPath": ".secretName",
                    "reason": "FieldValueForbidden",
                },
            ]
        }
    )

    client_id: str | None = Field(default=None, min_length=1, max_length=49, pattern=CLIENT_ID_PATTERN)
    """The client ID, unique in the namespace and under 50 characters (default: the object's name). Editable."""
    description: str | None = Field(default=None, max_length=1024)
    """What the client is for."""
    client_secret_ref: SecretKeyReference | None = None
    """A Secret holding a client secret you chose (checked against the policy); leave out to have credop generate one."""
    token_validity_seconds: int | None = Field(default=None, ge=1, le=31_536_000)
    """Lifetime of the access tokens, in seconds (default: the policy's, 3600)."""
    permission_level: PermissionLevel = "ReadOnly"
    """ReadOnly (GET calls only, scope `read`) or CanEdit (scope `read write`)."""
    active: bool = True
    """Whether the client should be Active; at most the policy's maxActiveClients are."""
    secret_name: Name | None = None
    """The Secret the client ID and secret are written to (default: the object's name). Immutable."""
    secret_template: SecretTemplate | None = None
    """Extra keys, labels and annotations for the Secret."""
    policy_name: Name | None = None
    """The KeyPolicy to use (default: the namespace's `default` policy, else built-in defaults)."""
    deletion_protection: bool = False
    """Refuse DELETE unless the client carries the annotation credop.dev/confirm-delete: <its name>."""


class ApiClientStatus(StatusModel):
    """What credop observed and did; never the secret."""

    observed_generation: int | None = None
    """The .metadata.generation this status describes."""
    phase: ClientPhase | None = None
    """Pending, Active, Inactive or Failed."""
    reason: str | None = None
    """Why the client is in its phase, e.g. ActiveLimitReached."""
    message: str | None = None
    """Why the client is in its phase, for humans."""
    client_id: str | None = None
    """The client ID in force."""
    token_validity_seconds: int | None = None
    """The access token lifetime in force, in seconds."""
    policy: str | None = None
    """The KeyPolicy in force (`(built-in)` when none exists)."""
    created_by: str | None = None
    """The user who created the client, from the admission request."""
    created_at: datetime.datetime | None = None
    """When the client's secret was first minted."""
    activation_requested_at: datetime.datetime | None = None
    """When the client started waiting for an active slot (oldest first)."""
    tokens_invalid_before: datetime.datetime | None = None
    """Tokens issued before this instant are rejected."""
    invalidate_tokens_handled: str | None = None
    """The last credop.dev/invalidate-tokens annotation value acted on."""
    rotate_handled: str | None = None
    """The last credop.dev/rotate annotation value acted on."""
    last_rotated_at: datetime.datetime | None = None
    """When the current secret was minted."""
    key_generation: int | None = None
    """How many secrets have been minted for this client."""
    last_used_at: datetime.datetime | None = None
    """Last successful token request; absent when never used."""
    last_updated: datetime.datetime | None = None
    """When the client's spec or state last changed."""
    secret_ref: SecretReference | None = None
    """The Secret holding the client ID and secret."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, SecretMissing."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    """The last transitions, oldest first (the audit log keeps every one)."""
    notices: list[NoticeRecord] = Field(default_factory=list, max_length=NOTICE_RECORD_LIMIT)
    """Notices sent for the current key generation, by receiver (each once per notice and generation)."""
