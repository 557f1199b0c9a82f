"""Running the credential service on an event loop, in one process or several (``--workers N``).

uvloop is used when it is installed (it roughly halves the event loop's and
the sockets' share of a request). With ``workers > 1`` each worker is a
process of its own, started with ``spawn``, that builds its own state from
its own watches and listens on the same port with ``SO_REUSEPORT``, so the
kernel spreads connections over them: they share nothing but what the API
server tells each of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
