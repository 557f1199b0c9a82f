"""The admission webhooks answer through their Service: the refused examples are refused at apply with the webhook's message."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, REPO, wait_until

pytestmark = pytest.mark.e2e
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def examples_namespace(e2e: E2E) -> str:
    namespace = e2e.namespace("e2e-examples")
    e2e.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "01-keypolicy-default.yaml"))
    wait_until(lambda: e2e.condition("keypolicies", namespace, "default") == "True", what="the policy Ready")
    return namespace


@pytest.mark.parametrize(
    ("example", "message"),
    [("never-expiring-key.yaml", "spec.neverExpires"), ("weak-client-secret.yaml", "spec.clientSecretRef")],
)
def test_refused_examples_are_refused_by_the_webhook(
    e2e: E2E, examples_namespace: str, example: str, message: str
) -> None:
    refused = e2e.kubectl("apply", "-n", examples_namespace, "-f", str(EXAMPLES / "refused" / example), check=False)
    assert refused.returncode != 0, refused.stdout
    assert "admission webhook" in refused.stderr and "denied the request" in refused.stderr, refused.stderr
    assert message in refused.stderr, refused.stderr


def test_the_accepted_examples_become_active(e2e: E2E, examples_namespace: str) -> None:
    e2e.kubectl("apply", "-n", examples_namespace, "-f", str(EXAMPLES))
    wait_until(
        lambda: e2e.status("serviceaccountkeys", examples_namespace, "ci-uploader").get("phase") == "Active",
        what="ci-uploader Active",
    )
    # The mutating webhook recorded who created it: the test bed's admin.
    created = e2e.get("serviceaccountkeys", "ci-uploader", namespace=examples_namespace)
    assert created["metadata"]["annotations"]["credop.dev/created-by"] == "credop-testbed-admin"
