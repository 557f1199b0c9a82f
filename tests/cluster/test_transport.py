"""Transport and durability: tokens over TLS with the CA each Secret carries, and a keyring that cannot be lost."""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from credop.cli import main
from credop.domain.keyring import Keyring, decode_keyring
from credop.domain.verifiers import secret_matches
from credop.service._state import ServiceSettings
from tests.cluster.charting import private_control_plane
from tests.cluster.helpers import APIC, client_manifest, key_manifest, record_data, secret_data, status_of, wait_status
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import OPERATOR_NAMESPACE, OperatorThread, SessionOperator
from tests.cluster.service import Replica
from tests.tlsfiles import ScratchCA


def run_cli(capsys: pytest.CaptureFixture[str], kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--kubeconfig", str(kubeconfig), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_client_gets_a_token_over_tls_trusting_the_ca_its_secret_carries(
    cluster: Cluster, namespace: str, operator: SessionOperator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = ScratchCA.make("credop-service-ca")
    tls = ca.issue(tmp_path / "tls")
    with operator.paused():
        config = dataclasses.replace(operator.thread.config, service_ca_file=tls / "ca.crt")
        running = OperatorThread(cluster.kubeconfig, config=config).start()
        replica = Replica(cluster.kubeconfig, "tls", settings=ServiceSettings(tls_directory=str(tls))).start()
        try:
            cluster.apply(client_manifest("secure", namespace))
            wait_status(cluster, namespace, "secure", lambda s: s.get("phase") == "Active", plural=APIC)
            assert secret_data(cluster, namespace, "secure")["tokenCA"] == ca.pem
            assert replica.service is not None
            https = f"https://127.0.0.1:{replica.service.port}"

            def token() -> tuple[int, str, str] | None:
                answer = run_cli(
                    capsys, cluster.kubeconfig, "token", "apic/secure", "-n", namespace, "--endpoint", https
                )
                return answer if answer[0] == 0 else None

            _, out, _ = wait_for(token, what="a token over TLS, trusting the Secret's tokenCA")
            assert out.strip().count(".") == 2
            plain = run_cli(
                capsys,
                cluster.kubeconfig,
                "token",
                "apic/secure",
                "-n",
                namespace,
                "--endpoint",
                https.replace("https", "http"),
            )
            assert plain[0] != 0, "the service speaks TLS only"
            stranger = ScratchCA.make("someone-else").pem
            (tmp_path / "other.crt").write_text(stranger)
            wrong_ca = run_cli(
                capsys, cluster.kubeconfig, "token", "apic/secure", "-n", namespace, "--endpoint", https,
                "--cacert", str(tmp_path / "other.crt"),
            )  # fmt: skip
            assert wrong_ca[0] != 0 and "CERTIFICATE_VERIFY_FAILED" in wrong_ca[2]
        finally:
            replica.stop()
            running.stop()


def test_the_service_certificate_credop_keeps_is_the_ca_every_secret_carries(
    cluster: Cluster, namespace: str, operator: SessionOperator
) -> None:
    secret_name = f"svc-tls-{namespace}"
    with operator.paused():
        config = dataclasses.replace(
            operator.thread.config,
            service_tls_secret=secret_name,
            service_hosts=("credop.credop-system.svc", "127.0.0.1"),
        )
        running = OperatorThread(cluster.kubeconfig, config=config).start()
        try:
            kept = secret_data(cluster, OPERATOR_NAMESPACE, secret_name)
            assert {"ca.crt", "tls.crt", "tls.key"} <= set(kept)
            cluster.apply(client_manifest("kept-ca", namespace))
            wait_status(cluster, namespace, "kept-ca", lambda s: s.get("phase") == "Active", plural=APIC)
            assert secret_data(cluster, namespace, "kept-ca")["tokenCA"] == kept["ca.crt"]
        finally:
            running.stop()
            cluster.core.delete_namespaced_secret(secret_name, OPERATOR_NAMESPACE)


@pytest.fixture(scope="module")
def keyring_plane(crds: Cluster) -> Iterator[Cluster]:
    """A control plane of its own: these tests delete credop's keyring."""
    with private_control_plane() as plane:
        plane.kubectl("apply", "--server-side", "-f", str(Path(__file__).resolve().parents[2] / "crds"))
        plane.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=credop"
        )
        plane.kubectl("create", "namespace", OPERATOR_NAMESPACE)
        plane.kubectl("create", "namespace", "vault")
        yield plane


def keyring_of(cluster: Cluster) -> Keyring:
    return decode_keyring(cluster.core.read_namespaced_secret("credop-keys", OPERATOR_NAMESPACE).data)


def keys_secret_exists(cluster: Cluster) -> bool:
    return any(s.metadata.name == "credop-keys" for s in cluster.core.list_namespaced_secret(OPERATOR_NAMESPACE).items)


def test_a_deleted_keyring_is_written_back_and_a_lost_one_is_never_replaced(
    keyring_plane: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plane = keyring_plane
    first = OperatorThread(plane.kubeconfig).start()
    try:
        plane.apply(key_manifest("kept", "vault"))
        wait_status(plane, "vault", "kept", lambda s: s.get("phase") == "Active")
        original = keyring_of(plane)
        plane.core.delete_namespaced_secret("credop-keys", OPERATOR_NAMESPACE)
        wait_for(lambda: keys_secret_exists(plane) and keyring_of(plane) == original, what="the keyring written back")
        backup = tmp_path / "keyring.yaml"
        assert run_cli(capsys, plane.kubeconfig, "keyring", "export", "-o", str(backup))[0] == 0
        assert backup.stat().st_mode & 0o777 == 0o600
    finally:
        first.stop()

    plane.core.delete_namespaced_secret("credop-keys", OPERATOR_NAMESPACE)
    second = OperatorThread(plane.kubeconfig).start()
    try:
        plane.apply(key_manifest("new", "vault"))
        refused = wait_status(plane, "vault", "new", lambda s: s.get("reason") == "KeyringMissing")
        assert refused["phase"] == "Failed" and "credop keyring import" in refused["message"]
        assert not keys_secret_exists(plane), "no new keyring while credentials exist"
        assert status_of(plane, "vault", "kept")["phase"] == "Active", "existing credentials are left alone"
        assert second.runtime is not None
        assert second.runtime.metrics.registry.get_sample_value("credop_keyring_missing") == 1
        assert run_cli(capsys, plane.kubeconfig, "keyring", "import", str(backup))[0] == 0
        wait_status(plane, "vault", "new", lambda s: s.get("phase") == "Active", timeout=60)
        assert keyring_of(plane) == original
        secret = secret_data(plane, "vault", "kept")["secretKey"]
        verifier = record_data(plane, "vault", "kept")["verifier"]
        assert secret_matches(secret, verifier, keys=original.hmac_keys), "the old credential verifies again"
    finally:
        second.stop()


def test_the_service_speaks_tls_only_when_asked(cluster: Cluster, operator_namespace: str) -> None:
    replica = Replica(cluster.kubeconfig, "plain").start()
    try:
        assert replica.service is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{replica.service.port}/healthz", timeout=5) as answer:
            assert answer.status == 200
    finally:
        replica.stop()
