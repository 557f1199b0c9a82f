"""What ``credop delete`` shows before it asks for confirmation (no API calls here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credop import names
from credop.cli.kinds import API_CLIENT, SERVICE_ACCOUNT_KEY, Target


def is_protected(body: Mapping[str, Any]) -> bool:
    """Whether spec.deletionProtection is on (DELETE needs the confirm-delete annotation)."""
    return bool((body.get("spec") or {}).get("deletionProtection"))


def deletion_plan(target: Target, body: Mapping[str, Any]) -> list[str]:
    """Lines that say what will be deleted and what follows from it."""
    meta, status = body["metadata"], body.get("status") or {}
    lines = [f'This deletes {target.kind.kind} "{target.name}" in namespace "{meta.get("namespace")}":']
    lines += [f"  {detail}" for detail in _details(target, status)]
    if is_protected(body):
        lines.append(
            f'  deletion protection is on: the CLI sets {names.CONFIRM_DELETE}: "{target.name}" before deleting'
        )
    if target.kind in (SERVICE_ACCOUNT_KEY, API_CLIENT):
        lines.append("Anything that uses this credential stops working.")
    return lines


def _details(target: Target, status: Mapping[str, Any]) -> list[str]:
    phase = status.get("phase") or "Pending"
    secret = (status.get("secretRef") or {}).get("name")
    secret_note = [f'its Secret "{secret}" (garbage-collected with it)'] if secret else []
    if target.kind is SERVICE_ACCOUNT_KEY:
        return [f"access key {status.get('accessKeyId') or '(not minted)'}, phase {phase}", *secret_note]
    if target.kind is API_CLIENT:
        return [f"client ID {status.get('clientId') or '(not minted)'}, phase {phase}", *secret_note]
    used_by = status.get("credentials")
    return [f"{used_by} credentials use this policy"] if used_by else []
