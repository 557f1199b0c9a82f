"""``credop operator`` and ``credop service``: run credop itself, with structured JSON logs."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credop.cli.errors import CliError
from credop.config import Config
from credop.logs import configure_logging

if TYPE_CHECKING:
    from credop.cli.options import Subcommands

SERVICE_MODULE = "credop.service"


def register(commands: Subcommands) -> None:
    operator = commands.add_parser(
        "operator",
        help="run the credop operator (the controller)",
        description="Run the operator until interrupted. Settings also come from CREDOP_NAMESPACE, "
        "CREDOP_ENDPOINT and CREDOP_USAGE_FLUSH_INTERVAL.",
    )
    _add_run_flags(operator)
    operator.set_defaults(run=run_operator_command)
    service = commands.add_parser(
        "service",
        help="run the credential service (token, introspection, verify endpoints)",
        description="Serve the OAuth2 token, introspection, revocation, JWKS and verify endpoints.",
    )
    _add_run_flags(service)
    service.add_argument("--host", default="0.0.0.0", help="the address to listen on (default 0.0.0.0)")  # noqa: S104
    service.add_argument("--port", type=int, default=8080, help="the port to listen on (default 8080)")
    service.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes sharing the port (SO_REUSEPORT), each with its own watches (default 1)",
    )
    service.set_defaults(run=run_service_command)


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="path to the kubeconfig (default: in-cluster, else $KUBECONFIG)")
    parser.add_argument("--endpoint", help="the credential service's URL as clients reach it ($CREDOP_ENDPOINT)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--log-format", default="json", choices=("json", "text"), help="log format (default json)")


def config_from(args: argparse.Namespace) -> Config:
    """The environment's settings, overridden by the flags given."""
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
    return Config.from_environment(kubeconfig=kubeconfig, endpoint=args.endpoint)


def run_operator_command(args: argparse.Namespace) -> int:
    configure_logging(level=args.log_level, json_format=args.log_format == "json")
    asyncio.run(operator_with_webhooks(config_from(args)))
    return 0


async def operator_with_webhooks(config: Config, **operator_options: Any) -> None:
    """The admission webhooks (every replica serves them) around the controller (only the leader acts)."""
    from credop.clock import utc_now
    from credop.controller.main import run_operator
    from credop.webhooks.server import admission_webhooks

    clock = operator_options.get("clock", utc_now)
    async with admission_webhooks(
        config.webhook, kubeconfig=config.kubeconfig, namespace=config.namespace, clock=clock
    ):
        await run_operator(config, **operator_options)


def run_service_command(args: argparse.Namespace) -> int:
    configure_logging(level=args.log_level, json_format=args.log_format == "json")
    try:
        service: Any = importlib.import_module(SERVICE_MODULE)
    except ModuleNotFoundError as error:
        if error.name != SERVICE_MODULE:
            raise
        raise CliError(f"this credop build has no credential service ({SERVICE_MODULE} is missing)") from None
    settings = service.ServiceSettings.from_environment()
    return int(
        service.run_workers(
            config_from(args),
            host=args.host,
            port=args.port,
            workers=args.workers,
            settings=settings,
            log_level=args.log_level,
            json_logs=args.log_format == "json",
        )
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
