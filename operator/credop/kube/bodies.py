"""Reading Kubernetes object bodies (JSON dicts as the API returns them)."""

from __future__ import annotations

import base64
from typing import Any

Body = dict[str, Any]


def data_value(secret: Body, key: str) -> str | None:
    """A Secret's ``data[key]`` decoded (the API returns data base64-encoded); ``None`` when absent."""
    raw = (secret.get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw is not None else None
