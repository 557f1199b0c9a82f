"""The CLI's argument handling and the pure parts of its commands: kinds, duplicates, deletion plans, OAuth."""

from __future__ import annotations

import base64
import sys
import types
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from credop.cli import main
from credop.cli.app import build_parser, program_name
from credop.cli.describe import deletion_plan, is_protected
from credop.cli.errors import CliError, UsageError
from credop.cli.kinds import (
    API_CLIENT,
    CREDENTIAL_KINDS,
    KEY_POLICY,
    SERVICE_ACCOUNT_KEY,
    KindInfo,
    Target,
    parse_target,
)
from credop.cli.manifests import duplicate_client
from credop.cli.oauth import ClientCredentials, basic_authorization, token_url_for
from credop.config import Config


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("sak/x", SERVICE_ACCOUNT_KEY),
        ("serviceaccountkey/x", SERVICE_ACCOUNT_KEY),
        ("ServiceAccountKeys/x", SERVICE_ACCOUNT_KEY),
        ("serviceaccountkeys.credop.dev/x", SERVICE_ACCOUNT_KEY),
        ("apic/x", API_CLIENT),
        ("apiclient/x", API_CLIENT),
        ("apiclients/x", API_CLIENT),
        ("kpol/x", KEY_POLICY),
        ("keypolicy/x", KEY_POLICY),
        ("keypolicies/x", KEY_POLICY),
    ],
)
def test_kubectl_style_kind_names(text: str, kind: KindInfo) -> None:
    assert parse_target(text) == Target(kind, "x")


@pytest.mark.parametrize("text", ["sak", "sak/", "/x", "sak/x/y", "pod/x"])
def test_malformed_targets_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


def test_a_known_kind_the_verb_does_not_take_says_so() -> None:
    with pytest.raises(UsageError, match="does not work on KeyPolicys"):
        parse_target("kpol/default", allowed=CREDENTIAL_KINDS)


def test_targets_print_as_kind_slash_name() -> None:
    assert str(parse_target("apic/billing")) == "apiclient/billing"


def test_connection_flags_work_before_and_after_the_verb() -> None:
    parser = build_parser()
    before = parser.parse_args(["-n", "team", "--context", "prod", "rotate", "sak/ci"])
    after = parser.parse_args(["rotate", "sak/ci", "-n", "team", "--context", "prod"])
    assert (before.namespace, before.context) == (after.namespace, after.context) == ("team", "prod")
    neither = parser.parse_args(["rotate", "sak/ci"])
    assert neither.namespace is None


def test_wait_timeout_takes_durations() -> None:
    args = build_parser().parse_args(["rotate", "sak/ci", "--wait", "--timeout", "2m"])
    assert args.wait
    assert args.timeout == 120
    assert build_parser().parse_args(["rotate", "sak/ci", "--timeout", "7.5"]).timeout == 7.5


def test_usage_errors_exit_2_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rotate"]) == 2
    assert main(["no-such-verb"]) == 2
    assert main(["rotate", "sak/ci", "--timeout", "soon"]) == 2
    assert main(["status", "-o", "json"]) == 2, "-o is a report flag"
    assert main(["--help"]) == 0
    assert "invalidate-tokens" in capsys.readouterr().out


def test_delete_refuses_yes_and_confirm_together() -> None:
    assert main(["delete", "sak/x", "--yes", "--confirm", "x"]) == 2


def test_cli_errors_print_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--kubeconfig", "/nonexistent/kubeconfig", "status"]) == 1
    assert capsys.readouterr().err == "error: cannot load the kubeconfig: /nonexistent/kubeconfig does not exist\n"


def test_the_kubectl_plugin_names_itself_kubectl_credop() -> None:
    assert program_name("/usr/local/bin/kubectl-credop") == "kubectl credop"
    assert program_name("/venv/bin/credop") == "credop"


def test_usage_error_is_a_cli_error_with_exit_code_2() -> None:
    assert issubclass(UsageError, CliError)
    assert UsageError("x").exit_code == 2
    assert CliError("x").exit_code == 1


def test_duplicate_copies_validity_permission_policy_and_description_only() -> None:
    source = {
        "metadata": {"name": "billing", "namespace": "team", "uid": "u", "labels": {"a": "b"}},
        "spec": {
            "clientId": "billing-prod",
            "description": "nightly",
            "clientSecretRef": {"name": "mine"},
            "tokenValiditySeconds": 600,
            "permissionLevel": "CanEdit",
            "active": False,
            "secretName": "billing-secret",
            "policyName": "strict",
            "deletionProtection": True,
        },
        "status": {"clientId": "billing-prod"},
    }
    assert duplicate_client(source, "billing-2") == {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": "ApiClient",
        "metadata": {"name": "billing-2", "namespace": "team"},
        "spec": {
            "description": "nightly",
            "tokenValiditySeconds": 600,
            "permissionLevel": "CanEdit",
            "policyName": "strict",
        },
    }
    assert duplicate_client(source, "b3", client_id="b3-prod")["spec"]["clientId"] == "b3-prod"
    assert duplicate_client({"metadata": {"name": "x", "namespace": "t"}}, "y")["spec"] == {}


