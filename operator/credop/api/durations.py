"""How durations are spelled in every kind's spec: ``90d``, ``12h30m``, ``45s`` (and ``Never`` / ``None`` where allowed).

The patterns live with the API models (the schema checks them); parsing them
into time is :mod:`credop.domain.durations`.
"""

from __future__ import annotations

DURATION_PATTERN = r"^([0-9]+(s|m|h|d))+$"
NO_NOTICE = "None"
DURATION_OR_NEVER_PATTERN = r"^(Never|([0-9]+(s|m|h|d))+)$"
NOTIFY_BEFORE_PATTERN = r"^(None|([0-9]+(s|m|h|d))+)$"
