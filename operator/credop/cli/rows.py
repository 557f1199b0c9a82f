"""One table row per credential, read from the object as the API server returns it (no API calls here)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credop.cli import times
from credop.cli.kinds import API_CLIENT, SERVICE_ACCOUNT_KEY
from credop.cli.tables import render_table
from credop.domain.lifecycle import EXPIRING_SOON, ROTATION_DUE, SECRET_MISSING, UNUSED

Body = Mapping[str, Any]
COMPLIANT = "ok"
UNKNOWN = "-"
# status.conditions that mean the credential is out of policy, and how the table names them.
POLICY_CONDITIONS = {
    EXPIRING_SOON: "expiring-soon",
    ROTATION_DUE: "rotation-due",
    UNUSED: "unused",
    SECRET_MISSING: "secret-missing",
}


@dataclass(frozen=True)
class CredentialRow:
    """What status and report show of one ServiceAccountKey or ApiClient."""

    namespace: str
    kind: str
    name: str
    identifier: str | None
    phase: str | None
    reason: str | None
    created_at: str | None
    expires_at: str | None
    never_expires: bool
    last_used_at: str | None
    compliance: tuple[str, ...] | None
    """The policy problems from status.conditions; ``None`` before credop reported any condition."""
    policy: str
    service_account: str | None = None
    roles: tuple[str, ...] = ()
    created_by: str | None = None
    last_updated: str | None = None
    """When it last changed state (its Ready condition's last transition)."""

    @property
    def compliance_text(self) -> str:
        if self.compliance is None:
            return UNKNOWN
        return ",".join(self.compliance) or COMPLIANT

    def cells(self, *, now: datetime.datetime) -> list[str]:
        """KIND, NAME, ID, PHASE, REASON, AGE, EXPIRES, LAST-USED, COMPLIANCE."""
        return [
            self.kind,
            self.name,
            self.identifier or UNKNOWN,
            self.phase or "Pending",
            self.reason if self.reason and self.reason != self.phase else UNKNOWN,
            times.age(self.created_at, now=now),
            times.expiry(self.expires_at, never_expires=self.never_expires, now=now),
            times.last_use(self.last_used_at, now=now),
            self.compliance_text,
        ]

    def wide_cells(self, *, now: datetime.datetime) -> list[str]:
        """The cells plus SERVICE-ACCOUNT, ROLES, CREATED-BY, LAST-UPDATED."""
        return [
            *self.cells(now=now),
            self.service_account or UNKNOWN,
            ",".join(self.roles) or UNKNOWN,
            self.created_by or UNKNOWN,
            times.age(self.last_updated, now=now) if self.last_updated else UNKNOWN,
        ]

    def matches(self, text: str) -> bool:
        """Whether ``text`` is part of its name, ID, service account or creator (any case)."""
        wanted = text.lower()
        fields = (self.name, self.identifier, self.service_account, self.created_by)
        return any(wanted in field.lower() for field in fields if field)

    def as_dict(self, *, now: datetime.datetime) -> dict[str, Any]:
        """The row for ``-o json|yaml``: raw timestamps next to their human spelling."""
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "id": self.identifier,
            "phase": self.phase or "Pending",
            "reason": self.reason,
            "policy": self.policy,
            "createdAt": self.created_at,
            "age": times.age(self.created_at, now=now),
            "expiresAt": self.expires_at,
            "expires": times.expiry(self.expires_at, never_expires=self.never_expires, now=now),
            "lastUsedAt": self.last_used_at,
            "lastUsed": times.last_use(self.last_used_at, now=now),
            "compliance": list(self.compliance) if self.compliance is not None else None,
            "serviceAccount": self.service_account,
            "roles": list(self.roles),
            "createdBy": self.created_by,
            "lastUpdated": self.last_updated,
        }


HEADERS = ("KIND", "NAME", "ID", "PHASE", "REASON", "AGE", "EXPIRES", "LAST-USED", "COMPLIANCE")
WIDE_HEADERS = (*HEADERS, "SERVICE-ACCOUNT", "ROLES", "CREATED-BY", "LAST-UPDATED")


def row_of(body: Body) -> CredentialRow:
    """The row of a ServiceAccountKey or ApiClient object."""
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    kind = str(body.get("kind") or "")
    identifier = status.get("accessKeyId") if kind == SERVICE_ACCOUNT_KEY.kind else status.get("clientId")
    return CredentialRow(
        namespace=meta.get("namespace", ""),
        kind=kind,
        name=meta["name"],
        identifier=identifier,
        phase=status.get("phase"),
        reason=status.get("reason"),
        created_at=meta.get("creationTimestamp"),
        expires_at=status.get("expiresAt"),
        never_expires=bool(spec.get("neverExpires")) and kind != API_CLIENT.kind,
        last_used_at=status.get("lastUsedAt"),
        compliance=compliance_of(status.get("conditions")),
        policy=status.get("policy") or spec.get("policyName") or "default",
        service_account=spec.get("serviceAccount"),
        roles=tuple(str(role.get("name")) for role in spec.get("roles") or () if isinstance(role, Mapping)),
        created_by=status.get("createdBy") or (meta.get("annotations") or {}).get("credop.dev/created-by"),
        last_updated=_ready_since(status.get("conditions")),
    )


def _ready_since(conditions: Sequence[Body] | None) -> str | None:
    return next((str(c.get("lastTransitionTime")) for c in conditions or () if c.get("type") == "Ready"), None)


def compliance_of(conditions: Sequence[Body] | None) -> tuple[str, ...] | None:
    """The policy problems among ``conditions`` (True ones only), in a fixed order."""
    if not conditions:
        return None
    true_types = {str(c.get("type")) for c in conditions if c.get("status") == "True"}
    return tuple(label for condition, label in POLICY_CONDITIONS.items() if condition in true_types)


def sorted_rows(rows: Sequence[CredentialRow]) -> list[CredentialRow]:
    """Namespace, then keys before clients (as listed), then name."""
    kind_order = {SERVICE_ACCOUNT_KEY.kind: 0, API_CLIENT.kind: 1}
    return sorted(rows, key=lambda row: (row.namespace, kind_order.get(row.kind, 2), row.name))


def credential_table(
    rows: Sequence[CredentialRow], *, all_namespaces: bool, now: datetime.datetime, wide: bool = False
) -> str:
    """The status table; with a NAMESPACE column first when listing every namespace, more columns when wide."""
    headers = WIDE_HEADERS if wide else HEADERS
    cells = [row.wide_cells(now=now) if wide else row.cells(now=now) for row in rows]
    if all_namespaces:
        return render_table(
            ("NAMESPACE", *headers), [[row.namespace, *row_cells] for row, row_cells in zip(rows, cells, strict=True)]
        )
    return render_table(headers, cells)
