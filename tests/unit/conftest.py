"""Fixtures shared by the unit tests of the credential service: a fake clock, an in-memory state, an HTTP client.

``state`` is an :func:`~tests.servicekit.in_memory_state` on the test's ``clock``
(closed after the test); a module that needs other settings or objects in it
overrides ``state`` and keeps ``clock`` and ``http``. ``http`` talks to the
service's aiohttp application over a test server, without a network port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from credop.service import ServiceState, build_app
from tests.servicekit import FakeClock, in_memory_state

Http = TestClient  # type: ignore[type-arg]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> Iterator[ServiceState]:
    built = in_memory_state(clock=clock)
    yield built
    built.close()


@pytest.fixture
async def http(state: ServiceState) -> AsyncIterator[Http]:
    async with TestClient(TestServer(build_app(state))) as client:
        yield client
