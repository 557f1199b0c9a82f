"""credop's credential service: OAuth2 tokens, introspection, revocation, JWKS, verification, usage.

The HTTP side of the "Credential service" in SPEC.md. Each replica keeps an
in-memory view of credentials, verifiers and credop's keys fed by watches,
answers from it without calling the API per request, and writes back only
``status.lastUsedAt`` (batched) and shared revocations (a ConfigMap).

Public API:

- :func:`run_service` / :class:`CredentialService`: one replica against a cluster;
  :func:`run_workers`: the same in N processes on one port (``credop service --workers N``).
- :func:`build_app` over a :class:`ServiceState`: the aiohttp application, for
  tests and benchmarks that feed the state themselves.
"""

from __future__ import annotations

from credop.service._http import build_app
from credop.service._ratelimit import Allowance
from credop.service._service import CredentialService, run_service
from credop.service._state import ServiceSettings, ServiceState, UsageWriter
from credop.service._workers import run_workers

__all__ = [
    "Allowance",
    "CredentialService",
    "ServiceSettings",
    "ServiceState",
    "UsageWriter",
    "build_app",
    "run_service",
    "run_workers",
]
