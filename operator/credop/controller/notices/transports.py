"""Sending one notice: a JSON POST (webhook, Slack) or a mail by SMTP with STARTTLS.

Every destination is resolved once, checked by :mod:`credop.domain.destinations`,
and connected to at exactly the addresses checked (aiohttp through a pinned
resolver, smtplib through a pinned socket), so a DNS answer that changes
between check and connect cannot redirect a notice into the cluster.
Redirects are not followed. Errors are reported by kind, never with a
response body or a credential in them.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import json
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from credop.domain import destinations
from credop.domain.destinations import DestinationRefused, DestinationRules, IPAddress, Target

USER_AGENT = "credop-notifier/1"
DEFAULT_SMTP_PORT = 587


class DeliveryError(RuntimeError):
    """The receiver did not take the notice; the message is safe to record in status."""


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal address is itself)."""
    literal = destinations.literal_address(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    found = {destinations.literal_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
    return sorted((a for a in found if a is not None), key=lambda a: (a.version, int(a)))


async def checked_addresses(host: str, port: int, rules: DestinationRules, *, plaintext: bool) -> list[IPAddress]:
    return destinations.check(host, await resolve(host, port), rules, plaintext=plaintext)


class PinnedResolver(AbstractResolver):
    """Answers for one host with the addresses already checked; any other host is refused."""

    def __init__(self, host: str, addresses: Sequence[IPAddress]) -> None:
        self._host = host
        self._addresses = list(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"refusing to resolve {host}")
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self._addresses
        ]

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class HttpPost:
    url: str
    body: bytes
    headers: Mapping[str, str]


async def post_json(post: HttpPost, rules: DestinationRules, *, time_limit: float) -> None:
    """POST ``post.body``; a 2xx answer is a delivery, anything else a :class:`DeliveryError`."""
    target = destinations.parse_url(post.url)
    addresses = await checked_addresses(target.host, target.port, rules, plaintext=target.scheme == "http")
    connector = aiohttp.TCPConnector(resolver=PinnedResolver(target.host, addresses), use_dns_cache=False, limit=1)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **post.headers}
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=time_limit)) as session,
            session.post(post.url, data=post.body, headers=headers, allow_redirects=False) as response,
        ):
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise DeliveryError(f"{_where(target)}: {type(error).__name__}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"{_where(target)} answered HTTP {status}")


def _where(target: Target) -> str:
    return f"{target.scheme}://{target.host}:{target.port}"


@dataclass(frozen=True)
class SmtpServer:
    """What the receiver's Secret says about its mail server (the password stays in memory only)."""

    host: str
    port: int = DEFAULT_SMTP_PORT
    username: str | None = None
    password: str | None = None
    ca_pem: str | None = None

    @classmethod
    def of(cls, data: Mapping[str, str]) -> SmtpServer:
        host = (data.get("host") or "").strip()
        if not host:
            raise DeliveryError('the SMTP Secret has no "host"')
        try:
            port = int(data.get("port") or DEFAULT_SMTP_PORT)
        except ValueError:
            raise DeliveryError('the SMTP Secret\'s "port" is not a number') from None
        return cls(host, port, data.get("username") or None, data.get("password") or None, data.get("ca.crt") or None)

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_pem:
            try:
                context.load_verify_locations(cadata=self.ca_pem)
            except (ssl.SSLError, ValueError):
                raise DeliveryError('the SMTP Secret\'s "ca.crt" is not a PEM certificate') from None
        return context


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    message_id: str
    headers: Mapping[str, str]


async def send_mail(server: SmtpServer, mail: Mail, rules: DestinationRules, *, time_limit: float) -> None:
    """One message to every recipient, after STARTTLS (a server that does not offer it is refused)."""
    if not mail.recipients:
        raise DeliveryError("no recipient address (creator unmapped, no admins, no fixed addresses)")
    addresses = await checked_addresses(server.host, server.port, rules, plaintext=False)
    await asyncio.to_thread(_send_mail_blocking, server, mail, addresses, time_limit)


class _PinnedSMTP(smtplib.SMTP):
    """smtplib, connecting to checked addresses while TLS verifies the host name."""

    def __init__(self, host: str, port: int, addresses: Sequence[IPAddress], timeout: float) -> None:
        self._pinned = list(addresses)
        super().__init__(host, port, local_hostname="credop", timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        last: OSError = OSError(f"{host} has no address")
        for address in self._pinned:
            try:
                return socket.create_connection((str(address), port), timeout)
            except OSError as error:
                last = error
        raise last


def _send_mail_blocking(server: SmtpServer, mail: Mail, addresses: Sequence[IPAddress], timeout: float) -> None:
    try:
        with _PinnedSMTP(server.host, server.port, addresses, timeout) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DeliveryError(f"smtp://{server.host}:{server.port} does not offer STARTTLS")
            smtp.starttls(context=server.tls_context())
            smtp.ehlo()
            if server.username:
                smtp.login(server.username, server.password or "")
            smtp.send_message(_message(mail), from_addr=mail.sender, to_addrs=list(mail.recipients))
    except DeliveryError:
        raise
    except smtplib.SMTPResponseException as error:
        raise DeliveryError(f"smtp://{server.host}:{server.port} answered {error.smtp_code}") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        raise DeliveryError(f"smtp://{server.host}:{server.port}: {type(error).__name__}") from None


def _message(mail: Mail) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.recipients)
    message["Subject"] = mail.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = mail.message_id
    for name, value in mail.headers.items():
        message[name] = value
    message.set_content(mail.text)
    return message


def json_body(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


__all__ = [
    "DeliveryError",
    "DestinationRefused",
    "HttpPost",
    "Mail",
    "SmtpServer",
    "json_body",
    "post_json",
    "send_mail",
]
