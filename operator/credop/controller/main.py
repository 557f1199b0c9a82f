"""Running the operator: the kopf loop with credop's runtime as its memo."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf

from credop.controller import handlers
from credop.controller.config import Config
from credop.controller.runtime import Runtime
from credop.controller.scheduler import Clock, utc_now
from credop.kube.client import Kube, load_configuration

__all__ = ["handlers", "run_operator"]


@kopf.on.login()
def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo:
    """Log kopf in with the same identity as credop's own API calls."""
    configuration = handlers.runtime_of(memo).kube.configuration
    keys: dict[str, str] = configuration.api_key or {}
    authorization = keys.get("authorization") or keys.get("BearerToken") or ""
    scheme, _, token = authorization.partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme or None,
        token=token or None,
    )


def build_runtime(config: Config, *, clock: Clock = utc_now) -> Runtime:
    return Runtime(config=config, kube=Kube(load_configuration(config.kubeconfig)), clock=clock)


async def run_operator(
    config: Config,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    clock: Clock = utc_now,
    runtime: Runtime | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or forever)."""
    runtime = runtime or build_runtime(config, clock=clock)
    try:
        await kopf.operator(
            clusterwide=True,
            standalone=True,
            memo=kopf.Memo(runtime=runtime),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        runtime.kube.close()
