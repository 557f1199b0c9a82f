"""A schemathesis run against the service's own OpenAPI document: no 5xx, and answers as documented."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from credop.service import Allowance, ServiceSettings, build_app
from credop.service._openapi import openapi_document
from tests.servicekit import TEST_ISSUER, add_client, add_key, in_memory_state

schema = schemathesis.openapi.from_dict(openapi_document(TEST_ISSUER))
UNLIMITED = Allowance(burst=1e12, per_second=1e12)


class Service:
    """The app on a real port, in its own thread and event loop (schemathesis calls are blocking)."""

    def __init__(self) -> None:
        self.state = in_memory_state(
            settings=ServiceSettings(client_failures=UNLIMITED, address_failures=UNLIMITED, max_body_bytes=4096)
        )
        self.client = add_client(self.state, "fuzz", permission="CanEdit")
        add_key(self.state, "fuzz-key")
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(build_app(self.state), access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = next(address[1] for address in self.runner.addresses if isinstance(address, tuple))
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()
        self.state.close()

    @property
    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.client.identifier}:{self.client.secret}".encode()).decode()


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    running = Service()
    yield running
    running.stop()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_as_documented(case: schemathesis.Case, service: Service) -> None:
    case.call_and_validate(base_url=service.url)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_when_the_caller_is_authenticated(case: schemathesis.Case, service: Service) -> None:
    """With a valid Basic header. Credentials in the body as well are refused (RFC 6749 §2.3: one method
    only), so a schema-valid body may be rejected here: that one check is left out."""
    authenticated = case.method == "POST" and case.path.startswith("/oauth2")
    headers = {"Authorization": service.authorization} if authenticated else {}
    case.call_and_validate(base_url=service.url, headers=headers, excluded_checks=[positive_data_acceptance])
