"""Where notices may go: public addresses, or what the operator's allow-list names (SSRF guard, pure)."""

from __future__ import annotations

import ipaddress

import pytest

from credop.domain.destinations import DestinationRefused, DestinationRules, check, is_public, parse_url

NONE = DestinationRules()
LOOPBACK = DestinationRules.parse(networks=["127.0.0.0/8"])
RELAY = DestinationRules.parse(hosts=["smtp-relay.mail.svc.cluster.local"])


def addresses(*texts: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [ipaddress.ip_address(text) for text in texts]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.96.0.1",  # a cluster's kubernetes Service
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
    ],
)
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(DestinationRefused, match="non-public"):
        check("hooks.example.com", addresses(address), NONE, plaintext=False)


def test_a_host_with_one_internal_address_among_public_ones_is_refused() -> None:
    with pytest.raises(DestinationRefused):
        check("rebind.example.com", addresses("93.184.216.34", "10.0.0.1"), NONE, plaintext=False)


def test_public_addresses_over_tls_are_allowed() -> None:
    assert check("hooks.example.com", addresses("93.184.216.34"), NONE, plaintext=False) == addresses("93.184.216.34")


def test_plain_http_only_to_listed_destinations() -> None:
    with pytest.raises(DestinationRefused, match="plain http"):
        check("hooks.example.com", addresses("93.184.216.34"), NONE, plaintext=True)
    assert check("127.0.0.1", addresses("127.0.0.1"), LOOPBACK, plaintext=True)


def test_the_allow_list_names_networks_or_hosts() -> None:
    assert check("x", addresses("127.0.0.5"), LOOPBACK, plaintext=False)
    with pytest.raises(DestinationRefused):
        check("x", addresses("127.0.0.5", "10.0.0.1"), LOOPBACK, plaintext=False)
    assert check("smtp-relay.mail.svc.cluster.local.", addresses("10.96.3.4"), RELAY, plaintext=False)
    with pytest.raises(DestinationRefused):
        check("evil.mail.svc.cluster.local", addresses("10.96.3.4"), RELAY, plaintext=False)


def test_unresolvable_hosts_are_refused() -> None:
    with pytest.raises(DestinationRefused, match="does not resolve"):
        check("nowhere.invalid", [], LOOPBACK, plaintext=False)


@pytest.mark.parametrize(
    ("url", "host", "port", "path"),
    [
        ("https://hooks.example.com/a?b=c", "hooks.example.com", 443, "/a?b=c"),
        ("http://127.0.0.1:8080", "127.0.0.1", 8080, "/"),
        ("https://[::1]:9000/x", "::1", 9000, "/x"),
    ],
)
def test_parse_url(url: str, host: str, port: int, path: str) -> None:
    target = parse_url(url)
    assert (target.host, target.port, target.path) == (host, port, path)


@pytest.mark.parametrize(
    "url", ["ftp://x.example/", "https://user:pw@x.example/", "https:///nohost", "https://x:99999/"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefused):
        parse_url(url)
