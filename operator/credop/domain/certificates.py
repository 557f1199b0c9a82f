"""A CA and a serving certificate (the webhook server's, the credential service's), made with ``cryptography`` (ECDSA P-256).

The CA lives ten years and signs a serving certificate that lives one; the
serving certificate is renewed (by the same CA) a month before it ends or when
the host names change, so the ``caBundle`` the API server trusts stays put.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = datetime.timedelta(days=3650)
SERVING_LIFETIME = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
BACKDATE = datetime.timedelta(hours=1)
CA_NAME = "credop-webhook-ca"
"""The CA's common name unless another is given (the webhook's, for what earlier versions made)."""


@dataclass(frozen=True)
class TlsBundle:
    """PEM bytes: the CA (certificate and key) and the serving certificate and key it signed."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes


def new_bundle(hosts: Iterable[str], *, now: datetime.datetime, ca_name: str = CA_NAME) -> TlsBundle:
    """A new CA and a serving certificate for ``hosts`` (DNS names or IP addresses)."""
    ca_cert, ca_key = new_authority(now=now, ca_name=ca_name)
    return issue_serving(ca_cert, ca_key, hosts, now=now)


def new_authority(*, now: datetime.datetime, ca_name: str = CA_NAME) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    certificate = (
        _builder(name, name, key.public_key(), now=now, lifetime=CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _certificate_pem(certificate), _key_pem(key)


def issue_serving(ca_cert: bytes, ca_key: bytes, hosts: Iterable[str], *, now: datetime.datetime) -> TlsBundle:
    """A serving certificate for ``hosts`` signed by the given CA."""
    authority = x509.load_pem_x509_certificate(ca_cert)
    signer = serialization.load_pem_private_key(ca_key, password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    names = list(dict.fromkeys(hosts))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "credop-webhook")])
    certificate = (
        _builder(subject, authority.subject, key.public_key(), now=now, lifetime=SERVING_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in names]), critical=False)
        .sign(signer, hashes.SHA256())
    )
    return TlsBundle(ca_cert=ca_cert, ca_key=ca_key, cert=_certificate_pem(certificate), key=_key_pem(key))


def renewed(
    bundle: TlsBundle | None, hosts: Iterable[str], *, now: datetime.datetime, ca_name: str = CA_NAME
) -> TlsBundle | None:
    """A renewed bundle when ``bundle`` is missing, ends within a month or does not cover ``hosts``; else None."""
    hosts = list(hosts)
    if bundle is None or _ends_soon(bundle.ca_cert, now, margin=SERVING_LIFETIME + RENEW_BEFORE):
        return new_bundle(hosts, now=now, ca_name=ca_name)
    if _ends_soon(bundle.cert, now, margin=RENEW_BEFORE) or not covers(bundle.cert, hosts):
        return issue_serving(bundle.ca_cert, bundle.ca_key, hosts, now=now)
    return None


def covers(cert: bytes, hosts: Iterable[str]) -> bool:
    """Whether the certificate names every one of ``hosts``."""
    certificate = x509.load_pem_x509_certificate(cert)
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(name) for name in sans.get_values_for_type(x509.DNSName)}
    present |= {str(address) for address in sans.get_values_for_type(x509.IPAddress)}
    return all(host in present for host in hosts)


def _ends_soon(cert: bytes, now: datetime.datetime, *, margin: datetime.timedelta) -> bool:
    return x509.load_pem_x509_certificate(cert).not_valid_after_utc - margin <= now


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    *,
    now: datetime.datetime,
    lifetime: datetime.timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
