"""Sending notices: destinations checked before connecting, no redirects, STARTTLS or nothing (127.0.0.0/8 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from credop.controller.notices.transports import (
    DeliveryError,
    HttpPost,
    Mail,
    PinnedResolver,
    SmtpServer,
    post_json,
    send_mail,
)
from credop.domain.destinations import DestinationRefused, DestinationRules
from tests.cluster.notice_receivers import SMTP_HOST, MailHandler, free_port

LOOPBACK = DestinationRules.parse(networks=["127.0.0.0/8"])
NOTHING_LISTED = DestinationRules()


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def accept(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/ok", accept)
    async with TestServer(app, host="127.0.0.1") as running:
        yield running


def post(url: str) -> HttpPost:
    return HttpPost(url, b"{}", {})


async def test_a_listed_destination_gets_the_post(server: TestServer) -> None:
    await post_json(post(f"http://127.0.0.1:{server.port}/ok"), LOOPBACK, time_limit=5)


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://127.0.0.1:{port}/ok", "plain http"),
        ("https://127.0.0.1:{port}/ok", "non-public address"),
        ("https://localhost:{port}/ok", "non-public address"),
        ("https://169.254.169.254/latest/meta-data/", "non-public address"),
        ("https://[::ffff:10.0.0.1]/", "non-public address"),
    ],
)
async def test_internal_destinations_are_refused_before_connecting(server: TestServer, url: str, refusal: str) -> None:
    with pytest.raises(DestinationRefused, match=refusal):
        await post_json(post(url.format(port=server.port)), NOTHING_LISTED, time_limit=5)


async def test_redirects_are_not_followed(server: TestServer) -> None:
    with pytest.raises(DeliveryError, match="answered HTTP 302"):
        await post_json(post(f"http://127.0.0.1:{server.port}/redirect"), LOOPBACK, time_limit=5)


async def test_the_pinned_resolver_answers_for_its_host_only() -> None:
    resolver = PinnedResolver("hooks.example.com", [])
    assert await resolver.resolve("hooks.example.com", 443) == []
    with pytest.raises(OSError, match="refusing"):
        await resolver.resolve("kubernetes.default.svc", 443)


async def test_a_mail_server_without_starttls_gets_nothing() -> None:
    handler = MailHandler()
    controller = Controller(handler, hostname=SMTP_HOST, port=free_port(SMTP_HOST))
    controller.start()
    try:
        mail = Mail("credop@example.com", ("a@example.com",), "s", "t", "<id@credop.dev>", {})
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            await send_mail(SmtpServer(SMTP_HOST, controller.port), mail, LOOPBACK, time_limit=5)
    finally:
        controller.stop()
    assert handler.mails == []


async def test_a_mail_without_recipients_is_not_sent() -> None:
    mail = Mail("credop@example.com", (), "s", "t", "<id@credop.dev>", {})
    with pytest.raises(DeliveryError, match="no recipient"):
        await send_mail(SmtpServer("smtp.example.com"), mail, NOTHING_LISTED, time_limit=5)


def test_the_smtp_secret_is_read_with_defaults() -> None:
    assert SmtpServer.of({"host": "smtp.example.com"}) == SmtpServer("smtp.example.com", 587)
    with pytest.raises(DeliveryError, match='no "host"'):
        SmtpServer.of({})
    with pytest.raises(DeliveryError, match="not a number"):
        SmtpServer.of({"host": "h", "port": "smtp"})
