"""Objects the CLI creates on the user's behalf (no API calls here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credop import API_VERSION
from credop.cli.kinds import API_CLIENT

DUPLICATED_FIELDS = ("description", "tokenValiditySeconds", "permissionLevel", "policyName")
"""What a duplicate keeps; never clientId, clientSecretRef or secretName: it gets its own ID and secret."""


def duplicate_client(source: Mapping[str, Any], new_name: str, *, client_id: str | None = None) -> dict[str, Any]:
    """A new ApiClient with ``source``'s description, token validity, permission level and policy."""
    spec = source.get("spec") or {}
    copied = {field: spec[field] for field in DUPLICATED_FIELDS if spec.get(field) is not None}
    if client_id:
        copied["clientId"] = client_id
    return {
        "apiVersion": API_VERSION,
        "kind": API_CLIENT.kind,
        "metadata": {"name": new_name, "namespace": source["metadata"]["namespace"]},
        "spec": copied,
    }
