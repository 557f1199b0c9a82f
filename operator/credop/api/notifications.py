"""KeyPolicy.spec.notifications: where credop sends notices about credentials, and to whom.

Receivers are reached only as the operator's destination rules allow (public
addresses, plain HTTP only to destinations the operator's allow-list names);
the Secrets a receiver names are read from the policy's namespace and must be
labelled ``credop.dev/notifications: "true"``, so a policy cannot make credop
send an unrelated Secret's value anywhere.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field, model_validator

from credop.api.common import ApiModel, Name, StatusModel

NoticeType = Literal[
    "ExpiringSoon",
    "Expired",
    "RotationDue",
    "Rotated",
    "Unused",
    "Disabled",
    "Deactivated",
    "ActiveLimitReached",
    "SecretMissing",
]
NOTICE_TYPES: tuple[NoticeType, ...] = get_args(NoticeType)
EMAIL_PATTERN = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
URL_PATTERN = r"^https?://[^\s/?#@]+(/[^\s]*)?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
RECEIVER_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DOMAIN_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
MAX_RECEIVERS = 16
HISTORY_LIMIT = 20
"""Transitions kept on each credential's status (the audit log keeps every one)."""
NOTICE_RECORD_LIMIT = 32
"""Notice records kept on status: the current key generation's (at most one per notice) and the previous one's."""

EmailAddress = Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN, examples=["alice@example.com"])]


class NotificationSecretKey(ApiModel):
    """A key of a Secret in the policy's namespace labelled credop.dev/notifications: "true"."""

    name: Name
    """The Secret's name."""
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)
    """The key in the Secret's data."""


class NotificationSecret(ApiModel):
    """A Secret in the policy's namespace labelled credop.dev/notifications: "true"."""

    name: Name
    """The Secret's name."""


class WebhookReceiver(ApiModel):
    """A JSON POST of each notice to a URL, optionally signed."""

    url: str = Field(max_length=2048, pattern=URL_PATTERN)
    """Where to POST: https, or http only to a destination the operator's allow-list names."""
    signing_secret_ref: NotificationSecretKey | None = None
    """A key whose value signs each request: header X-Credop-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""


class SlackReceiver(ApiModel):
    """A Slack (or compatible) incoming webhook; its URL is a secret, so it is read from a Secret."""

    url_secret_ref: NotificationSecretKey
    """The key holding the incoming-webhook URL."""


class EmailReceiver(ApiModel):
    """Mail through an SMTP server, always with STARTTLS."""

    model_config = ConfigDict(populate_by_name=True)

    smtp_secret_ref: NotificationSecret
    """A Secret with host, port (default 587), optional username and password, optional ca.crt (PEM) for a private CA."""
    sender: EmailAddress = Field(alias="from")
    """The From address."""
    subject_prefix: str = Field(default="[credop]", max_length=64, pattern=r"^[^\r\n]*$")
    """Put before every subject."""


class Recipients(ApiModel):
    """Who an email receiver writes to (webhook and Slack payloads name them too)."""

    creator: bool = True
    """The credential's creator (status.createdBy), at the address creatorAddresses maps them to, else the credential's credop.dev/notify-email annotation, else createdBy itself when it is an address."""
    admins: bool = True
    """The policy's notifications.admins."""
    addresses: list[EmailAddress] = Field(default_factory=list, max_length=64)
    """Fixed addresses."""


class Receiver(ApiModel):
    """One destination for notices: exactly one of webhook, slack, email."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.webhook) ? 1 : 0) + (has(self.slack) ? 1 : 0) + (has(self.email) ? 1 : 0) == 1",
                    "message": "spec.notifications.receivers[]: set exactly one of webhook, slack and email",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63, pattern=RECEIVER_NAME_PATTERN)
    """The receiver's name (unique in the policy; status.notices records deliveries by it)."""
    webhook: WebhookReceiver | None = None
    """A JSON POST to a URL."""
    slack: SlackReceiver | None = None
    """A Slack incoming webhook."""
    email: EmailReceiver | None = None
    """Mail by SMTP with STARTTLS."""
    notices: list[NoticeType] = Field(default_factory=list, max_length=len(NOTICE_TYPES))
    """The notices it gets (default: all): ExpiringSoon, Expired, RotationDue, Rotated, Unused, Disabled, Deactivated, ActiveLimitReached, SecretMissing."""
    to: Recipients = Field(default_factory=Recipients)
    """Who the notices are for."""

    @model_validator(mode="after")
    def _one_kind(self) -> Receiver:
        if sum(kind is not None for kind in (self.webhook, self.slack, self.email)) != 1:
            raise ValueError("notifications.receivers[]: set exactly one of webhook, slack and email")
        return self

    @property
    def kind(self) -> str:
        return "webhook" if self.webhook else "slack" if self.slack else "email"


class Notifications(ApiModel):
    """Notices about this policy's credentials, each sent once per credential, notice and key generation."""

    receivers: list[Receiver] = Field(
        default_factory=list,
        max_length=MAX_RECEIVERS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Where notices go."""
    admins: list[EmailAddress] = Field(default_factory=list, max_length=64)
    """The policy's admins: the addresses receivers with to.admins write to."""
    creator_addresses: dict[str, EmailAddress] = Field(default_factory=dict, json_schema_extra={"maxProperties": 1000})
    """Creator (status.createdBy, the user name the API server authenticated) → email address."""
    allowed_domains: list[str] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"items": {"type": "string", "maxLength": 253, "pattern": DOMAIN_PATTERN}},
    )
    """When set, mail goes only to addresses in these domains (and their subdomains)."""

    @model_validator(mode="after")
    def _unique_names(self) -> Notifications:
        names = [receiver.name for receiver in self.receivers]
        if len(names) != len(set(names)):
            raise ValueError("notifications.receivers[].name must be unique")
        return self

    def receiver(self, name: str) -> Receiver | None:
        return next((receiver for receiver in self.receivers if receiver.name == name), None)


class HistoryEntry(StatusModel):
    """One transition of the credential."""

    time: datetime.datetime
    """When credop recorded it."""
    action: str
    """Created, Rotated, TokensInvalidated, Activated, Deactivated, WaitingForSlot, Disabled, Expired, Failed, ClientIdChanged, ExpiryExtended, ExpiryShortened, RestartedTargets."""
    actor: str | None = None
    """Who did it, where known: the creator, credop (its own actions), or policy/<name>."""
    generation: int | None = None
    """The key generation after the transition."""
    message: str | None = None
    """What happened, for humans."""


class NoticeRecord(StatusModel):
    """Which receivers have had one notice for one key generation."""

    notice: str
    """The notice: ExpiringSoon, Expired, RotationDue, Rotated, Unused, Disabled, Deactivated, ActiveLimitReached, SecretMissing."""
    generation: int
    """The key generation it was about."""
    delivered: list[str] = Field(default_factory=list)
    """Receivers that accepted it."""
    failed: list[str] = Field(default_factory=list)
    """Receivers credop gave up on after its retries."""
    sent_at: datetime.datetime | None = None
    """The last delivery."""
    error: str | None = None
    """Why the last failed receiver failed (never a secret)."""
