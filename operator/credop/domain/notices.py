"""Notices: which are due for a credential, for whom, whether already sent, and what they say.

A notice is due while what it reports holds (the status shows it) and the
credential's status has no record of it for the current key generation and
receiver. Delivery records it there, so deciding again after a crash, a
restart or a leader change finds the same answer: nothing is sent twice,
nothing due is dropped. Nothing here sends, reads a clock or draws random
numbers: ``now`` and ``random`` are parameters.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from credop.api.common import DISABLED, EXPIRED, INACTIVE
from credop.api.notifications import (
    EMAIL_PATTERN,
    NOTICE_RECORD_LIMIT,
    NOTICE_TYPES,
    Notifications,
    Receiver,
)
from credop.domain.conditions import timestamp

SIGNATURE_HEADER = "X-Credop-Signature"
DELIVERY_HEADER = "X-Credop-Delivery"
NOTICE_HEADER = "X-Credop-Notice"
NOTIFY_EMAIL_ANNOTATION = "credop.dev/notify-email"
ERROR_LIMIT = 200
_EMAIL = re.compile(EMAIL_PATTERN)

# The status each notice reports: a condition that is True, or a phase (with a reason).
_BY_CONDITION = {"ExpiringSoon": "ExpiringSoon", "RotationDue": "RotationDue", "Unused": "Unused"}
SEVERITY = {
    "ExpiringSoon": "warning",
    "Expired": "critical",
    "RotationDue": "warning",
    "Rotated": "info",
    "Unused": "warning",
    "Disabled": "critical",
    "Deactivated": "info",
    "ActiveLimitReached": "warning",
    "SecretMissing": "critical",
}
TITLE = {
    "ExpiringSoon": "expires soon",
    "Expired": "has expired",
    "RotationDue": "is due for rotation",
    "Rotated": "was rotated automatically",
    "Unused": "has not been used",
    "Disabled": "was disabled by its policy",
    "Deactivated": "was deactivated",
    "ActiveLimitReached": "waits for an active slot",
    "SecretMissing": "lost its Secret",
}


@dataclass(frozen=True)
class NoticeFacts:
    """What a notice may say about one credential: its status, never its secret."""

    kind: str
    namespace: str
    name: str
    uid: str
    status: Mapping[str, Any]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        """The key generation notices are counted per (0 before the first secret)."""
        value = self.status.get("keyGeneration")
        return int(value) if isinstance(value, int) else 0

    @property
    def created_by(self) -> str:
        return str(self.status.get("createdBy") or "")

    @property
    def identifier(self) -> str:
        return str(self.status.get("accessKeyId") or self.status.get("clientId") or "")

    def condition_true(self, condition_type: str) -> bool:
        return any(
            c.get("type") == condition_type and c.get("status") == "True" for c in self.status.get("conditions") or []
        )

    def condition_message(self, condition_type: str) -> str:
        return next(
            (
                str(c.get("message") or "")
                for c in self.status.get("conditions") or []
                if c.get("type") == condition_type
            ),
            "",
        )


@dataclass(frozen=True)
class Due:
    """One notice owed to one receiver."""

    notice: str
    generation: int
    receiver: str


def holding(facts: NoticeFacts) -> tuple[str, ...]:
    """The notices whose subject holds now, in :data:`NOTICE_TYPES` order."""
    return tuple(notice for notice in NOTICE_TYPES if _holds(facts, notice))


def _holds(facts: NoticeFacts, notice: str) -> bool:
    status = facts.status
    phase, reason = status.get("phase"), status.get("reason")
    if notice in _BY_CONDITION:
        return facts.condition_true(_BY_CONDITION[notice]) and phase not in (EXPIRED, DISABLED)
    if notice == "Expired":
        return phase == EXPIRED
    if notice == "Rotated":
        return facts.generation > 1 and str(status.get("rotateHandled") or "").startswith("auto:")
    if notice == "Disabled":
        return phase == DISABLED
    if notice == "Deactivated":
        return phase == INACTIVE and reason == "Deactivated"
    if notice == "ActiveLimitReached":
        return phase == INACTIVE and reason == "ActiveLimitReached"
    if notice == "SecretMissing":
        return facts.condition_true("SecretMissing")
    return False


def subscribed(receiver: Receiver, notice: str) -> bool:
    return not receiver.notices or notice in receiver.notices


def due(facts: NoticeFacts, notifications: Notifications | None, ledger: Sequence[Mapping[str, Any]]) -> list[Due]:
    """Every (notice, receiver) owed now: holding, subscribed to, and not yet recorded for this generation."""
    if notifications is None or not notifications.receivers or not facts.uid:
        return []
    generation = facts.generation
    owed = []
    for notice in holding(facts):
        for receiver in notifications.receivers:
            if subscribed(receiver, notice) and not recorded(ledger, notice, generation, receiver.name):
                owed.append(Due(notice, generation, receiver.name))
    return owed


def still_due(facts: NoticeFacts, item: Due) -> bool:
    """Whether a queued notice is still owed by the credential's current status (before sending it)."""
    return facts.generation == item.generation and item.notice in holding(facts)


