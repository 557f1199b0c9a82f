"""Where the token endpoint's CPU goes beyond its floor, measured by throughput in the running server.

    .venv/bin/python -m benchmarks.token_ablation [--seconds 3] [--rounds 5]

py-spy (``benchmarks.profile_service``) splits samples by frame, and on this
VM it misplaces some (an idle pool thread counted as running, a 0.2 us call
given 8 us). This benchmark measures instead: the benchmark server of
``benchmarks/token_endpoint.py`` gets one route per step below, each doing the
token endpoint's work up to that step, and each route is driven right after
the floor, in ``--rounds`` rounds. A step's cost is the median growth of server
CPU per request over the step before it, and its ratio the throughput against
the floor measured just before it. The last step is the endpoint as shipped.

Figures, not assertions. The same functions cost several times more here than
in a loop, where their code and data stay in the caches.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Awaitable, Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from benchmarks import token_endpoint as bench

STEPS = (
    ("post", "POST: body read, a token-sized JSON answer with the endpoint's headers, one ES256 signature"),
    ("parse", "+ form, Basic credentials, client lookup, scopes (no secret check)"),
    ("issue", "+ the token's claims and JWS in place of the bare signature"),
    ("authenticate", "+ authentication: rate limits, secret cache, usage, good address"),
    ("audit", "+ the audit line"),
    ("guarded", "+ latency histogram and error mapping (guarded)"),
)
PREFIX = "/ablation/"


def add_routes(app: Any, state: Any, sign: Callable[[], bytes]) -> None:
    """The steps' routes, on the benchmark server's application (``state`` is its ServiceState)."""
    from credop.service._http import guarded

    handlers = {name: _step_handler(state, sign, step=index) for index, (name, _) in enumerate(STEPS)}
    handlers["guarded"] = guarded(state, "ablation", handlers["audit"])
    for name, handler in handlers.items():
        app.router.add_post(PREFIX + name, handler)


def _step_handler(state: Any, sign: Callable[[], bytes], *, step: int) -> Callable[[Any], Awaitable[Any]]:
    from aiohttp import web

    from credop import audit
    from credop.domain.tokens import narrowed_scopes
    from credop.service._http import _JSON_NO_STORE_HEADERS
    from credop.service._oauth import grant_type_of, parse_form, presented_client

    bare_token = "x" * 560

    async def handler(request: web.Request) -> web.Response:
        now = state.now()
        body = await request.read()
        token, scopes = bare_token, ("read",)
        if step == 0:
            sign()
        else:
            form = parse_form(body, request.headers.get("Content-Type"))
            grant_type_of(form)
            presented = presented_client(form, request.headers.get("Authorization"))
            if step >= 3:
                credential = await state.authenticator.authenticate(presented, remote=request.remote, now=now)
            else:
                credential = state.view.find(presented.client_id)
            scopes = narrowed_scopes(form.get("scope"), state.view.allowed_scopes(credential))
            if step == 1:
                sign()
            else:
                issued = state.tokens.issue(credential, scopes, now=now)
                token = issued.token
                if step >= 4:
                    audit.token_issued(credential=credential, claims=issued.claims, scopes=scopes)
        answer = (
            f'{{"access_token":"{token}","token_type":"Bearer",'
            f'"expires_in":3600,"scope":{encode_basestring_ascii(" ".join(scopes))}}}'
        )
        return web.Response(body=answer.encode(), headers=_JSON_NO_STORE_HEADERS)

    return handler


def run(*, seconds: float, rounds: int, connections: int) -> None:
    port = bench.free_port()
    server, facts = bench.start_server(port, ablation=True)
    try:
        requests = bench.scenarios(port, facts)
        steps = [(name, label, {**requests["token"], "path": PREFIX + name}) for name, label in STEPS]
        steps.append(("shipped", "the endpoint as shipped (/oauth2/token)", requests["token"]))
        for _, _, request in steps:
            bench.load(port, seconds=0.5, connections=connections, **request)  # warm-up
        measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in steps}
        for _ in range(rounds):
            for name, _, request in steps:
                floor = bench.load(
                    port, seconds=seconds, connections=connections, server_pid=server.pid, **requests["floor"]
                )
                step = bench.load(port, seconds=seconds, connections=connections, server_pid=server.pid, **request)
                ratio = step["per_second"] / floor["per_second"]
                measured[name].append((ratio, step["server_cpu_us"], floor["server_cpu_us"]))
    finally:
        bench.stop_server(server)
    print(
        f"server on CPU {bench.SERVER_CPU}, load generator on CPU {bench.LOAD_CPU}; {seconds} s a run, {rounds} rounds"
    )
    print(f"{'step':<96} {'/ floor':>8} {'over floor':>11} {'this step':>10}")
    before = 0.0
    for name, label, _ in steps:
        ratio = statistics.median(each[0] for each in measured[name])
        over = statistics.median(each[1] - each[2] for each in measured[name])
        print(f"{label:<96} {ratio:>8.2f} {over:>8.0f} us {over - before:>7.0f} us")
        before = over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    run(seconds=args.seconds, rounds=args.rounds, connections=args.connections)


if __name__ == "__main__":
    main()
