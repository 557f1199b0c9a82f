"""``credop token`` never sends credentials across a redirect."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from credop.cli.errors import CliError
from credop.cli.oauth import ClientCredentials, request_token


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        Recorder.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"access_token": "x", "token_type": "Bearer"}')

    def do_GET(self) -> None:
        self.do_POST()

    def log_message(self, *args: object) -> None:
        return None


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def elsewhere() -> Iterator[str]:
    Recorder.seen = []
    yield from serve(Recorder)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_nothing_reaches_its_target(elsewhere: str, code: int) -> None:
    class Redirector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(code)
            self.send_header("Location", f"{elsewhere}/steal")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    for url in serve(Redirector):
        credentials = ClientCredentials("team/app", "crcs_secret", f"{url}/oauth2/token")
        with pytest.raises(CliError, match="redirect"):
            request_token(credentials)
    assert Recorder.seen == [], "the redirect target never saw a request (nor the Authorization header)"


def test_a_direct_answer_works(elsewhere: str) -> None:
    answer = request_token(ClientCredentials("team/app", "crcs_secret", f"{elsewhere}/oauth2/token"))
    assert answer["access_token"] == "x"
    assert Recorder.seen[0]["Authorization"].startswith("Basic ")
