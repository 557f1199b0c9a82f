"""Which address a request came from, believing X-Forwarded-For only from trusted proxies.

Rate limits count failures per client address. Behind an ingress every request
arrives from the ingress's address, so the address the ingress saw is taken
from ``X-Forwarded-For`` — but only when the request really comes from a proxy
listed as trusted (none by default), and then the client is the last hop
before the trusted ones: anything further left is whatever the client wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDRs (``10.0.0.0/8``, a bare address); raises ValueError naming a bad one."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {cidr!r} is not an address or CIDR") from None
    return tuple(networks)


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def client_address(peer: str | None, forwarded_for: str | None, *, trusted: Sequence[Network]) -> str:
    """The address to count failures under: the peer, or the last untrusted hop it forwarded for."""
    if not peer:
        return "unknown"
    if not trusted or not _is_trusted(peer, trusted) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _is_address(hop) else peer
    return hops[0] if hops else peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