def test_deletion_plan_names_the_object_its_secret_and_the_protection() -> None:
    body = {
        "metadata": {"name": "ci", "namespace": "team"},
        "spec": {"deletionProtection": True},
        "status": {"accessKeyId": "crak_abc", "phase": "Active", "secretRef": {"name": "ci-secret"}},
    }
    plan = deletion_plan(Target(SERVICE_ACCOUNT_KEY, "ci"), body)
    assert plan[0] == 'This deletes ServiceAccountKey "ci" in namespace "team":'
    assert "access key crak_abc, phase Active" in plan[1]
    assert 'Secret "ci-secret"' in plan[2]
    assert 'credop.dev/confirm-delete: "ci"' in plan[3]
    assert is_protected(body)
    assert not is_protected({"spec": {}})


def test_deletion_plan_of_a_policy_counts_its_credentials() -> None:
    body = {"metadata": {"name": "strict", "namespace": "team"}, "spec": {}, "status": {"credentials": 3}}
    plan = deletion_plan(Target(KEY_POLICY, "strict"), body)
    assert plan == ['This deletes KeyPolicy "strict" in namespace "team":', "  3 credentials use this policy"]


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://localhost:8080", "http://localhost:8080/oauth2/token"),
        ("http://localhost:8080/", "http://localhost:8080/oauth2/token"),
        ("https://credop.example.com/oauth2/token", "https://credop.example.com/oauth2/token"),
        ("https://gw.example.com/credop/token", "https://gw.example.com/credop/token"),
    ],
)
def test_endpoint_flag_takes_a_base_url_or_a_token_url(endpoint: str, url: str) -> None:
    assert token_url_for(endpoint) == url


def test_endpoint_must_be_a_url() -> None:
    with pytest.raises(CliError, match="is not a URL"):
        token_url_for("localhost:8080")


def test_client_secret_basic_form_encodes_id_and_secret() -> None:
    credentials = ClientCredentials("app:prod", "p@ss word", "http://x/oauth2/token")
    header = basic_authorization(credentials)
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "app%3Aprod:p%40ss+word"
    assert "p@ss word" not in repr(credentials)


class Recorder:
    """Stands in for run_operator / run_service and configure_logging."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def sync(self, name: str) -> Callable[..., None]:
        def record(*args: object, **kwargs: object) -> None:
            self.calls.append((name, args, kwargs))

        return record

    def coroutine(self, name: str) -> Callable[..., Awaitable[None]]:
        async def record(*args: object, **kwargs: object) -> None:
            self.calls.append((name, args, kwargs))

        return record


def test_operator_verb_runs_the_operator_with_json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr("credop.cli.serve.configure_logging", recorder.sync("logging"))
    monkeypatch.setattr("credop.controller.main.run_operator", recorder.coroutine("operator"))
    monkeypatch.setenv("CREDOP_NAMESPACE", "credop-ops")

    assert main(["operator", "--kubeconfig", "/k/config", "--endpoint", "https://credop.example.com"]) == 0

    (logging_call, operator_call) = recorder.calls
    assert logging_call == ("logging", (), {"level": "INFO", "json_format": True})
    config = operator_call[1][0]
    assert isinstance(config, Config)
    assert config.kubeconfig == Path("/k/config")
    assert config.endpoint == "https://credop.example.com"
    assert config.namespace == "credop-ops"


def fake_service_module(recorder: Recorder) -> types.ModuleType:
    """A stand-in credop.service: settings from the environment, run_workers recorded and answering 0."""
    fake = types.ModuleType("credop.service")

    class ServiceSettings:
        @classmethod
        def from_environment(cls) -> ServiceSettings:
            return cls()

    def run_workers(*args: object, **kwargs: object) -> int:
        recorder.calls.append(("service", args, kwargs))
        return 0

    fake.ServiceSettings = ServiceSettings  # type: ignore[attr-defined]
    fake.run_workers = run_workers  # type: ignore[attr-defined]
    return fake


def test_service_verb_runs_the_credential_service(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr("credop.cli.serve.configure_logging", recorder.sync("logging"))
    fake = fake_service_module(recorder)
    monkeypatch.setitem(sys.modules, "credop.service", fake)

    assert main(["service", "--port", "9090", "--host", "127.0.0.1", "--log-format", "text"]) == 0

    (logging_call, service_call) = recorder.calls
    assert logging_call[2] == {"level": "INFO", "json_format": False}
    assert isinstance(service_call[1][0], Config)
    settings = service_call[2].pop("settings")
    assert isinstance(settings, fake.ServiceSettings)  # type: ignore[attr-defined]
    assert service_call[2] == {
        "host": "127.0.0.1",
        "port": 9090,
        "workers": 1,
        "log_level": "INFO",
        "json_logs": False,
    }


def test_service_verb_passes_its_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr("credop.cli.serve.configure_logging", recorder.sync("logging"))
    monkeypatch.setitem(sys.modules, "credop.service", fake_service_module(recorder))

    assert main(["service", "--workers", "2"]) == 0

    assert recorder.calls[-1][2]["workers"] == 2


def test_service_verb_refuses_zero_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "--workers", "0"]) == 2
    assert "--workers: must be at least 1" in capsys.readouterr().err
