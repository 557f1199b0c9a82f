"""The credop CLI against the real control plane, with the operator running in-process.

Most tests call ``credop.cli.main`` in-process and read what it printed; one
runs the installed console script and the kubectl plugin as subprocesses.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from credop.cli import main
from tests.cluster.helpers import (
    APIC,
    KPOL,
    SAK,
    active,
    annotations_of,
    client_manifest,
    gone,
    key_manifest,
    policy_manifest,
    secret_data,
    status_of,
    wait_gone,
    wait_policy,
    wait_status,
)
from tests.cluster.kube import REPO, Cluster, kubectl_binary, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE, TEST_ENDPOINT

pytestmark = pytest.mark.usefixtures("operator")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Credop = Callable[..., Result]


@pytest.fixture
def credop(cluster: Cluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Credop:
    """Run ``credop ARGS`` in-process against the test bed; ``stdin`` feeds the confirmation prompt."""

    def run(*args: str, kubeconfig: Path | None = None, stdin: str = "") -> Result:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(["--kubeconfig", str(kubeconfig or cluster.kubeconfig), *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def table(text: str) -> dict[str, dict[str, str]]:
    """A printed table as {NAME: {HEADER: cell}}; columns are at least two spaces apart, cells have single spaces."""
    lines = [line for line in text.splitlines() if line.strip()]
    headers = re.split(r"\s{2,}", lines[0].strip())
    rows = [dict(zip(headers, re.split(r"\s{2,}", line.strip()), strict=True)) for line in lines[1:]]
    return {row["NAME"]: row for row in rows}


# status and report -----------------------------------------------------------------------------


def test_status_shows_phase_deadlines_last_use_and_compliance(cluster: Cluster, namespace: str, credop: Credop) -> None:
    due_now = {"period": "1h", "notifyBefore": "2h", "action": "None"}
    cluster.apply(
        policy_manifest(
            namespace,
            "strict",
            defaultExpiry="1h",
            expiryNotifyBefore="2h",
            rotation=due_now,
            usage={"maxIdle": "1h", "notifyBefore": "2h", "action": "None"},
        )
    )
    wait_policy(cluster, namespace, "strict")
    cluster.apply(key_manifest("watched", namespace, policyName="strict"))
    cluster.apply(key_manifest("plain", namespace))
    cluster.apply(key_manifest("lost", namespace))
    cluster.apply(client_manifest("billing", namespace, clientId="billing-prod"))
    watched = wait_status(cluster, namespace, "watched", active)
    wait_status(cluster, namespace, "plain", active)
    wait_status(cluster, namespace, "lost", active)
    wait_status(cluster, namespace, "billing", active, plural=APIC)
    cluster.core.delete_namespaced_secret("lost", namespace)
    wait_status(cluster, namespace, "lost", lambda s: s.get("phase") == "Failed")

    result = credop("status", "-n", namespace)

    assert result.code == 0, result.err
    rows = table(result.out)
    assert list(rows) == ["lost", "plain", "watched", "billing"]
    assert rows["watched"]["KIND"] == "ServiceAccountKey"
    assert rows["watched"]["ID"] == watched["accessKeyId"]
    assert rows["watched"]["PHASE"] == "Active"
    assert rows["watched"]["EXPIRES"].startswith("in ")
    assert rows["watched"]["LAST-USED"] == "never"
    assert rows["watched"]["COMPLIANCE"] == "expiring-soon,rotation-due,unused"
    assert rows["plain"]["COMPLIANCE"] == "ok"
    assert rows["lost"]["PHASE"] == "Failed"
    assert rows["lost"]["REASON"] == "SecretMissing"
    assert rows["lost"]["COMPLIANCE"] == "secret-missing"
    assert rows["billing"]["KIND"] == "ApiClient"
    assert rows["billing"]["ID"] == "billing-prod"
    assert rows["billing"]["EXPIRES"] == "-"

    only_clients = table(credop("status", "apic", "-n", namespace).out)
    assert list(only_clients) == ["billing"]
    one = table(credop("status", "sak/plain", "-n", namespace).out)
    assert list(one) == ["plain"]


def test_status_all_namespaces_and_the_contexts_namespace(cluster: Cluster, namespace: str, credop: Credop) -> None:
    cluster.apply(key_manifest("mine", namespace))
    wait_status(cluster, namespace, "mine", active)
    everywhere = credop("status", "-A")
    assert everywhere.code == 0
    assert re.search(rf"^{namespace}\s+ServiceAccountKey\s+mine\s", everywhere.out, re.MULTILINE)

    reader = cluster.service_account_kubeconfig(namespace, "reader")
    cluster.rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "credop-reader"},
            "rules": [{"apiGroups": ["credop.dev"], "resources": [SAK, APIC, KPOL], "verbs": ["get", "list"]}],
        },
    )
    cluster.rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "credop-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "credop-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )

    def listed_with_the_readers_rights() -> Result | None:
        result = credop("status", kubeconfig=reader)
        return result if result.code == 0 else None

    from_context = wait_for(listed_with_the_readers_rights, what="the reader's RBAC to take effect")
    assert list(table(from_context.out)) == ["mine"]


def test_report_summarises_phases_and_active_clients_against_the_limit(
    cluster: Cluster, namespace: str, credop: Credop
) -> None:
    cluster.apply(policy_manifest(namespace, maxActiveClients=1))
    wait_policy(cluster, namespace)
    cluster.apply(client_manifest("first", namespace))
    wait_status(cluster, namespace, "first", active, plural=APIC)
    cluster.apply(client_manifest("second", namespace))
    cluster.apply(key_manifest("key", namespace))
    wait_status(cluster, namespace, "second", lambda s: s.get("reason") == "ActiveLimitReached", plural=APIC)
    wait_status(cluster, namespace, "key", active)

    as_json = credop("report", "-n", namespace, "-o", "json")
    assert as_json.code == 0, as_json.err
    document = json.loads(as_json.out)
    assert {row["name"]: row["phase"] for row in document["credentials"]} == {
        "key": "Active",
        "first": "Active",
        "second": "Inactive",
    }
    summary = document["summary"]
    assert summary["total"] == 3
    assert summary["byKind"] == {"ServiceAccountKey": {"Active": 1}, "ApiClient": {"Active": 1, "Inactive": 1}}
    assert summary["activeClients"] == [{"namespace": namespace, "active": 1, "limit": 1, "waiting": 1}]
    assert next(row for row in document["credentials"] if row["name"] == "key")["lastUsed"] == "never"

    as_yaml = yaml.safe_load(credop("report", "-n", namespace, "-o", "yaml").out)
    assert as_yaml["summary"] == summary
    as_table = credop("report", "-n", namespace)
    assert set(table(as_table.out.split("\n\n")[0])) == {"key", "first", "second"}
    assert f"{namespace}: 1/1 active (limit reached, 1 waiting)" in as_table.out


# actions ---------------------------------------------------------------------------------------


def test_rotate_sets_a_new_annotation_value_and_waits_for_the_new_secret(
    cluster: Cluster, namespace: str, credop: Credop
) -> None:
    cluster.apply(key_manifest("ci", namespace))
    cluster.apply(client_manifest("app", namespace))
    wait_status(cluster, namespace, "ci", active)
    wait_status(cluster, namespace, "app", active, plural=APIC)
    key_before, client_before = secret_data(cluster, namespace, "ci"), secret_data(cluster, namespace, "app")

    for target, plural, name in (("sak/ci", SAK, "ci"), ("apiclient/app", APIC, "app")):
        result = credop("rotate", target, "-n", namespace, "--wait")
        assert result.code == 0, result.err
        value = annotations_of(cluster, plural, namespace, name)["credop.dev/rotate"]
        status = status_of(cluster, namespace, name, plural)
        assert status["rotateHandled"] == f"manual:{value}"
        assert status["keyGeneration"] == 2
        assert "rotated; generation 2" in result.out

    assert secret_data(cluster, namespace, "ci")["secretKey"] != key_before["secretKey"]
    assert secret_data(cluster, namespace, "app")["clientSecret"] != client_before["clientSecret"]
    again = credop("rotate", "sak/ci", "-n", namespace, "--wait")
    assert again.code == 0
    assert status_of(cluster, namespace, "ci")["keyGeneration"] == 3, "each run is a new value, so a new rotation"


def test_invalidate_tokens_waits_until_status_records_the_value(
    cluster: Cluster, namespace: str, credop: Credop
) -> None:
    cluster.apply(client_manifest("app", namespace))
    wait_status(cluster, namespace, "app", active, plural=APIC)

    result = credop("invalidate-tokens", "apic/app", "-n", namespace, "--wait")

    assert result.code == 0, result.err
    value = annotations_of(cluster, APIC, namespace, "app")["credop.dev/invalidate-tokens"]
    status = status_of(cluster, namespace, "app", APIC)
    assert status["invalidateTokensHandled"] == value
    assert f"tokens issued before {status['tokensInvalidBefore']} are rejected" in result.out


def test_deactivate_and_activate_change_spec_active_with_a_gitops_hint(
    cluster: Cluster, namespace: str, credop: Credop
) -> None:
    cluster.apply(client_manifest("app", namespace))
    wait_status(cluster, namespace, "app", active, plural=APIC)

    off = credop("deactivate", "apic/app", "-n", namespace, "--wait")
    assert off.code == 0, off.err
    assert cluster.get(APIC, namespace, "app")["spec"]["active"] is False
    assert status_of(cluster, namespace, "app", APIC)["phase"] == "Inactive"
    assert "phase Inactive" in off.out
    assert "GitOps" in off.err

    on = credop("activate", "apic/app", "-n", namespace, "--wait")
    assert on.code == 0, on.err
    assert cluster.get(APIC, namespace, "app")["spec"]["active"] is True
    assert status_of(cluster, namespace, "app", APIC)["phase"] == "Active"


def test_duplicate_copies_validity_and_permission_but_not_the_identity(
    cluster: Cluster, namespace: str, credop: Credop
) -> None:
    cluster.apply(policy_manifest(namespace, "clients"))
    wait_policy(cluster, namespace, "clients")
    cluster.apply(
        client_manifest(
            "source",
            namespace,
            clientId="source-id",
            description="nightly export",
            tokenValiditySeconds=600,
            permissionLevel="CanEdit",
            policyName="clients",
        )
    )
    wait_status(cluster, namespace, "source", active, plural=APIC)

    result = credop("duplicate", "apiclient/source", "copy", "-n", namespace, "--wait")

    assert result.code == 0, result.err
    spec = cluster.get(APIC, namespace, "copy")["spec"]
    assert {key: spec.get(key) for key in ("description", "tokenValiditySeconds", "permissionLevel", "policyName")} == {
        "description": "nightly export",
        "tokenValiditySeconds": 600,
        "permissionLevel": "CanEdit",
        "policyName": "clients",
    }
    assert "clientId" not in spec
    status = wait_status(cluster, namespace, "copy", active, plural=APIC)
    assert status["clientId"] == "copy"
    assert status["tokenValiditySeconds"] == 600
    original, duplicate = secret_data(cluster, namespace, "source"), secret_data(cluster, namespace, "copy")
    assert duplicate["clientId"] == "copy"
    assert duplicate["clientSecret"] != original["clientSecret"]

    again = credop("duplicate", "apic/source", "copy", "-n", namespace)
    assert again.code == 1
    assert 'ApiClient "copy"' in again.err
    assert credop("duplicate", "sak/source", "copy2", "-n", namespace).code == 2


# token -----------------------------------------------------------------------------------------


@dataclass
class StubTokenEndpoint:
    """A token endpoint that records each request and answers as configured."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def token_endpoint() -> Iterator[StubTokenEndpoint]:
    stub = StubTokenEndpoint(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            stub.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "form": form})
            body = (
                {"access_token": "stub.access.token", "token_type": "Bearer", "expires_in": 600}
                if stub.status == 200
                else {"error": "invalid_client", "error_description": "client authentication failed"}
            )
            payload = json.dumps(body).encode()
            self.send_response(stub.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


def basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)


