"""``credop status`` and ``credop report``: every credential in a table, with its phase, deadlines and compliance."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import TYPE_CHECKING

from credop.cli import output
from credop.cli.cluster import Session
from credop.cli.kinds import CREDENTIAL_KINDS, KEY_POLICY, KindInfo, Target, kind_named
from credop.cli.options import connect
from credop.cli.rows import CredentialRow, credential_table, row_of, sorted_rows
from credop.cli.summary import policy_limits, summarize

if TYPE_CHECKING:
    from credop.cli.options import Subcommands


def register(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        parents=parents,
        help="a table of credentials: phase, age, expiry, last use, policy compliance",
        description="List ServiceAccountKeys and ApiClients with their phase, age, expiry, last use and "
        "policy compliance (expiring-soon, rotation-due, unused, secret-missing, from status.conditions).",
    )
    _add_selection(status)
    status.add_argument("-o", "--output", choices=("table", "wide"), default="table", help="wide: more columns")
    status.set_defaults(run=run_status)
    report = commands.add_parser(
        "report",
        parents=parents,
        help="status plus a summary: counts by phase, policy problems, active clients against the limit",
        description="The status table followed by a summary; -o json|yaml for scripts and audits.",
    )
    _add_selection(report)
    report.add_argument("-o", "--output", choices=output.FORMATS, default=output.TABLE, help="output format")
    report.set_defaults(run=run_report)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("selection", nargs="?", help="only this kind (sak, apic) or one credential (KIND/NAME)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="credentials in every namespace")
    parser.add_argument(
        "--search", metavar="TEXT", help="only credentials whose name, ID, service account or creator contains TEXT"
    )


def run_status(args: argparse.Namespace) -> int:
    with connect(args) as session:
        rows = _searched(credential_rows(session, args.selection, all_namespaces=args.all_namespaces), args.search)
    if not rows:
        print(_nothing_found(session, all_namespaces=args.all_namespaces), file=sys.stderr)
        return 0
    print(credential_table(rows, all_namespaces=args.all_namespaces, now=_now(), wide=args.output == "wide"))
    return 0


def _searched(rows: list[CredentialRow], text: str | None) -> list[CredentialRow]:
    return [row for row in rows if row.matches(text)] if text else rows


def run_report(args: argparse.Namespace) -> int:
    with connect(args) as session:
        rows = _searched(credential_rows(session, args.selection, all_namespaces=args.all_namespaces), args.search)
        policies = session.list(KEY_POLICY, all_namespaces=args.all_namespaces) if rows else []
    summary, now = summarize(rows, policy_limits(policies)), _now()
    if args.output != output.TABLE:
        document = {"credentials": [row.as_dict(now=now) for row in rows], "summary": summary.as_dict()}
        print(output.dumps(document, args.output))
        return 0
    if rows:
        print(credential_table(rows, all_namespaces=args.all_namespaces, now=now), end="\n\n")
    else:
        print(_nothing_found(session, all_namespaces=args.all_namespaces), file=sys.stderr)
    print("\n".join(summary.lines()))
    return 0


def credential_rows(session: Session, selection: str | None, *, all_namespaces: bool) -> list[CredentialRow]:
    """The rows of the selected credentials: all, one kind, or one KIND/NAME."""
    kind_word, slash, name = (selection or "").partition("/")
    kinds: tuple[KindInfo, ...] = (kind_named(kind_word, allowed=CREDENTIAL_KINDS),) if kind_word else CREDENTIAL_KINDS
    if slash:
        return [row_of(session.get(Target(kinds[0], name)))]
    bodies = [body for kind in kinds for body in session.list(kind, all_namespaces=all_namespaces)]
    return sorted_rows([row_of(body) for body in bodies])


def _nothing_found(session: Session, *, all_namespaces: bool) -> str:
    where = "any namespace" if all_namespaces else f'namespace "{session.namespace}"'
    return f"No credentials found in {where}."


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
