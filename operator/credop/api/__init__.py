"""The credop.dev/v1alpha1 API: pydantic models of each kind's spec and status.

These models are the single source of truth: the CRD YAML in ``crds/`` and the
Helm chart is generated from them (``python -m credop.api.crdgen``), the
operator parses objects with them, and the admission webhooks validate with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from credop.api.apiclient import ApiClientSpec, ApiClientStatus
from credop.api.keypolicy import KeyPolicySpec, KeyPolicyStatus
from credop.api.serviceaccountkey import ServiceAccountKeySpec, ServiceAccountKeyStatus


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    """One custom resource kind and how it is presented."""

    kind: str
    plural: str
    short_name: str
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[PrinterColumn, ...]
    selectable_fields: tuple[str, ...] = ()
    """Spec fields ``kubectl get --field-selector`` can filter on (CRD selectableFields)."""

    @property
    def singular(self) -> str:
        return self.kind.lower()


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
CREATED_BY = PrinterColumn("Created-By", ".status.createdBy", description="Who created it", priority=1)
LAST_UPDATED = PrinterColumn(
    "Last-Updated",
    '.status.conditions[?(@.type=="Ready")].lastTransitionTime',
    "date",
    description="When it last changed state",
    priority=1,
)

SERVICE_ACCOUNT_KEY = Kind(
    kind="ServiceAccountKey",
    plural="serviceaccountkeys",
    short_name="sak",
    description="An access key ID and secret key for programmatic access, minted once into a Secret.",
    spec=ServiceAccountKeySpec,
    status=ServiceAccountKeyStatus,
    columns=(
        PrinterColumn("Access-Key", ".status.accessKeyId", description="The access key ID"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Expires", ".status.expiresAt", description="When the key expires"),
        PrinterColumn("Last-Used", ".status.lastUsedAt", "date"),
        AGE,
        PrinterColumn("Service-Account", ".spec.serviceAccount", priority=1),
        PrinterColumn("Roles", ".spec.roles[*].name", description="The roles the key carries", priority=1),
        CREATED_BY,
        LAST_UPDATED,
        PrinterColumn("Reason", ".status.reason", priority=1),
        PrinterColumn("Rotation-Due", ".status.rotationDueAt", priority=1),
    ),
    selectable_fields=(".spec.serviceAccount",),
)
API_CLIENT = Kind(
    kind="ApiClient",
    plural="apiclients",
    short_name="apic",
    description="An OAuth2 client that gets short-lived access tokens with the client credentials grant.",
    spec=ApiClientSpec,
    status=ApiClientStatus,
    columns=(
        PrinterColumn("Client-ID", ".status.clientId"),
        PrinterColumn("Permission", ".spec.permissionLevel"),
        PrinterColumn("Token-Validity", ".status.tokenValiditySeconds", "integer"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Last-Used", ".status.lastUsedAt", "date"),
        AGE,
        CREATED_BY,
        LAST_UPDATED,
        PrinterColumn("Reason", ".status.reason", priority=1),
    ),
    selectable_fields=(".spec.clientId",),
)
KEY_POLICY = Kind(
    kind="KeyPolicy",
    plural="keypolicies",
    short_name="kpol",
    description="A tenant's rules for credentials: expiry, rotation, usage, creators, limits.",
    spec=KeyPolicySpec,
    status=KeyPolicyStatus,
    columns=(
        PrinterColumn("Rotation", ".spec.rotation.period"),
        PrinterColumn("Max-Idle", ".spec.usage.maxIdle"),
        PrinterColumn("Max-Active-Clients", ".spec.maxActiveClients", "integer"),
        PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        AGE,
    ),
)
KINDS = (SERVICE_ACCOUNT_KEY, API_CLIENT, KEY_POLICY)

__all__ = [
    "API_CLIENT",
    "KEY_POLICY",
    "KINDS",
    "SERVICE_ACCOUNT_KEY",
    "ApiClientSpec",
    "ApiClientStatus",
    "KeyPolicySpec",
    "KeyPolicyStatus",
    "Kind",
    "PrinterColumn",
    "ServiceAccountKeySpec",
    "ServiceAccountKeyStatus",
]