def test_token_uses_the_clients_secret_with_client_secret_basic(
    cluster: Cluster, namespace: str, credop: Credop, token_endpoint: StubTokenEndpoint
) -> None:
    cluster.apply(client_manifest("app", namespace, clientId="app:prod"))
    wait_status(cluster, namespace, "app", active, plural=APIC)
    data = secret_data(cluster, namespace, "app")

    result = credop("token", "apiclient/app", "-n", namespace, "--endpoint", token_endpoint.url)

    assert result.code == 0, result.err
    assert result.out.strip() == "stub.access.token"
    request = token_endpoint.requests[-1]
    assert request["path"] == "/oauth2/token"
    assert request["form"] == {"grant_type": ["client_credentials"]}
    assert basic_credentials(request["authorization"]) == (f"{namespace}/app:prod", data["clientSecret"])

    as_json = credop(
        "token", "apic/app", "-n", namespace, "--endpoint", f"{token_endpoint.url}/oauth2/token", "-o", "json"
    )
    assert json.loads(as_json.out)["expires_in"] == 600

    given = credop("token", "--client-id", "someone", "--client-secret", "pa$$word", "--endpoint", token_endpoint.url)
    assert given.code == 0
    assert basic_credentials(token_endpoint.requests[-1]["authorization"]) == ("someone", "pa$$word")

    token_endpoint.status = 401
    refused = credop("token", "apic/app", "-n", namespace, "--endpoint", token_endpoint.url)
    assert refused.code == 1
    assert (
        f'refused client "{namespace}/app:prod": invalid_client: client authentication failed (HTTP 401)' in refused.err
    )
    assert data["clientSecret"] not in refused.err


