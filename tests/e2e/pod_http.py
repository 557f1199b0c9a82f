"""HTTP requests made from inside a pod (sent by ``kubectl exec -i ... python3 -``), standard library only.

argv[1] is a JSON list of requests: ``{"url", "method"?, "form"?, "json"?, "basic"?, "bearer"?,
"timeout"?}``. ``"basic": "credential"`` authenticates as the client whose Secret is mounted at
/credential (clientId prefixed with the pod's namespace, as the credop CLI does); a URL or a
``json``/``form`` value ``"credential:KEY"`` is that key of the mounted Secret. Prints a JSON list
of answers: ``{"status", "body" (parsed JSON or None), "text" (when not JSON), "error"?, "seconds"}``.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def credential(name: str) -> str:
    with open(f"/credential/{name}") as handle:
        return handle.read().strip()


def resolve(value: object) -> object:
    if isinstance(value, str) and value.startswith("credential:"):
        return credential(value.split(":", 1)[1])
    return value


def call(spec: dict) -> dict:
    url = str(resolve(spec["url"]))
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
    request = urllib.request.Request(
        url, data=data, headers=headers, method=spec.get("method", "POST" if data else "GET")
    )
    started = time.monotonic()
    answer: dict = {}
    try:
        with urllib.request.urlopen(request, timeout=spec.get("timeout", 10)) as reply:
            answer = {"status": reply.status, "text": reply.read().decode(errors="replace")}
    except urllib.error.HTTPError as error:
        answer = {"status": error.code, "text": error.read().decode(errors="replace")}
    except OSError as error:
        answer = {"status": 0, "text": "", "error": f"{type(error).__name__}: {getattr(error, 'reason', error)}"}
    answer["seconds"] = round(time.monotonic() - started, 3)
    try:
        answer["body"] = json.loads(answer["text"]) if answer["text"] else None
        del answer["text"]
    except ValueError:
        answer["body"] = None
    return answer


print(json.dumps([call(spec) for spec in json.loads(sys.argv[1])]))
