"""``credop history KIND/NAME``: a credential's activity log and the notices sent about it, from its status."""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from credop.cli import output
from credop.cli.kinds import CREDENTIAL_KINDS, parse_target
from credop.cli.options import connect
from credop.cli.tables import render_table
from credop.cli.times import relative
from credop.domain.conditions import parse_timestamp

if TYPE_CHECKING:
    from credop.cli.options import Subcommands


def register(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "history",
        parents=parents,
        help="a credential's last transitions (time, action, actor) and the notices sent about it",
        description="Show status.history (the last transitions: created, rotated, tokens invalidated, activated, "
        "deactivated, disabled, client ID changed, expiry changed, restarted targets) and status.notices. "
        'The audit log (the operator\'s JSON log lines with an "audit" field) keeps every transition.',
    )
    parser.add_argument("target", metavar="KIND/NAME", help="sak/NAME or apic/NAME")
    parser.add_argument("-o", "--output", choices=output.FORMATS, default=output.TABLE, help="output format")
    parser.set_defaults(run=run_history)


def run_history(args: argparse.Namespace) -> int:
    target = parse_target(args.target, allowed=CREDENTIAL_KINDS)
    with connect(args) as session:
        body = session.get(target)
    status = body.get("status") or {}
    history, notices = list(status.get("history") or []), list(status.get("notices") or [])
    if args.output != output.TABLE:
        print(output.dumps({"history": history, "notices": notices}, args.output))
        return 0
    print(history_text(history, notices, now=datetime.datetime.now(datetime.UTC)))
    return 0


def history_text(
    history: Sequence[Mapping[str, Any]], notices: Sequence[Mapping[str, Any]], *, now: datetime.datetime
) -> str:
    """The history table, then the notices table (when any were sent)."""
    if not history:
        text = "No history recorded yet."
    else:
        rows = [
            [
                _when(entry.get("time"), now=now),
                str(entry.get("action") or ""),
                str(entry.get("actor") or "-"),
                str(entry.get("message") or ""),
            ]
            for entry in history
        ]
        text = render_table(["TIME", "ACTION", "ACTOR", "MESSAGE"], rows)
    if notices:
        rows = [
            [
                str(record.get("notice") or ""),
                str(record.get("generation") or ""),
                ",".join(record.get("delivered") or []) or "-",
                ",".join(record.get("failed") or []) or "-",
                _when(record.get("sentAt"), now=now) if record.get("sentAt") else "-",
            ]
            for record in notices
        ]
        text += "\n\n" + render_table(["NOTICE", "GENERATION", "DELIVERED", "FAILED", "SENT"], rows)
    return text


def _when(text: Any, *, now: datetime.datetime) -> str:
    instant = parse_timestamp(str(text)) if text else None
    return f"{text} ({relative(instant, now=now)})" if instant else "-"
