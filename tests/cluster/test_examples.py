"""Every product scenario in examples/ applied to the real control plane, with its outcome checked."""

from __future__ import annotations

import datetime
from pathlib import Path

import jwt
import pytest

from tests.cluster.helpers import APIC, KPOL, SAK, condition, phases, record_data, secret_data, status_of, wait_status
from tests.cluster.kube import REPO, Cluster, wait_for

pytestmark = pytest.mark.usefixtures("operator")
EXAMPLES = REPO / "examples"


def apply_examples(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "01-keypolicy-default.yaml"))
    wait_status(cluster, namespace, "default", lambda s: condition(s, "Ready") == "True", plural=KPOL)
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))


def test_the_accepted_examples(cluster: Cluster, namespace: str) -> None:
    apply_examples(cluster, namespace)
    status = wait_status(cluster, namespace, "ci-uploader", lambda s: s.get("phase") == "Active")
    data = secret_data(cluster, namespace, "ci-uploader")
    assert data["credentials"] == f"key:{status['accessKeyId']}::{data['secretKey']},tenant id: {namespace}"
    assert status["policy"] == "default"
    expires = datetime.datetime.fromisoformat(status["expiresAt"].replace("Z", "+00:00"))
    assert datetime.timedelta(days=89) < expires - datetime.datetime.now(datetime.UTC) <= datetime.timedelta(days=90)

    wait_status(cluster, namespace, "log-shipper", lambda s: s.get("phase") == "Active")
    assert secret_data(cluster, namespace, "log-shipper-ingestion-key")["accessKeyId"]

    jwt_status = wait_status(cluster, namespace, "reporting-dashboard", lambda s: s.get("phase") == "Active")
    claims = jwt.decode(
        secret_data(cluster, namespace, "reporting-dashboard")["secretKey"], options={"verify_signature": False}
    )
    assert {role["name"] for role in claims["roles"]} == {"GlobalViewer", "CloudAccountViewer"}
    lifetime = datetime.datetime.fromisoformat(jwt_status["expiresAt"].replace("Z", "+00:00")) - datetime.datetime.now(
        datetime.UTC
    )
    assert datetime.timedelta(days=179) < lifetime <= datetime.timedelta(days=180)

    wait_for(
        lambda: sorted(str(p) for p in phases(cluster, namespace).values()) == ["Active"] * 5 + ["Inactive"] * 2,
        what="5 Active",
    )
    # one of the six waits: the one minted last (usually sixth-client; mints finish in any order)
    reasons = [status_of(cluster, namespace, name, APIC).get("reason") for name in phases(cluster, namespace)]
    assert reasons.count("ActiveLimitReached") == 1 and reasons.count("Active") == 5
    portal = status_of(cluster, namespace, "partner-portal", APIC)
    assert portal["reason"] == "Deactivated"
    assert portal["clientId"] == "partner-portal-prod"
    assert record_data(cluster, namespace, "partner-portal", APIC)["verifier"].startswith("$argon2id$")

    payments = wait_status(cluster, namespace, "payments-api", lambda s: s.get("phase") == "Active")
    assert payments["rotationDueAt"]
    listed = cluster.kubectl("get", "credentials", "-n", namespace, "-o", "name").stdout.split()
    assert len(listed) == 1 + 4 + 7, listed


@pytest.mark.parametrize(
    ("example", "message"),
    [
        ("cloud-account-viewer-without-accounts.yaml", "spec.roles[0].scope"),
        ("client-id-too-long.yaml", "spec.clientId"),
    ],
)
def test_examples_refused_at_apply(cluster: Cluster, namespace: str, example: str, message: str) -> None:
    refused = cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "refused" / example), check=False)
    assert refused.returncode != 0
    assert message in refused.stderr


@pytest.mark.parametrize(
    ("example", "plural", "name", "message"),
    [
        ("never-expiring-key.yaml", SAK, "forever", "spec.neverExpires"),
        ("weak-client-secret.yaml", APIC, "weak-client", "spec.clientSecretRef"),
    ],
)
def test_examples_refused_by_policy_even_without_the_webhook(
    cluster: Cluster, namespace: str, example: str, plural: str, name: str, message: str
) -> None:
    applied = cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "refused" / example), check=False)
    if applied.returncode != 0:
        assert message in applied.stderr
        return
    status = wait_status(cluster, namespace, name, lambda s: s.get("phase") == "Failed", plural=plural)
    assert message in status["message"]


def test_every_example_is_covered() -> None:
    covered = {
        "01-keypolicy-default.yaml",
        "02-access-key.yaml",
        "03-ingestion-api-key.yaml",
        "04-jwt-access-key.yaml",
        "05-api-clients.yaml",
        "06-api-client-own-secret.yaml",
        "07-rotation-with-grace.yaml",
    }
    assert {p.name for p in EXAMPLES.glob("*.yaml")} == covered
    assert len(list(Path(EXAMPLES / "refused").glob("*.yaml"))) == 4
