"""kopf admission handlers, thin: parse → gather and decide (:class:`Admission`) → answer.

One validating and one mutating webhook per credential kind. Their handler ids
are the webhook URL paths (``/validate-serviceaccountkeys``, …) that the webhook
configurations of the Helm chart and the plain manifests call. They are
registered on import, for every operator in the process; an operator without
webhook settings serves none of them (:class:`credop.webhooks.server.NoWebhookServer`).
"""

from __future__ import annotations

from typing import Any, Literal

import kopf

from credop import GROUP, VERSION, names
from credop.webhooks.decide import created_by_mutation
from credop.webhooks.requests import parse_request
from credop.webhooks.review import Admission

CREDENTIAL_PLURALS = (names.SERVICE_ACCOUNT_KEYS, names.API_CLIENTS)
Operation = Literal["CREATE", "UPDATE", "DELETE"]
VALIDATED_OPERATIONS: tuple[Operation, ...] = ("CREATE", "UPDATE", "DELETE")
MUTATED_OPERATIONS: tuple[Operation, ...] = ("CREATE", "UPDATE")
DENIED = 403


def validating_id(plural: str) -> str:
    return f"validate-{plural}"


def mutating_id(plural: str) -> str:
    return f"mutate-{plural}"


def admission_of(memo: Any) -> Admission:
    admission = memo.admission
    assert isinstance(admission, Admission)
    return admission


async def validate_credential(
    *,
    resource: Any,
    userinfo: Any,
    dryrun: bool,
    memo: Any,
    operation: str | None = None,
    new: Any = None,
    old: Any = None,
    **_: Any,
) -> None:
    """Refuse the request, naming each broken rule and its field, or let it pass."""
    request = parse_request(
        plural=resource.plural, operation=operation, userinfo=userinfo, new=new, old=old, dry_run=dryrun
    )
    denials = await admission_of(memo).review(request)
    if denials:
        raise kopf.AdmissionError("; ".join(str(denial) for denial in denials), code=DENIED)


def record_creator(
    *,
    resource: Any,
    userinfo: Any,
    dryrun: bool,
    patch: Any,
    operation: str | None = None,
    new: Any = None,
    old: Any = None,
    **_: Any,
) -> None:
    """Set the created-by annotation to the requesting user on create; keep it through updates."""
    request = parse_request(
        plural=resource.plural, operation=operation, userinfo=userinfo, new=new, old=old, dry_run=dryrun
    )
    annotations = created_by_mutation(request)
    if annotations:
        patch["metadata"] = {"annotations": annotations}


for _plural in CREDENTIAL_PLURALS:
    kopf.on.validate(GROUP, VERSION, _plural, id=validating_id(_plural), operations=VALIDATED_OPERATIONS)(
        validate_credential
    )
    kopf.on.mutate(GROUP, VERSION, _plural, id=mutating_id(_plural), operations=MUTATED_OPERATIONS)(record_creator)
