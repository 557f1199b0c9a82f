"""Serving TLS from certificate files, reloaded when they change (the credential service, the webhooks).

The certificate comes from a mounted Secret (helm-generated, cert-manager's,
or credop's own); when it is renewed the kubelet swaps the files, and
:meth:`ServingCertificate.reload_if_changed` loads them into the same SSL
context, so new connections get the new certificate without a restart and
established ones are not dropped.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("credop.tls")


@dataclass(frozen=True)
class CertificateFiles:
    certificate: Path
    key: Path

    @classmethod
    def in_directory(cls, directory: str | Path) -> CertificateFiles:
        """``tls.crt`` and ``tls.key`` in a directory (a mounted ``kubernetes.io/tls`` Secret)."""
        return cls(Path(directory) / "tls.crt", Path(directory) / "tls.key")

    def version(self) -> tuple[tuple[int, int], ...]:
        """What identifies the files' current contents (a Secret update replaces them: new inode, new time)."""
        stats = [os.stat(path) for path in (self.certificate, self.key)]
        return tuple((stat.st_ino, stat.st_mtime_ns) for stat in stats)


class ServingCertificate:
    """An SSL server context whose certificate follows the files."""

    def __init__(self, files: CertificateFiles) -> None:
        self.files = files
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._version = files.version()
        self.context.load_cert_chain(str(files.certificate), str(files.key))

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; returns whether they did. A bad pair keeps the old one."""
        try:
            version = self.files.version()
        except OSError as error:
            logger.warning("the serving certificate files are unreadable (%s); keeping the loaded one", error)
            return False
        if version == self._version:
            return False
        try:
            self.context.load_cert_chain(str(self.files.certificate), str(self.files.key))
        except (ssl.SSLError, OSError) as error:
            logger.warning("the new serving certificate did not load (%s); keeping the previous one", error)
            return False
        self._version = version
        logger.info("reloaded the serving certificate from %s", self.files.certificate.parent)
        return True
