"""Audit lines: one JSON line per token issued and per transition, never with a secret or a token."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from credop import audit
from credop.logs import JsonFormatter
from credop.service import ServiceState
from tests.servicekit import add_client

Http = TestClient  # type: ignore[type-arg]


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("credop.audit")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


async def test_each_token_issued_is_one_audit_line_without_the_token(
    http: Http, state: ServiceState, lines: Lines
) -> None:
    client = add_client(state, "billing")
    form = {"grant_type": "client_credentials", "client_id": client.identifier, "client_secret": client.secret}
    response = await http.post(
        "/oauth2/token", data=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    token = (await response.json())["access_token"]
    entries = [json.loads(line) for line in lines.lines]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["logger"] == "credop.audit" and entry["level"] == "info"
    assert entry["audit"]["action"] == "TokenIssued"
    assert entry["audit"]["kind"] == "ApiClient" and entry["audit"]["namespace"] == "team-a"
    assert entry["audit"]["name"] == "billing" and entry["audit"]["client_id"] == "team-a/billing"
    assert entry["audit"]["scope"] == "read" and entry["audit"]["jti"]
    assert entry["audit"]["expires_at"] > entry["audit"]["issued_at"]
    assert token not in lines.lines[0] and client.secret not in lines.lines[0]


def test_a_transition_line(lines: Lines) -> None:
    audit.record(
        "Rotated", kind="ServiceAccountKey", namespace="ns", name="ci", actor="credop", generation=2, skip=None
    )
    entry = json.loads(lines.lines[0])
    assert entry["message"] == "audit: Rotated ServiceAccountKey ns/ci"
    assert entry["audit"] == {
        "action": "Rotated",
        "kind": "ServiceAccountKey",
        "namespace": "ns",
        "name": "ci",
        "actor": "credop",
        "generation": 2,
    }
