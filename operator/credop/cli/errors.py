"""The two ways a CLI command fails: a clear one-line error (exit 1) or a usage error (exit 2)."""

from __future__ import annotations

FAILED = 1
USAGE = 2


class CliError(Exception):
    """A failure the user can act on, said in one line that names the object and the problem."""

    exit_code = FAILED


class UsageError(CliError):
    """The command line itself is wrong (unknown kind, missing argument)."""

    exit_code = USAGE
