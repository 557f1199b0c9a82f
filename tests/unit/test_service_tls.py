"""The credential service over TLS: its certificate is reloaded when the files change, without a restart."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from aiohttp import web
from cryptography import x509

from credop.service import build_app
from credop.tls import CertificateFiles, ServingCertificate
from tests.servicekit import in_memory_state
from tests.tlsfiles import ScratchCA


async def served_common_name(port: int, ca: ScratchCA) -> str:
    """Open a TLS connection, trusting ``ca`` only, and read the certificate the server presents."""
    context = ssl.create_default_context(cadata=ca.pem)
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    name = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(name[0].value)


async def test_a_renewed_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    ca = ScratchCA.make()
    ca.issue(tmp_path, common_name="first")
    certificate = ServingCertificate(CertificateFiles.in_directory(tmp_path))
    runner = web.AppRunner(build_app(in_memory_state()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certificate.context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await served_common_name(port, ca) == "first"
        assert certificate.reload_if_changed() is False, "nothing changed yet"
        ca.issue(tmp_path, common_name="renewed")
        assert certificate.reload_if_changed() is True
        assert await served_common_name(port, ca) == "renewed"
        (tmp_path / "tls.key").write_text("not a key")
        assert certificate.reload_if_changed() is False, "a broken pair keeps the loaded certificate"
        assert await served_common_name(port, ca) == "renewed"
    finally:
        await runner.cleanup()


async def test_plain_http_is_not_answered_on_the_tls_port(tmp_path: Path) -> None:
    ca = ScratchCA.make()
    certificate = ServingCertificate(CertificateFiles.in_directory(ca.issue(tmp_path)))
    runner = web.AppRunner(build_app(in_memory_state()))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certificate.context).start()
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        answer = await reader.read(100)
        writer.close()
        assert not answer.startswith(b"HTTP/1.1 200"), "the service speaks TLS only"
    finally:
        await runner.cleanup()