def _record_of(ledger: Sequence[Mapping[str, Any]], notice: str, generation: int) -> Mapping[str, Any] | None:
    return next((r for r in ledger if r.get("notice") == notice and r.get("generation") == generation), None)


def recorded(ledger: Sequence[Mapping[str, Any]], notice: str, generation: int, receiver: str) -> bool:
    """Whether status records ``receiver`` as done (delivered or given up) with this notice and generation."""
    record = _record_of(ledger, notice, generation)
    if record is None:
        return False
    return receiver in (record.get("delivered") or []) or receiver in (record.get("failed") or [])


def ledger_with(
    ledger: Sequence[Mapping[str, Any]],
    item: Due,
    *,
    delivered: bool,
    now: datetime.datetime,
    error: str | None = None,
) -> list[dict[str, Any]]:
    """The status.notices list after ``item`` was delivered (or given up on); older generations pruned."""
    record = dict(
        _record_of(ledger, item.notice, item.generation) or {"notice": item.notice, "generation": item.generation}
    )
    done_key = "delivered" if delivered else "failed"
    names = [name for name in record.get(done_key) or [] if name != item.receiver]
    record[done_key] = [*names, item.receiver]
    if delivered:
        record["sentAt"] = timestamp(now)
    else:
        record["error"] = f"{item.receiver}: {error or 'failed'}"[:ERROR_LIMIT]
    others = [
        dict(r)
        for r in ledger
        if not (r.get("notice") == item.notice and r.get("generation") == item.generation)
        and int(r.get("generation") or 0) >= item.generation - 1
    ]
    return [*others, record][-NOTICE_RECORD_LIMIT:]


def creator_address(facts: NoticeFacts, notifications: Notifications) -> str | None:
    """The creator's address: the policy's table, else the credential's annotation, else createdBy if an address."""
    creator = facts.created_by
    candidates = (
        notifications.creator_addresses.get(creator) if creator else None,
        facts.annotations.get(NOTIFY_EMAIL_ANNOTATION),
        creator,
    )
    return next((candidate for candidate in candidates if candidate and is_address(candidate)), None)


def is_address(text: str) -> bool:
    return len(text) <= 254 and _EMAIL.fullmatch(text) is not None


def in_allowed_domains(address: str, domains: Sequence[str]) -> bool:
    """Whether ``address`` is in one of ``domains`` or their subdomains (no domains: any)."""
    if not domains:
        return True
    host = address.rpartition("@")[2].lower()
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in domains)


def recipients(receiver: Receiver, notifications: Notifications, facts: NoticeFacts) -> tuple[str, ...]:
    """Who ``receiver``'s notice is for, deduplicated, in a stable order, within the allowed domains."""
    wanted: list[str] = []
    if receiver.to.creator:
        address = creator_address(facts, notifications)
        wanted += [address] if address else []
    if receiver.to.admins:
        wanted += notifications.admins
    wanted += receiver.to.addresses
    unique = dict.fromkeys(a for a in wanted if is_address(a) and in_allowed_domains(a, notifications.allowed_domains))
    return tuple(unique)


def notice_id(facts: NoticeFacts, item: Due) -> str:
    """The delivery ID: the same on every retry, so a receiver can drop a duplicate after a crash."""
    return f"{facts.uid}.{item.notice}.{item.generation}"


@dataclass(frozen=True)
class Message:
    """A notice as sent: a subject, a text and the JSON document (names, IDs, times and reasons only)."""

    id: str
    notice: str
    severity: str
    subject: str
    text: str
    document: dict[str, Any]


