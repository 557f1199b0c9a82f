"""Printing structured results as JSON or YAML for scripts (``-o json|yaml``)."""

from __future__ import annotations

import json
from typing import Any

import yaml

TABLE = "table"
JSON = "json"
YAML = "yaml"
FORMATS = (TABLE, JSON, YAML)


def dumps(document: Any, output_format: str) -> str:
    """``document`` as indented JSON or block-style YAML, keys in the order given."""
    if output_format == JSON:
        return json.dumps(document, indent=2, ensure_ascii=False)
    if output_format == YAML:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).rstrip("\n")
    raise ValueError(f"not a structured format: {output_format}")
