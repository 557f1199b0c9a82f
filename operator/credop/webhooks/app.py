"""The admission webhooks over HTTP: AdmissionReview (admission.k8s.io/v1) in, a verdict or a patch out.

One validating and one mutating webhook per credential kind, at the paths the
chart's webhook configurations call (``/validate-serviceaccountkeys``, …).
Thin: parse → gather and decide (:class:`~credop.webhooks.review.Admission`) →
answer. Every operator replica serves them, leader or not.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from credop import names
from credop.webhooks.decide import created_by_mutation
from credop.webhooks.requests import AdmissionRequest, parse_request
from credop.webhooks.review import Admission

logger = logging.getLogger(__name__)
CREDENTIAL_PLURALS = (names.SERVICE_ACCOUNT_KEYS, names.API_CLIENTS)
Operation = Literal["CREATE", "UPDATE", "DELETE"]
VALIDATED_OPERATIONS: tuple[Operation, ...] = ("CREATE", "UPDATE", "DELETE")
MUTATED_OPERATIONS: tuple[Operation, ...] = ("CREATE", "UPDATE")
DENIED = 403
Body = dict[str, Any]


def validating_id(plural: str) -> str:
    return f"validate-{plural}"


def mutating_id(plural: str) -> str:
    return f"mutate-{plural}"


def admission_request(review: Body, plural: str) -> AdmissionRequest:
    request = review.get("request") or {}
    return parse_request(
        plural=plural,
        operation=request.get("operation"),
        userinfo=request.get("userInfo") or {},
        new=request.get("object"),
        old=request.get("oldObject"),
        dry_run=bool(request.get("dryRun")),
    )


def answer(review: Body, **response: Any) -> web.Response:
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": (review.get("request") or {}).get("uid", ""), **response},
    }
    return web.json_response(body)


def annotation_patch(current: Body | None, annotations: dict[str, str]) -> list[Body]:
    """A JSON patch (RFC 6902) that sets ``annotations`` on an object with ``current`` metadata annotations."""
    if current is None:
        return [{"op": "add", "path": "/metadata/annotations", "value": annotations}]
    escaped = {key.replace("~", "~0").replace("/", "~1"): value for key, value in annotations.items()}
    return [{"op": "add", "path": f"/metadata/annotations/{key}", "value": value} for key, value in escaped.items()]


def validating(admission: Admission, plural: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        review = await request.json()
        try:
            denials = await admission.review(admission_request(review, plural))
        except Exception as error:
            logger.warning("could not check a %s request (%s); refusing it", plural, type(error).__name__)
            message = f"credop could not check this request ({type(error).__name__}); try again"
            return answer(review, allowed=False, status={"code": 500, "message": message})
        if not denials:
            return answer(review, allowed=True)
        message = "; ".join(str(denial) for denial in denials)
        logger.info("refused a %s: %s", plural, message)
        return answer(review, allowed=False, status={"code": DENIED, "message": message})

    return handle


def mutating(plural: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        review = await request.json()
        parsed = admission_request(review, plural)
        annotations = created_by_mutation(parsed) if parsed.operation in MUTATED_OPERATIONS else {}
        if not annotations:
            return answer(review, allowed=True)
        current = ((parsed.new or {}).get("metadata") or {}).get("annotations")
        patch = base64.b64encode(json.dumps(annotation_patch(current, annotations)).encode()).decode()
        return answer(review, allowed=True, patchType="JSONPatch", patch=patch)

    return handle


def build_admission_app(admission: Admission) -> web.Application:
    app = web.Application(client_max_size=3 * 1024 * 1024)
    for plural in CREDENTIAL_PLURALS:
        app.router.add_post(f"/{validating_id(plural)}", validating(admission, plural))
        app.router.add_post(f"/{mutating_id(plural)}", mutating(plural))
    app.router.add_get("/healthz", _ok)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")