def compose(
    facts: NoticeFacts,
    item: Due,
    *,
    recipients: Sequence[str],
    policy: str,
    owner: str | None,
    now: datetime.datetime,
) -> Message:
    """The notice ``item`` about ``facts``; its words come from status, never from a Secret."""
    what = f"{facts.kind} {facts.namespace}/{facts.name}"
    subject = f"{what} {TITLE[item.notice]}"
    detail = _detail(facts, item.notice)
    lines = [f"{subject}.", *([detail] if detail else []), *_facts_lines(facts, policy)]
    document = {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": "Notice",
        "id": notice_id(facts, item),
        "notice": item.notice,
        "severity": SEVERITY[item.notice],
        "time": timestamp(now),
        "summary": subject,
        "detail": detail,
        "credential": _credential(facts, item, policy, owner),
        "recipients": list(recipients),
    }
    return Message(notice_id(facts, item), item.notice, SEVERITY[item.notice], subject, "\n".join(lines), document)


def _detail(facts: NoticeFacts, notice: str) -> str:
    status = facts.status
    if notice in _BY_CONDITION:
        return facts.condition_message(_BY_CONDITION[notice])
    if notice == "SecretMissing":
        return facts.condition_message("SecretMissing")
    if notice == "Rotated":
        grace = status.get("previousSecretValidUntil")
        return f"New secret: generation {facts.generation}" + (
            f"; the previous one works until {grace}" if grace else ""
        )
    return str(status.get("message") or "")


def _facts_lines(facts: NoticeFacts, policy: str) -> list[str]:
    status = facts.status
    pairs = (
        ("Identifier", facts.identifier),
        ("Phase", status.get("phase")),
        ("Created by", facts.created_by),
        ("Expires", status.get("expiresAt")),
        ("Rotation due", status.get("rotationDueAt")),
        ("Last used", status.get("lastUsedAt") or "never"),
        ("Policy", policy),
    )
    return ["", *(f"{label}: {value}" for label, value in pairs if value)]


def _credential(facts: NoticeFacts, item: Due, policy: str, owner: str | None) -> dict[str, Any]:
    status = facts.status
    fields = {
        "kind": facts.kind,
        "namespace": facts.namespace,
        "name": facts.name,
        "uid": facts.uid,
        "identifier": facts.identifier or None,
        "generation": item.generation,
        "phase": status.get("phase"),
        "reason": status.get("reason"),
        "createdBy": facts.created_by or None,
        "expiresAt": status.get("expiresAt"),
        "rotationDueAt": status.get("rotationDueAt"),
        "lastUsedAt": status.get("lastUsedAt"),
        "policy": policy,
        "owner": owner,
    }
    return {key: value for key, value in fields.items() if value is not None}


def slack_document(message: Message) -> dict[str, Any]:
    """Slack's incoming-webhook shape: a text fallback and one section."""
    icon = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}[message.severity]
    return {
        "text": f"{icon} {message.subject}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{message.subject}*\n{message.text}"}}
        ],
    }


def signature(body: bytes, key: bytes, *, at: int) -> str:
    """The X-Credop-Signature value: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    mac = hmac.new(key, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def signature_valid(header: str, body: bytes, key: bytes, *, now: int, tolerance: int = 300) -> bool:
    """A receiver's check: the signature matches and its time is within ``tolerance`` seconds (no replays)."""
    parts = dict(part.partition("=")[::2] for part in header.split(","))
    try:
        at = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = signature(body, key, at=at)
    return abs(now - at) <= tolerance and hmac.compare_digest(expected, f"t={at},v1={parts.get('v1', '')}")


def backoff(attempt: int, *, random: Callable[[], float], base: float = 2.0, cap: float = 600.0) -> float:
    """Seconds before retry ``attempt`` (1, 2, …): exponential, capped, with full jitter above half."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return ceiling / 2 + random() * ceiling / 2


@dataclass
class TokenBucket:
    """A rate limit per receiver: ``burst`` notices at once, then ``per_minute``."""

    burst: float
    per_minute: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, *, now: float) -> float:
        """Take a token: 0 when one was free, else the seconds until one is (nothing taken)."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        rate = self.per_minute / 60.0
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate if rate > 0 else float("inf")
