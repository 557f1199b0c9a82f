"""``rotate``, ``invalidate-tokens``, ``activate`` and ``deactivate``: the same changes GitOps would make.

Rotation and token invalidation set an annotation to a new value (credop acts
once per value and records it in status); activation changes ``spec.active``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import TYPE_CHECKING, Any

from credop import names
from credop.cli import times
from credop.cli.cluster import Body, Session
from credop.cli.kinds import CREDENTIAL_KINDS, Target, parse_target
from credop.cli.options import add_wait_flags, connect
from credop.cli.waiting import status_of, wait_for_status

if TYPE_CHECKING:
    from credop.cli.options import Subcommands

TARGET_HELP = "the credential, e.g. sak/ci-uploader or apic/billing"


def register(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    rotate = commands.add_parser(
        "rotate",
        parents=parents,
        help="mint a new secret (sets the credop.dev/rotate annotation)",
        description=f"Set {names.ROTATE} to a new value; credop mints a new secret once per value.",
    )
    rotate.add_argument("target", metavar="KIND/NAME", help=TARGET_HELP)
    add_wait_flags(rotate, what="credop has rotated the secret (status.rotateHandled)")
    rotate.set_defaults(run=run_rotate)

    invalidate = commands.add_parser(
        "invalidate-tokens",
        parents=parents,
        help="reject every token issued before now (sets credop.dev/invalidate-tokens)",
        description=f"Set {names.INVALIDATE_TOKENS} to a new value; tokens issued before credop acts are rejected.",
    )
    invalidate.add_argument("target", metavar="KIND/NAME", help=TARGET_HELP)
    add_wait_flags(invalidate, what="credop has recorded it (status.invalidateTokensHandled)")
    invalidate.set_defaults(run=run_invalidate_tokens)

    for verb, active in (("activate", True), ("deactivate", False)):
        parser = commands.add_parser(
            verb,
            parents=parents,
            help=f"set spec.active to {str(active).lower()}",
            description=f"Set spec.active to {str(active).lower()}. "
            "If a GitOps tool manages the object, change its manifest instead.",
        )
        parser.add_argument("target", metavar="KIND/NAME", help=TARGET_HELP)
        add_wait_flags(parser, what="credop has acted on it and reports the phase")
        parser.set_defaults(run=run_activate if active else run_deactivate)


def request_action(session: Session, target: Target, annotation: str) -> str:
    """Set ``annotation`` on the object to a new unique value (a timestamp) and return that value."""
    value = times.action_value(datetime.datetime.now(datetime.UTC))
    session.patch(target, {"metadata": {"annotations": {annotation: value}}})
    return value


def run_rotate(args: argparse.Namespace) -> int:
    target = parse_target(args.target, allowed=CREDENTIAL_KINDS)
    with connect(args) as session:
        value = request_action(session, target, names.ROTATE)
        print(f"{target}: rotation requested ({names.ROTATE}={value})")
        if args.wait:
            recorded = f"manual:{value}"
            body = wait_for_status(
                session,
                target,
                lambda body: status_of(body).get("rotateHandled") == recorded,
                timeout_s=args.timeout,
                what="rotate its secret",
            )
            print(rotated_message(target, status_of(body)))
    return 0


def rotated_message(target: Target, status: dict[str, Any]) -> str:
    secret = (status.get("secretRef") or {}).get("name", target.name)
    message = f'{target}: rotated; generation {status.get("keyGeneration")}, new secret in Secret "{secret}"'
    if status.get("previousSecretValidUntil"):
        message += f"; the previous secret works until {status['previousSecretValidUntil']}"
    return message


def run_invalidate_tokens(args: argparse.Namespace) -> int:
    target = parse_target(args.target, allowed=CREDENTIAL_KINDS)
    with connect(args) as session:
        value = request_action(session, target, names.INVALIDATE_TOKENS)
        print(f"{target}: token invalidation requested ({names.INVALIDATE_TOKENS}={value})")
        if args.wait:
            body = wait_for_status(
                session,
                target,
                lambda body: status_of(body).get("invalidateTokensHandled") == value,
                timeout_s=args.timeout,
                what="invalidate its tokens",
            )
            print(f"{target}: tokens issued before {status_of(body).get('tokensInvalidBefore')} are rejected")
    return 0


def run_activate(args: argparse.Namespace) -> int:
    return _set_active(args, active=True)


def run_deactivate(args: argparse.Namespace) -> int:
    return _set_active(args, active=False)


def _set_active(args: argparse.Namespace, *, active: bool) -> int:
    target = parse_target(args.target, allowed=CREDENTIAL_KINDS)
    word = str(active).lower()
    with connect(args) as session:
        patched = session.patch(target, {"spec": {"active": active}})
        print(f"{target}: spec.active set to {word}")
        print(
            f"hint: if a GitOps tool (Argo CD, Flux) manages {target}, set spec.active: {word} in its manifest "
            "instead, or the next sync reverts this change",
            file=sys.stderr,
        )
        if args.wait:
            settled = wait_for_status(
                session,
                target,
                lambda body: _observed(body, patched["metadata"].get("generation", 0)),
                timeout_s=args.timeout,
                what="act on spec.active",
            )
            print(phase_message(target, status_of(settled)))
    return 0


def _observed(body: Body, generation: int) -> bool:
    status = status_of(body)
    return int(status.get("observedGeneration") or 0) >= generation and status.get("phase") not in (None, "Pending")


def phase_message(target: Target, status: dict[str, Any]) -> str:
    """``apiclient/x: phase Inactive (ActiveLimitReached: 5 ApiClients are already Active...)``."""
    reason = status.get("reason") if status.get("reason") != status.get("phase") else None
    details = ": ".join(str(part) for part in (reason, status.get("message")) if part)
    return f"{target}: phase {status.get('phase')}" + (f" ({details})" if details else "")
