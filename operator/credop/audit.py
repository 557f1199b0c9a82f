"""The audit log: one structured JSON line per credential transition, token issued and notice delivered.

Log pipelines keep the whole record (status keeps only the last few
transitions, Events last an hour). Lines carry names, IDs, times, reasons and
actors, never a secret value or a token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from credop.logs import write_json_line

logger = logging.getLogger("credop.audit")


def record(action: str, *, kind: str, namespace: str, name: str, **fields: Any) -> None:
    """Write one audit line (the JSON formatter puts ``audit`` beside the message)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    audit = {"action": action, "kind": kind, "namespace": namespace, "name": name}
    audit.update({key: value for key, value in fields.items() if value is not None})
    message = f"audit: {action} {kind} {namespace}/{name}"
    if not write_json_line(logger, message, fields={"audit": audit}):
        logger.info("%s", message, extra={"audit": audit})


def token_issued(*, credential: Any, claims: Mapping[str, Any], scopes: Sequence[str]) -> None:
    """A token issuance: who got which token (its ``jti``, never the token), until when, with what scope."""
    if not logger.isEnabledFor(logging.INFO):
        return
    record(
        "TokenIssued",
        kind=credential.kind,
        namespace=credential.namespace,
        name=credential.name,
        uid=credential.uid,
        client_id=claims.get("client_id"),
        jti=claims.get("jti"),
        scope=" ".join(scopes),
        issued_at=claims.get("iat"),
        expires_at=claims.get("exp"),
    )
