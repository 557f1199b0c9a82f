"""The ``credop`` command (also ``kubectl credop``): parse the command line, run the verb, report errors.

Exit codes: 0 done, 1 failed (one line on stderr naming the object and the
problem), 2 the command line is wrong, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from credop import __version__
from credop.cli import actions, delete, duplicate, history, keyring, listing, serve, token
from credop.cli.errors import USAGE, CliError
from credop.cli.options import connection_flags

INTERRUPTED = 130
BROKEN_PIPE = 141
PLUGIN_EXECUTABLE = "kubectl-credop"


def build_parser(prog: str = "credop") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        parents=[connection_flags(after_verb=False)],
        description="Manage credop credentials (ServiceAccountKeys, ApiClients, KeyPolicies) the way GitOps "
        "would: through annotations and spec, on the cluster in your kubeconfig.",
    )
    parser.add_argument("--version", action="version", version=f"credop {__version__}")
    commands = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    parents = [connection_flags(after_verb=True)]
    listing.register(commands, parents)
    actions.register(commands, parents)
    duplicate.register(commands, parents)
    token.register(commands, parents)
    delete.register(commands, parents)
    history.register(commands, parents)
    keyring.register(commands, parents)
    serve.register(commands)
    return parser


def program_name(argv0: str) -> str:
    """``kubectl credop`` when run as the kubectl plugin, else ``credop``."""
    return "kubectl credop" if os.path.basename(argv0) == PLUGIN_EXECUTABLE else "credop"


def main(argv: list[str] | None = None) -> int:
    """Run one credop command; returns the exit code."""
    parser = build_parser(program_name(sys.argv[0] if sys.argv else "credop"))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version and usage errors
        return exit_request.code if isinstance(exit_request.code, int) else USAGE
    try:
        return int(args.run(args))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # e.g. `credop status -A | head`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
