"""Wiring the admission webhooks into an operator: one call from its startup handler."""

from __future__ import annotations

from typing import Any

import kopf

from credop.webhooks import handlers as _registered  # noqa: F401 - importing registers the kopf handlers
from credop.webhooks.review import Admission
from credop.webhooks.server import CredopWebhookServer, NoWebhookServer


def configure_admission(settings: kopf.OperatorSettings, memo: Any) -> None:
    """Serve the webhooks when the operator's config has webhook settings; otherwise serve none.

    The webhook configurations are not kopf-managed: the chart (or a test) owns
    them, so the operator needs no right to create webhook configurations.
    """
    runtime = memo.runtime
    memo.admission = Admission(runtime.kube, clock=runtime.clock)
    webhook = runtime.config.webhook
    if webhook is None:
        settings.admission.server = NoWebhookServer()
        return
    settings.admission.server = CredopWebhookServer(
        webhook, kube=runtime.kube, namespace=runtime.config.namespace, clock=runtime.clock
    )
