"""What every credential reconcile shares: its lock and stale-status retries, and what it gathers first
(the object, its owner reference, policy and Secret name)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from credop import names
from credop.controller.material import Owner
from credop.controller.status import StaleStatusError
from credop.controller.store import ObjectRef, generation_of
from credop.domain.policy import ResolvedPolicy, resolve_policy

if TYPE_CHECKING:
    from credop.controller.ports import Reconciling

Body = dict[str, Any]
STALE_RETRIES = 3


async def reconcile_under_lock(
    runtime: Reconciling, ref: ObjectRef, reconcile: Callable[[Reconciling, ObjectRef], Awaitable[None]]
) -> None:
    """Run ``reconcile`` holding the object's lock; again after a stale status read, up to STALE_RETRIES times."""
    async with runtime.store.lock(ref):
        for attempt in range(1, STALE_RETRIES + 1):
            try:
                await reconcile(runtime, ref)
                return
            except StaleStatusError:
                if attempt == STALE_RETRIES or not await runtime.status.refresh(ref):
                    raise


@dataclass(frozen=True)
class CredentialContext:
    body: Body
    owner: Owner
    policy: ResolvedPolicy
    secret_name: str
    annotations: dict[str, str]

    @property
    def generation(self) -> int:
        return generation_of(self.body)


def rotation_request(context: CredentialContext) -> str | None:
    """What the credop.dev/rotate annotation asks for, spelled as status records it when done.

    A first mint honours it too: a request present before the secret exists is
    met by that fresh secret, not by minting twice.
    """
    value = context.annotations.get(names.ROTATE)
    return f"manual:{value}" if value else None


def gather_common(
    runtime: Reconciling, body: Body, *, policy_name: str | None, secret_name: str | None
) -> dict[str, Any]:
    """The :class:`CredentialContext` fields, as keyword arguments for a kind's own context."""
    meta = body["metadata"]
    return {
        "body": body,
        "owner": Owner.of(body),
        "policy": resolve_policy(policy_name, runtime.store.policies.get(meta["namespace"], {})),
        "secret_name": secret_name or meta["name"],
        "annotations": dict(meta.get("annotations") or {}),
    }
