"""Flags shared by several verbs, and turning them into a Session.

The connection flags (--kubeconfig, --context, -n) work before or after the
verb, as with kubectl: ``credop -n team rotate sak/ci`` and ``credop rotate sak/ci -n team``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

from credop.cli.cluster import ConnectionOptions, Session
from credop.cli.waiting import DEFAULT_TIMEOUT
from credop.domain.durations import DurationError, parse_duration

if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def connection_flags(*, after_verb: bool) -> argparse.ArgumentParser:
    """A parent parser with the kubectl connection flags.

    After the verb the defaults are suppressed, so a flag given before the verb is not reset.
    """
    default = argparse.SUPPRESS if after_verb else None
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("cluster connection")
    group.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file (default: $KUBECONFIG)")
    group.add_argument("--context", default=default, help="the kubeconfig context to use")
    group.add_argument(
        "-n", "--namespace", default=default, help="the namespace (default: the context's namespace, else default)"
    )
    return parent


def add_wait_flags(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait until {what}")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=seconds(DEFAULT_TIMEOUT),
        help=f"how long --wait waits, e.g. 90s or 5m (default {DEFAULT_TIMEOUT})",
    )


def seconds(text: str) -> float:
    """A duration flag (``90s``, ``5m``) in seconds; a bare number means seconds."""
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text).total_seconds()
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def connect(args: argparse.Namespace) -> Session:
    """A Session from the connection flags in ``args``."""
    return Session(
        ConnectionOptions(
            kubeconfig=getattr(args, "kubeconfig", None),
            context=getattr(args, "context", None),
            namespace=getattr(args, "namespace", None),
        )
    )
