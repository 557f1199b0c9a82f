"""HTTP requests made from inside a pod (sent by ``kubectl exec -i ... python3 -``), standard library only.

argv[1] is a JSON list of requests: ``{"url", "method"?, "form"?, "json"?, "basic"?, "bearer"?,
"ca"?, "connect_to"?, "timeout"?}``.

- ``"basic": "credential"`` authenticates as the client whose Secret is mounted at /credential
  (clientId prefixed with the pod's namespace, as the credop CLI does);
- a URL, ``ca``, or a ``json``/``form`` value ``"credential:KEY"`` is that key of the mounted Secret;
- ``ca`` is the PEM the server's certificate must chain to (https), checked for the URL's host name;
- ``connect_to`` is the address to connect to instead of the URL's host (curl's --resolve): one
  replica behind a Service, still verified as the Service's name.

Prints a JSON list of answers: ``{"status", "body" (parsed JSON or None), "text" (when not JSON),
"error"?, "seconds"}``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse


def credential(name: str) -> str:
    with open(f"/credential/{name}") as handle:
        return handle.read().strip()


def resolve(value: object) -> object:
    if isinstance(value, str) and value.startswith("credential:"):
        return credential(value.split(":", 1)[1])
    return value


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address, with SNI and certificate checks for the URL's host name."""

    def __init__(self, host: str, port: int | None, address: str, **kwargs: object) -> None:
        super().__init__(host, port, **kwargs)  # type: ignore[arg-type]
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def call(spec: dict) -> dict:
    url = urllib.parse.urlsplit(str(resolve(spec["url"])))
    headers = {"Accept": "application/json"}
    data = None
    if "form" in spec:
        data = urllib.parse.urlencode({k: resolve(v) for k, v in spec["form"].items()}).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif "json" in spec:
        data = json.dumps({k: resolve(v) for k, v in spec["json"].items()}).encode()
        headers["Content-Type"] = "application/json"
    basic = spec.get("basic")
    if basic == "credential":
        basic = [f"{os.environ['NAMESPACE']}/{credential('clientId')}", credential("clientSecret")]
    if basic:
        user, password = (urllib.parse.quote_plus(part) for part in basic)
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if spec.get("bearer"):
        headers["Authorization"] = f"Bearer {spec['bearer']}"
    timeout = spec.get("timeout", 10)
    host = url.hostname or ""
    if url.scheme == "https":
        context = (
            ssl.create_default_context(cadata=str(resolve(spec["ca"])))
            if spec.get("ca")
            else ssl.create_default_context()
        )
        if spec.get("connect_to"):
            connection: http.client.HTTPConnection = PinnedHTTPSConnection(
                host, url.port, spec["connect_to"], timeout=timeout, context=context
            )
        else:
            connection = http.client.HTTPSConnection(host, url.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(spec.get("connect_to") or host, url.port, timeout=timeout)
    path = url.path + (f"?{url.query}" if url.query else "")
    started = time.monotonic()
    answer: dict = {}
    try:
        connection.request(spec.get("method", "POST" if data else "GET"), path or "/", body=data, headers=headers)
        reply = connection.getresponse()
        answer = {"status": reply.status, "text": reply.read().decode(errors="replace")}
    except (OSError, http.client.HTTPException) as error:
        answer = {"status": 0, "text": "", "error": f"{type(error).__name__}: {error}"}
    finally:
        connection.close()
    answer["seconds"] = round(time.monotonic() - started, 3)
    try:
        answer["body"] = json.loads(answer["text"]) if answer["text"] else None
        del answer["text"]
    except ValueError:
        answer["body"] = None
    return answer


print(json.dumps([call(spec) for spec in json.loads(sys.argv[1])]))
