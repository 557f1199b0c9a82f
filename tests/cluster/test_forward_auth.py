"""Read only = GET only, enforced at the ingress: a real nginx asks /v1/authorize before passing a request on.

nginx's ``auth_request`` is what ingress-nginx's ``auth-url`` annotation sets
up; the same endpoint serves Traefik's ForwardAuth and Envoy's ext_authz.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from testbed import free_port
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.service import Replica, active_client, token_on_every_replica

pytestmark = pytest.mark.usefixtures("operator")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = """
user root root;
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /_credop_auth {{
      internal;
      proxy_pass http://127.0.0.1:{service}/v1/authorize;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URL $request_uri;
    }}
    location / {{
      auth_request /_credop_auth;
      auth_request_set $credop_subject $upstream_http_x_credop_subject;
      proxy_set_header X-Credop-Subject $credop_subject;
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
"""


class Upstream(http.server.BaseHTTPRequestHandler):
    """The resource server behind the ingress: it records who the ingress said was calling."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def _answer(self) -> None:
        Upstream.seen.append((self.command, self.headers.get("X-Credop-Subject", "")))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"upstream")

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def log_message(self, *args: object) -> None:
        return None


@dataclass(frozen=True)
class Ingress:
    url: str
    replica: Replica


@pytest.fixture(scope="module")
def ingress(cluster: Cluster, operator_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    """nginx on loopback with auth_request to a credential service replica, in front of a tiny upstream."""
    replica = Replica(cluster.kubeconfig, "forward-auth").start()
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    root, port = tmp_path_factory.mktemp("nginx"), free_port()
    assert replica.service is not None
    config = CONFIG.format(root=root, port=port, service=replica.service.port, upstream=upstream.server_address[1])
    (root / "nginx.conf").write_text(config)
    nginx = subprocess.Popen([NGINX, "-c", str(root / "nginx.conf"), "-p", str(root)], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _listening(port, nginx, root), timeout=20, what="nginx to listen")
        yield Ingress(f"http://127.0.0.1:{port}", replica)
    finally:
        nginx.terminate()
        nginx.wait(10)
        upstream.shutdown()
        replica.stop()


def _listening(port: int, nginx: subprocess.Popen[bytes], root: Path) -> bool:
    if nginx.poll() is not None:
        raise RuntimeError(f"nginx exited: {(root / 'error.log').read_text() if (root / 'error.log').exists() else ''}")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False  # wait_for polls again
    return True


def through_ingress(url: str, method: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(f"{url}/orders", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_read_only_gets_and_can_edit_posts_through_the_ingress(
    cluster: Cluster, namespace: str, ingress: Ingress
) -> None:
    reader_id, reader_secret = active_client(cluster, namespace, "reader", permissionLevel="ReadOnly")
    editor_id, editor_secret = active_client(cluster, namespace, "editor", permissionLevel="CanEdit")
    (reader,) = token_on_every_replica((ingress.replica,), reader_id, reader_secret)
    (editor,) = token_on_every_replica((ingress.replica,), editor_id, editor_secret)
    Upstream.seen.clear()
    assert through_ingress(ingress.url, "GET", reader) == 200
    assert through_ingress(ingress.url, "POST", reader) == 403, "ReadOnly means GET only"
    assert through_ingress(ingress.url, "POST", editor) == 200
    assert through_ingress(ingress.url, "GET", None) == 401
    assert through_ingress(ingress.url, "GET", reader[:-2] + "xx") == 401
    assert Upstream.seen == [("GET", reader_id), ("POST", editor_id)], "only allowed requests pass, saying who"
