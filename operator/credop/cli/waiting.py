"""Waiting for credop to record an action in status, as ``kubectl wait`` does: poll until true or time out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from credop.cli.cluster import Body, Session
from credop.cli.errors import CliError
from credop.cli.kinds import Target

POLL_INTERVAL_S = 0.25
DEFAULT_TIMEOUT = "60s"
OPERATOR_HINT = "is the credop operator running?"


def wait_for_status(
    session: Session,
    target: Target,
    done: Callable[[Body], bool],
    *,
    timeout_s: float,
    what: str,
    hint: str = OPERATOR_HINT,
) -> Body:
    """The object once ``done(object)`` holds; a CliError naming ``what`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = session.get(target)
        if done(current):
            return current
        if time.monotonic() >= deadline:
            raise CliError(
                f"timed out after {timeout_s:g}s waiting for {session.describe(target)} to {what}"
                f"{_phase_note(current)}: {hint}"
            )
        time.sleep(POLL_INTERVAL_S)


def status_of(body: Body) -> dict[str, Any]:
    return dict(body.get("status") or {})


def _phase_note(body: Body) -> str:
    status = status_of(body)
    if not status.get("phase"):
        return " (no status yet)"
    reason = f", {status['reason']}" if status.get("reason") else ""
    return f" (phase {status['phase']}{reason})"
