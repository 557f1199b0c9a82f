"""Where credop may send notices: a KeyPolicy is tenant input, so its receivers are an SSRF vector.

The rule: a destination is allowed when every address its host resolves to is
a public (globally routable) address, or the operator's allow-list names the
host or a network holding every address. Loopback, private, link-local (cloud
metadata services), carrier-grade NAT, multicast and reserved addresses, and
so the cluster's own Services and the API server, are refused unless listed.
Plain ``http`` is allowed only to listed destinations: notices to anywhere
else travel over TLS. The caller connects to the very addresses checked here
(no second DNS lookup an attacker could answer differently).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEME_PORTS = {"https": 443, "http": 80}


class DestinationRefused(ValueError):  # noqa: N818 - a refusal, reported as the delivery's error
    """credop will not send to this destination; the message says why (no secret in it)."""


@dataclass(frozen=True)
class DestinationRules:
    """The operator's allow-list (chart: operator.notifications.allowedNetworks / allowedHosts)."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, *, networks: Sequence[str] = (), hosts: Sequence[str] = ()) -> DestinationRules:
        return cls(
            tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip()),
            tuple(h.strip().lower().rstrip(".") for h in hosts if h.strip()),
        )

    def listed(self, host: str, addresses: Sequence[IPAddress]) -> bool:
        """Whether the allow-list names ``host``, or networks that hold every one of ``addresses``."""
        if host.lower().rstrip(".") in self.allowed_hosts:
            return True
        return bool(addresses) and all(any(a in n for n in self.allowed_networks) for a in addresses)


@dataclass(frozen=True)
class Target:
    """A URL taken apart: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> Target:
    """An http(s) URL without user info; anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEME_PORTS:
        raise DestinationRefused(f"scheme {parts.scheme or '(none)'} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("URLs with user info are refused")
    host = parts.hostname
    if not host:
        raise DestinationRefused("the URL has no host")
    try:
        port = parts.port or SCHEME_PORTS[parts.scheme]
    except ValueError:
        raise DestinationRefused("the URL's port is not a number from 1 to 65535") from None
    path = parts.path or "/"
    return Target(parts.scheme, host, port, path + (f"?{parts.query}" if parts.query else ""))


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast (``is_global`` leaves out private, loopback, link-local, CGNAT, reserved)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def check(host: str, addresses: Sequence[IPAddress], rules: DestinationRules, *, plaintext: bool) -> list[IPAddress]:
    """The addresses credop may connect to for ``host``, or :class:`DestinationRefused` saying why."""
    if not addresses:
        raise DestinationRefused(f"{host} does not resolve")
    if rules.listed(host, addresses):
        return list(addresses)
    if plaintext:
        raise DestinationRefused(f"plain http to {host} is refused: use https, or list it in the operator's allow-list")
    internal = [str(a) for a in addresses if not is_public(a)]
    if internal:
        raise DestinationRefused(
            f"{host} resolves to a non-public address ({internal[0]}): only the operator's allow-list "
            "(operator.notifications.allowedNetworks / allowedHosts) may name internal destinations"
        )
    return list(addresses)


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address, if it is one (``[::1]`` brackets already removed by URL parsing)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