def test_token_reads_a_user_chosen_secret_from_the_clients_secret_ref(
    cluster: Cluster, namespace: str, credop: Credop, token_endpoint: StubTokenEndpoint
) -> None:
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "mine"}, "stringData": {"password": "s3cret-Pass"}}
    )
    cluster.apply(client_manifest("own", namespace, clientSecretRef={"name": "mine", "key": "password"}))
    wait_status(cluster, namespace, "own", active, plural=APIC)

    result = credop("token", "apic/own", "-n", namespace, "--endpoint", token_endpoint.url)

    assert result.code == 0, result.err
    assert basic_credentials(token_endpoint.requests[-1]["authorization"]) == (f"{namespace}/own", "s3cret-Pass")


def test_token_errors_name_the_client_and_the_problem(cluster: Cluster, namespace: str, credop: Credop) -> None:
    cluster.apply(client_manifest("app", namespace))
    wait_status(cluster, namespace, "app", active, plural=APIC)

    unreachable = credop("token", "apic/app", "-n", namespace)  # the Secret's tokenUrl is the in-cluster address
    assert unreachable.code == 1
    assert "cannot reach the token endpoint https://credop.example.test/oauth2/token" in unreachable.err

    cluster.core.delete_namespaced_secret("app", namespace)
    wait_status(cluster, namespace, "app", lambda s: s.get("reason") == "SecretMissing", plural=APIC)
    no_secret = credop("token", "apic/app", "-n", namespace, "--endpoint", "http://127.0.0.1:9")
    assert no_secret.code == 1
    assert f'ApiClient "app" in namespace "{namespace}" has no Secret "app"' in no_secret.err

    assert credop("token", "--client-id", "x", "--endpoint", "http://127.0.0.1:9").code == 2


