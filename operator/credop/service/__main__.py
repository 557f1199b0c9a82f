"""``python -m credop.service``: run one credential service replica (its own Deployment)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from credop.config import Config
from credop.logs import configure_logging
from credop.service import run_service


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="credop's credential service")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")  # noqa: S104
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--kubeconfig", type=Path, default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(level=args.log_level)
    config = Config.from_environment(kubeconfig=args.kubeconfig)
    asyncio.run(run_service(config, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
