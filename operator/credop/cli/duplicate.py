"""``credop duplicate apiclient/NAME NEW-NAME``: a new ApiClient with the same validity and permission."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from credop.cli.actions import phase_message
from credop.cli.kinds import API_CLIENT, Target, parse_target
from credop.cli.manifests import DUPLICATED_FIELDS, duplicate_client
from credop.cli.options import add_wait_flags, connect
from credop.cli.waiting import status_of, wait_for_status

if TYPE_CHECKING:
    from credop.cli.options import Subcommands


def register(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "duplicate",
        parents=parents,
        help="create a new ApiClient with the same token validity and permission (new ID and secret)",
        description=f"Create ApiClient NEW-NAME copying {', '.join(DUPLICATED_FIELDS)} from the source; "
        "it gets its own client ID (default: NEW-NAME) and secret.",
    )
    parser.add_argument("source", metavar="apiclient/NAME", help="the client to copy")
    parser.add_argument("new_name", metavar="NEW-NAME", help="the new ApiClient's name")
    parser.add_argument("--client-id", help="the new client's ID (default: NEW-NAME)")
    add_wait_flags(parser, what="the new client is Active, Inactive or Failed")
    parser.set_defaults(run=run_duplicate)


def run_duplicate(args: argparse.Namespace) -> int:
    source = parse_target(args.source, allowed=(API_CLIENT,))
    target = Target(API_CLIENT, args.new_name)
    with connect(args) as session:
        manifest = duplicate_client(session.get(source), args.new_name, client_id=args.client_id)
        session.create(target, manifest)
        print(f'{target} created from {source}; its client ID and secret will be in Secret "{args.new_name}"')
        if args.wait:
            settled = wait_for_status(
                session,
                target,
                lambda body: status_of(body).get("phase") in ("Active", "Inactive", "Failed"),
                timeout_s=args.timeout,
                what="get its client ID and secret",
            )
            print(phase_message(target, status_of(settled)))
    return 0
