"""An operator process that dies (``os._exit``, like SIGKILL) around its first notice delivery.

Run as ``python -m tests.cluster.crashing_notifier KUBECONFIG MODE``:

- ``before-send``: the notice is due and about to go out, nothing sent or recorded;
- ``after-send``: the receiver took it, the status does not record it yet.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from credop.config import Config
from credop.controller.main import run_operator
from credop.controller.notices import notifier, transports

CRASH_EXIT_CODE = 137
_post_json = transports.post_json


async def die_before_sending(*args: Any, **kwargs: Any) -> None:
    os._exit(CRASH_EXIT_CODE)


async def die_after_sending(*args: Any, **kwargs: Any) -> None:
    await _post_json(*args, **kwargs)
    os._exit(CRASH_EXIT_CODE)


def main() -> None:
    mode = sys.argv[2]
    notifier.transports.post_json = die_before_sending if mode == "before-send" else die_after_sending  # type: ignore[attr-defined]
    config = Config(
        namespace="credop-system",
        endpoint="https://credop.example.test",
        kubeconfig=Path(sys.argv[1]),
        leader_election=False,
    )
    asyncio.run(run_operator(config))


if __name__ == "__main__":
    main()
