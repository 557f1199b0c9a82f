"""``credop delete KIND/NAME``: the two-step confirmation, then DELETE.

With ``spec.deletionProtection: true`` the admission webhook refuses DELETE
unless the object carries ``credop.dev/confirm-delete: <its name>``; the CLI
shows what will go, asks for the name, sets that annotation, then deletes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

from credop import names
from credop.cli.cluster import NotFoundError, Session
from credop.cli.describe import deletion_plan, is_protected
from credop.cli.errors import CliError
from credop.cli.kinds import Target, parse_target
from credop.cli.options import add_wait_flags, connect
from credop.cli.waiting import wait_for_status

if TYPE_CHECKING:
    from credop.cli.options import Subcommands


def register(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "delete",
        parents=parents,
        help="delete a credential or policy, after confirmation",
        description="Show what will be deleted and ask for its name. With deletion protection, set "
        f"{names.CONFIRM_DELETE} to the name first (the second step the admission webhook requires).",
    )
    parser.add_argument("target", metavar="KIND/NAME", help="e.g. sak/ci-uploader, apic/billing or kpol/strict")
    confirm = parser.add_mutually_exclusive_group()
    confirm.add_argument("-y", "--yes", action="store_true", help="do not ask; delete")
    confirm.add_argument("--confirm", metavar="NAME", help="confirm non-interactively by giving the name")
    add_wait_flags(parser, what="the object is gone")
    parser.set_defaults(run=run_delete)


def run_delete(args: argparse.Namespace) -> int:
    target = parse_target(args.target)
    with connect(args) as session:
        body = session.get(target)
        print("\n".join(deletion_plan(target, body)), file=sys.stderr)
        _confirm(target, yes=args.yes, given=args.confirm)
        delete_confirmed(session, target, protected=is_protected(body))
        print(f"{target} deleted")
        if args.wait:
            _wait_until_gone(session, target, timeout_s=args.timeout)
    return 0


def _confirm(target: Target, *, yes: bool, given: str | None) -> None:
    if yes:
        return
    if given is None:
        print(f'Type the name "{target.name}" to delete it: ', end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line.endswith("\n"):
            print(file=sys.stderr)
        given = line.strip()
    if not given:
        raise CliError(
            f"deletion of {target} not confirmed; nothing deleted (non-interactive: --yes or --confirm NAME)"
        )
    if given != target.name:
        raise CliError(f'deletion of {target} not confirmed: "{given}" is not its name; nothing deleted')


def delete_confirmed(session: Session, target: Target, *, protected: bool) -> None:
    """DELETE, after the confirm-delete annotation when protected; the annotation is removed again if DELETE fails."""
    if protected:
        session.patch(target, {"metadata": {"annotations": {names.CONFIRM_DELETE: target.name}}})
    try:
        session.delete(target)
    except CliError:
        if protected:
            with contextlib.suppress(CliError):
                session.patch(target, {"metadata": {"annotations": {names.CONFIRM_DELETE: None}}})
        raise


def _wait_until_gone(session: Session, target: Target, *, timeout_s: float) -> None:
    with contextlib.suppress(NotFoundError):
        wait_for_status(
            session,
            target,
            lambda _body: False,
            timeout_s=timeout_s,
            what="be deleted",
            hint="do finalizers hold it?",
        )
