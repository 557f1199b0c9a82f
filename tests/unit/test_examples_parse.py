"""The examples that `kubectl apply -f examples/` does not apply still parse as credop's models say."""

from __future__ import annotations

from pathlib import Path

import yaml

from credop.api.keypolicy import KeyPolicySpec
from credop.api.notifications import NOTICE_TYPES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_notifications_example_is_a_valid_policy_whose_secrets_credop_may_read() -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "notifications" / "notify-owners.yaml").read_text()))
    secrets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Secret"}
    (policy,) = (d for d in documents if d["kind"] == "KeyPolicy")
    spec = KeyPolicySpec.model_validate(policy["spec"])
    assert spec.notifications is not None
    receivers = spec.notifications.receivers
    assert {receiver.name for receiver in receivers} == {"mail", "hooks", "chat"}
    for receiver in receivers:
        assert set(receiver.notices or NOTICE_TYPES) <= set(NOTICE_TYPES)
    for secret in secrets.values():
        assert secret["metadata"]["labels"] == {"credop.dev/notifications": "true"}
    assert set(secrets) == {"smtp", "hook-key", "slack"}