# delete ----------------------------------------------------------------------------------------


@pytest.fixture
def deletion_protection(cluster: Cluster, namespace: str) -> Iterator[None]:
    """The deletion-protection rule, enforced in ``namespace`` by a ValidatingAdmissionPolicy.

    credop's own admission webhook enforces it in production; this stand-in makes
    the API server refuse a protected DELETE without the confirmation annotation.
    """
    name = f"credop-cli-test-{namespace}"
    rule = (
        "!has(oldObject.spec.deletionProtection) || !oldObject.spec.deletionProtection || "
        "(has(oldObject.metadata.annotations) && "
        "oldObject.metadata.annotations[?'credop.dev/confirm-delete'].orValue('') == oldObject.metadata.name)"
    )
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["credop.dev"],
                        "apiVersions": ["*"],
                        "operations": ["DELETE"],
                        "resources": [SAK, APIC],
                    }
                ]
            },
            "validations": [{"expression": rule, "message": "deletion protection: set credop.dev/confirm-delete"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    cluster.apply([policy, binding])
    yield
    cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)


def refused_without_confirmation(cluster: Cluster, namespace: str, name: str) -> bool:
    dry_run = cluster.kubectl("delete", "apic", name, "-n", namespace, "--dry-run=server", check=False)
    return dry_run.returncode != 0 and "deletion protection" in dry_run.stderr


@pytest.mark.usefixtures("deletion_protection")
def test_delete_of_a_protected_client_confirms_then_annotates_then_deletes(
    cluster: Cluster, namespace: str, credop: Credop
) -> None:
    cluster.apply(client_manifest("keep", namespace, deletionProtection=True))
    wait_status(cluster, namespace, "keep", active, plural=APIC)
    wait_for(lambda: refused_without_confirmation(cluster, namespace, "keep"), what="the admission policy")

    wrong = credop("delete", "apic/keep", "-n", namespace, stdin="kept\n")
    assert wrong.code == 1
    assert 'This deletes ApiClient "keep"' in wrong.err
    assert "deletion protection is on" in wrong.err
    assert "not confirmed" in wrong.err
    assert "credop.dev/confirm-delete" not in annotations_of(cluster, APIC, namespace, "keep")

    nothing_typed = credop("delete", "apic/keep", "-n", namespace)
    assert nothing_typed.code == 1
    assert "--yes or --confirm NAME" in nothing_typed.err
    assert credop("delete", "apic/keep", "-n", namespace, "--confirm", "other").code == 1
    assert not gone(lambda: cluster.get(APIC, namespace, "keep"))

    confirmed = credop("delete", "apic/keep", "-n", namespace, "--wait", stdin="keep\n")
    assert confirmed.code == 0, confirmed.err
    assert "apiclient/keep deleted" in confirmed.out
    assert gone(lambda: cluster.get(APIC, namespace, "keep"))


@pytest.mark.usefixtures("deletion_protection")
def test_delete_with_yes_or_confirm_needs_no_prompt(cluster: Cluster, namespace: str, credop: Credop) -> None:
    cluster.apply(client_manifest("protected", namespace, deletionProtection=True))
    cluster.apply(key_manifest("unprotected", namespace))
    wait_status(cluster, namespace, "protected", active, plural=APIC)
    wait_status(cluster, namespace, "unprotected", active)
    wait_for(lambda: refused_without_confirmation(cluster, namespace, "protected"), what="the admission policy")

    assert credop("delete", "sak/unprotected", "-n", namespace).code == 1, "it asks even without protection"
    assert not gone(lambda: cluster.get(SAK, namespace, "unprotected"))
    assert credop("delete", "serviceaccountkeys/unprotected", "-n", namespace, "--confirm", "unprotected").code == 0
    assert credop("delete", "apiclients/protected", "-n", namespace, "--yes").code == 0
    wait_gone(lambda: cluster.get(APIC, namespace, "protected"), what="the protected client to go")
    wait_gone(lambda: cluster.get(SAK, namespace, "unprotected"), what="the unprotected key to go")


# errors and the console script -------------------------------------------------------------------


def test_errors_are_one_line_naming_the_object(cluster: Cluster, namespace: str, credop: Credop) -> None:
    missing = credop("rotate", "sak/nope", "-n", namespace)
    assert missing.code == 1
    assert missing.err.strip() == f'error: ServiceAccountKey "nope" in namespace "{namespace}" not found'

    cluster.apply(key_manifest("ci", namespace))
    outsider = cluster.service_account_kubeconfig(namespace, "outsider")
    forbidden = credop("rotate", "sak/ci", kubeconfig=outsider)
    assert forbidden.code == 1
    assert forbidden.err.startswith(
        f'error: cannot update ServiceAccountKey "ci" in namespace "{namespace}": forbidden by RBAC'
    )
    assert len(forbidden.err.strip().splitlines()) == 1

    unknown = credop("rotate", "deployment/ci", "-n", namespace)
    assert unknown.code == 2
    assert 'unknown kind "deployment"' in unknown.err
    assert credop("rotate", "kpol/default", "-n", namespace).code == 2
    assert credop("frobnicate").code == 2

    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    dead = cluster.workdir / f"dead-{namespace}.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    unreachable = credop("status", "-n", namespace, kubeconfig=dead)
    assert unreachable.code == 1
    assert "cannot reach the API server at https://127.0.0.1:9" in unreachable.err


def test_console_script_and_kubectl_plugin(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("ci", namespace))
    wait_status(cluster, namespace, "ci", active)
    bin_dir = REPO / ".venv" / "bin"
    environment = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    script = subprocess.run(
        [str(bin_dir / "credop"), "status", "-n", namespace],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert script.returncode == 0, script.stderr
    assert list(table(script.stdout)) == ["ci"]

    plugin = subprocess.run(
        [kubectl_binary(), "credop", "-n", namespace, "rotate", "sak/ci", "--wait"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=90,
        check=False,
    )
    assert plugin.returncode == 0, plugin.stderr
    assert status_of(cluster, namespace, "ci")["keyGeneration"] == 2

    usage = subprocess.run(
        [str(bin_dir / "kubectl-credop"), "rotate"], capture_output=True, text=True, env=environment, check=False
    )
    assert usage.returncode == 2
    assert usage.stderr.startswith("usage: kubectl credop rotate")


def test_operator_verb_runs_the_operator_with_json_logs(cluster: Cluster) -> None:
    environment = {
        **os.environ,
        "CREDOP_NAMESPACE": OPERATOR_NAMESPACE,
        "CREDOP_ENDPOINT": TEST_ENDPOINT,
        "PYTHONUNBUFFERED": "1",
    }
    command = [str(REPO / ".venv" / "bin" / "credop"), "operator", "--kubeconfig", str(cluster.kubeconfig)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "Activity 'start' succeeded" in line:
                break
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    records = [json.loads(line) for line in lines if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(record["message"] == "Activity 'start' succeeded." for record in records), lines[-5:]
    assert process.returncode == 0


@pytest.fixture
def credential_service(cluster: Cluster, operator_namespace: str) -> Iterator[str]:
    """``credop service`` as a subprocess on a free port (the real credential service); yields its URL."""
    from testbed import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "CREDOP_NAMESPACE": operator_namespace, "CREDOP_ENDPOINT": TEST_ENDPOINT}
    command = [str(REPO / ".venv" / "bin" / "credop"), "service", "--kubeconfig", str(cluster.kubeconfig)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    try:
        wait_for(lambda: process.poll() is not None or ready(url), timeout=60, what="the credential service")
        assert process.poll() is None, f"credop service exited with {process.returncode}"
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_token_from_the_real_credential_service(
    cluster: Cluster, namespace: str, credop: Credop, credential_service: str
) -> None:
    cluster.apply(client_manifest("app", namespace, permissionLevel="CanEdit", tokenValiditySeconds=600))
    cluster.apply(key_manifest("ci", namespace))
    wait_status(cluster, namespace, "app", active, plural=APIC)
    status = wait_status(cluster, namespace, "ci", active)

    def token_for(target: str) -> str | None:
        result = credop("token", target, "-n", namespace, "--endpoint", credential_service)
        return result.out.strip() if result.code == 0 else None

    token = wait_for(lambda: token_for("apic/app"), what="the service to know the client")
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["client_id"] == f"{namespace}/app"
    assert claims["scope"] == "read write"
    assert claims["exp"] - claims["iat"] == 600

    key_token = wait_for(lambda: token_for("sak/ci"), what="the service to know the key")
    assert status["accessKeyId"] in json.dumps(jwt.decode(key_token, options={"verify_signature": False}))

    credop("deactivate", "apic/app", "-n", namespace, "--wait")

    def refusal() -> Result | None:
        result = credop("token", "apic/app", "-n", namespace, "--endpoint", credential_service)
        return result if result.code == 1 else None

    refused = wait_for(refusal, what="the service to refuse the deactivated client")
    assert f'refused client "{namespace}/app": invalid_client' in refused.err
