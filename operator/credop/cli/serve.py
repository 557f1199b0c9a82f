"""``credop operator`` and ``credop service``: run credop itself, with structured JSON logs."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credop.cli.errors import CliError
from credop.controller.config import Config
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
    from credop.controller.main import run_operator

    configure_logging(level=args.log_level, json_format=args.log_format == "json")
    asyncio.run(run_operator(config_from(args)))
    return 0


def run_service_command(args: argparse.Namespace) -> int:
    configure_logging(level=args.log_level, json_format=args.log_format == "json")
    try:
        service: Any = importlib.import_module(SERVICE_MODULE)
    except ModuleNotFoundError as error:
        if error.name != SERVICE_MODULE:
            raise
        raise CliError(f"this credop build has no credential service ({SERVICE_MODULE} is missing)") from None
    asyncio.run(service.run_service(config_from(args), host=args.host, port=args.port))
    return 0
