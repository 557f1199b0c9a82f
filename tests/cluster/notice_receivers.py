"""Real receivers on 127.0.0.1 for the notice tests: an SMTP server with STARTTLS and an HTTP receiver.

Both run in a thread with an event loop of their own. The SMTP server
(aiosmtpd) requires STARTTLS and a login before it takes mail; the HTTP
receiver records every POST with its headers, checks the signature when given
a key, and can be told to fail a number of requests first.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.message
import email.policy
import ipaddress
import logging
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from credop.domain.notices import SIGNATURE_HEADER, signature_valid

HOST = "127.0.0.1"
SMTP_HOST = "127.0.0.2"
"""The SMTP server's own loopback address: the Secret's ``host`` must not be a string the logs carry anyway."""


def free_port(host: str = HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certificate:
    ca_pem: str
    cert_path: Path
    key_path: Path


def self_signed(directory: Path) -> Certificate:
    """A CA and a certificate for the SMTP server's address and localhost, signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notice-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(SMTP_HOST))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SMTP_HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(ca.public_bytes(serialization.Encoding.PEM).decode(), cert_path, key_path)


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    tls: bool
    login: str | None


@dataclass
class MailHandler:
    mails: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.mails.append(
            ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, session.ssl is not None, login)
        )
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd on 127.0.0.2 that requires STARTTLS and the login ``credop`` / ``password``."""

    USER, PASSWORD = "credop", "smtp-pass-for-tests"

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="credop-smtp-"))
        self.certificate = self_signed(self.directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate.cert_path, self.certificate.key_path)
        self.handler = MailHandler()
        self.port = free_port(SMTP_HOST)
        self.controller = Controller(
            self.handler,
            hostname=SMTP_HOST,
            port=self.port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            authenticator=self._authenticate,
        )

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            self.USER,
            self.PASSWORD,
        )
        return AuthResult(success=ok, handled=False, auth_data=data)

    def start(self) -> SmtpReceiver:
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # it logs peers and commands
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def mails(self) -> list[ReceivedMail]:
        return self.handler.mails

    def secret_data(self) -> dict[str, str]:
        return {
            "host": SMTP_HOST,
            "port": str(self.port),
            "username": self.USER,
            "password": self.PASSWORD,
            "ca.crt": self.certificate.ca_pem,
        }


@dataclass
class ReceivedPost:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool | None


class HttpReceiver:
    """An aiohttp server on 127.0.0.1 that keeps every POST; ``fail_first`` answers 503 that many times first."""

    def __init__(self, *, key: bytes | None = None) -> None:
        self.key = key
        self.posts: list[ReceivedPost] = []
        self.refused = 0
        self.fail_first = 0
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="notice-receiver")
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://{HOST}:{self.port}{path}"

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail_first > 0:
            self.fail_first -= 1
            self.refused += 1
            return web.Response(status=503)
        header = request.headers.get(SIGNATURE_HEADER)
        signed = (
            None
            if self.key is None
            else bool(header) and signature_valid(header or "", body, self.key, now=int(time.time()))
        )
        self.posts.append(ReceivedPost(request.path, dict(request.headers), body, signed))
        return web.Response(status=401 if signed is False else 204)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()

    def start(self) -> HttpReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def posts_where(self, check: Callable[[ReceivedPost], bool]) -> list[ReceivedPost]:
        return [post for post in list(self.posts) if check(post)]
