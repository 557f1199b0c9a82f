"""An operator process that dies (``os._exit``, like SIGKILL) right after it creates its first credential Secret.

Run as ``python -m tests.cluster.crashing_operator KUBECONFIG``: the crash lands
between minting the Secret and recording it in status, the worst moment for
exactly-once minting.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from credop.config import Config
from credop.controller.main import run_operator
from credop.kube.client import Kube

CRASH_EXIT_CODE = 137
_create_secret = Kube.create_secret


async def create_secret_then_die(self: Kube, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created = await _create_secret(self, namespace, body)
    if body["metadata"].get("ownerReferences"):
        os._exit(CRASH_EXIT_CODE)
    return created


def main() -> None:
    Kube.create_secret = create_secret_then_die  # type: ignore[method-assign]
    config = Config(
        namespace="credop-system",
        endpoint="https://credop.example.test",
        kubeconfig=Path(sys.argv[1]),
        leader_election=False,
    )
    asyncio.run(run_operator(config))


if __name__ == "__main__":
    main()
