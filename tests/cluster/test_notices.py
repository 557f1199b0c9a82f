"""Notices to real receivers on this machine: SMTP with STARTTLS, signed webhooks, Slack; once, across crashes.

The operator may reach 127.0.0.0/8 here only because the tests list it in its
allow-list (``CREDOP_NOTIFY_ALLOWED_NETWORKS``, the chart's
``operator.notifications.allowedNetworks``); one test checks that without it
the same receiver is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from credop.controller.notices import NotifySettings
from credop.domain.destinations import DestinationRules
from tests.cluster.helpers import (
    APIC,
    client_manifest,
    created_by,
    holds_for,
    key_manifest,
    policy_manifest,
    secret_data,
    status_of,
    wait_policy,
    wait_status,
)
from tests.cluster.kube import REPO, Cluster, wait_for
from tests.cluster.notice_receivers import HttpReceiver, SmtpReceiver
from tests.cluster.operator import OperatorThread, SessionOperator

pytestmark = pytest.mark.usefixtures("operator")
LOOPBACK = "127.0.0.0/8"
TEST_ENVIRONMENT = {"CREDOP_NOTIFY_ALLOWED_NETWORKS": LOOPBACK, "CREDOP_NOTIFY_RETRY_BASE": "0.2"}
HOOK_KEY = "hook-signing-key-for-tests-0123456789"


@pytest.fixture(autouse=True)
def loopback_allowed(operator: SessionOperator) -> Iterator[None]:
    """The session operator (and any started here) may send to 127.0.0.0/8, and retries fast."""
    saved = {name: os.environ.get(name) for name in TEST_ENVIRONMENT}
    os.environ.update(TEST_ENVIRONMENT)
    allow(operator, NotifySettings.from_environment())
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    allow(operator, NotifySettings.from_environment())


def allow(operator: SessionOperator, settings: NotifySettings) -> None:
    assert operator.runtime is not None
    operator.runtime.notifier.settings = settings


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(key=HOOK_KEY.encode()).start()
    yield receiver
    receiver.stop()


def opted_in_secret(cluster: Cluster, namespace: str, name: str, data: dict[str, str], *, label: bool = True) -> None:
    labels = {"credop.dev/notifications": "true"} if label else {}
    cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": name, "labels": labels}, "stringData": data})


def notifying_policy(namespace: str, receivers: list[dict[str, Any]], **notifications: Any) -> dict[str, Any]:
    return policy_manifest(
        namespace,
        defaultExpiry="1h",
        expiryNotifyBefore="2h",
        owner="payments",
        notifications={"receivers": receivers, **notifications},
    )


def notice_record(status: dict[str, Any], notice: str) -> dict[str, Any] | None:
    return next((r for r in status.get("notices") or [] if r["notice"] == notice), None)


def delivered_to(receiver: str, notice: str) -> Any:
    def check(status: dict[str, Any]) -> bool:
        record = notice_record(status, notice)
        return record is not None and receiver in record.get("delivered", [])

    return check


def secret_values(cluster: Cluster, namespace: str, name: str) -> list[str]:
    return [
        value for key, value in secret_data(cluster, namespace, name).items() if key in ("secretKey", "clientSecret")
    ]


def test_email_with_starttls_reaches_creator_and_admins_once(
    cluster: Cluster, namespace: str, smtp: SmtpReceiver
) -> None:
    opted_in_secret(cluster, namespace, "smtp", smtp.secret_data())
    mail = {"name": "mail", "email": {"smtpSecretRef": {"name": "smtp"}, "from": "credop@example.com"}}
    cluster.apply(
        notifying_policy(
            namespace,
            [{**mail, "notices": ["ExpiringSoon"], "to": {"addresses": ["oncall@example.com"]}}],
            admins=["security@example.com"],
            creatorAddresses={"alice": "alice@example.com"},
        )
    )
    wait_policy(cluster, namespace)
    cluster.apply(created_by(key_manifest("ci", namespace), "alice"))
    status = wait_status(cluster, namespace, "ci", delivered_to("mail", "ExpiringSoon"), timeout=60)
    record = notice_record(status, "ExpiringSoon")
    assert record is not None and record["generation"] == 1 and record.get("sentAt")
    assert len(smtp.mails) == 1
    received = smtp.mails[0]
    assert received.tls, "the mail went over STARTTLS"
    assert received.login == SmtpReceiver.USER
    assert received.sender == "credop@example.com"
    assert sorted(received.recipients) == ["alice@example.com", "oncall@example.com", "security@example.com"]
    assert received.message["Subject"] == f"[credop] ServiceAccountKey {namespace}/ci expires soon"
    assert received.message["X-Credop-Notice"] == "ExpiringSoon"
    text = received.message.get_content()
    assert status["accessKeyId"] in text and "Created by: alice" in text
    for value in secret_values(cluster, namespace, "ci"):
        assert value not in received.message.as_string()

    cluster.kubectl("patch", "sak", "ci", "-n", namespace, "--type=merge", "-p", '{"spec":{"description":"again"}}')
    wait_status(cluster, namespace, "ci", lambda s: s.get("observedGeneration") == 2)
    holds_for(lambda: len(smtp.mails) == 1, 2, what="one mail only")
    assert len(smtp.mails) == 1, "reconciled again, not sent again"


def test_signed_webhook_is_retried_until_it_answers(cluster: Cluster, namespace: str, hook: HttpReceiver) -> None:
    opted_in_secret(cluster, namespace, "hook-key", {"key": HOOK_KEY})
    hook.fail_first = 2
    receiver = {
        "name": "hook",
        "webhook": {"url": hook.url(), "signingSecretRef": {"name": "hook-key", "key": "key"}},
        "notices": ["Deactivated"],
    }
    cluster.apply(notifying_policy(namespace, [receiver]))
    wait_policy(cluster, namespace)
    cluster.apply(created_by(client_manifest("billing", namespace, active=False), "bob@example.com"))
    status = wait_status(cluster, namespace, "billing", delivered_to("hook", "Deactivated"), plural=APIC, timeout=60)
    assert hook.refused == 2, "two 503 answers, then the retry got through"
    assert len(hook.posts) == 1
    post = hook.posts[0]
    assert post.signed is True
    uid = cluster.get(APIC, namespace, "billing")["metadata"]["uid"]
    assert post.headers["X-Credop-Delivery"] == f"{uid}.Deactivated.1"
    document = json.loads(post.body)
    assert document["notice"] == "Deactivated" and document["severity"] == "info"
    assert document["credential"] == {
        "kind": "ApiClient",
        "namespace": namespace,
        "name": "billing",
        "uid": uid,
        "identifier": "billing",
        "generation": 1,
        "phase": "Inactive",
        "reason": "Deactivated",
        "createdBy": "bob@example.com",
        "policy": "default",
        "owner": "payments",
    }
    assert document["recipients"] == ["bob@example.com"]
    assert status["phase"] == "Inactive"
    for value in secret_values(cluster, namespace, "billing"):
        assert value not in post.body.decode()


def test_slack_incoming_webhook(cluster: Cluster, namespace: str, hook: HttpReceiver) -> None:
    hook.key = None
    opted_in_secret(cluster, namespace, "slack", {"url": hook.url("/services/T0/B0/x")})
    cluster.apply(
        notifying_policy(
            namespace,
            [{"name": "chat", "slack": {"urlSecretRef": {"name": "slack", "key": "url"}}, "notices": ["Expired"]}],
        )
    )
    wait_policy(cluster, namespace)
    cluster.apply(key_manifest("old", namespace, expiresIn="2s"))
    wait_status(cluster, namespace, "old", delivered_to("chat", "Expired"), timeout=60)
    assert [post.path for post in hook.posts] == ["/services/T0/B0/x"]
    document = json.loads(hook.posts[0].body)
    assert document["text"] == f":rotating_light: ServiceAccountKey {namespace}/old has expired"


def test_receivers_credop_may_not_use_are_given_up_on_and_recorded(
    cluster: Cluster, namespace: str, hook: HttpReceiver, operator: SessionOperator
) -> None:
    """An unlabelled Secret, and an internal address outside the allow-list: refused, nothing sent."""
    allow(operator, dataclasses.replace(NotifySettings.from_environment(), max_attempts=2))
    opted_in_secret(cluster, namespace, "db-password", {"key": "not-for-credop"}, label=False)
    receivers = [
        {
            "name": "unlabelled",
            "webhook": {"url": hook.url(), "signingSecretRef": {"name": "db-password", "key": "key"}},
            "notices": ["Deactivated"],
        },
        {"name": "internal", "webhook": {"url": "https://10.96.0.1/"}, "notices": ["Deactivated"]},
    ]
    cluster.apply(notifying_policy(namespace, receivers))
    wait_policy(cluster, namespace)
    cluster.apply(key_manifest("k", namespace, active=False))

    def both_failed(status: dict[str, Any]) -> bool:
        record = notice_record(status, "Deactivated")
        return record is not None and sorted(record.get("failed", [])) == ["internal", "unlabelled"]

    status = wait_status(cluster, namespace, "k", both_failed, timeout=60)
    error = (notice_record(status, "Deactivated") or {}).get("error", "")
    assert "non-public address" in error or 'Secret "db-password" is not labelled' in error
    assert hook.posts == []
    assert "not-for-credop" not in json.dumps(status)


def test_internal_receivers_are_refused_without_the_allow_list(
    cluster: Cluster, namespace: str, hook: HttpReceiver, operator: SessionOperator
) -> None:
    allow(operator, NotifySettings(rules=DestinationRules(), max_attempts=1))
    cluster.apply(notifying_policy(namespace, [{"name": "hook", "webhook": {"url": hook.url()}}]))
    wait_policy(cluster, namespace)
    cluster.apply(key_manifest("k", namespace, active=False))
    status = wait_status(
        cluster, namespace, "k", lambda s: bool((notice_record(s, "Deactivated") or {}).get("failed")), timeout=60
    )
    record = notice_record(status, "Deactivated")
    assert record is not None and "plain http to 127.0.0.1 is refused" in record["error"]
    assert hook.posts == []


def run_crashing(cluster: Cluster, mode: str) -> None:
    crashing = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.crashing_notifier", str(cluster.kubeconfig), mode],
        cwd=REPO,
        env={**os.environ, **TEST_ENVIRONMENT},
    )
    try:
        assert crashing.wait(timeout=90) == 137, f"the operator should have died ({mode})"
    finally:
        if crashing.poll() is None:
            crashing.kill()


def run_operator_until(
    cluster: Cluster,
    check: Any,
    *,
    what: str,
    then_holds: Callable[[], object] | None = None,
    linger: float = 0.0,
    holding: str = "",
) -> None:
    """A restarted operator, until ``check()``; then ``then_holds()`` must stay true for ``linger`` seconds more."""
    restarted = OperatorThread(cluster.kubeconfig).start()
    try:
        wait_for(check, timeout=60, what=what)
        if then_holds is not None:
            holds_for(then_holds, linger, what=holding)
    finally:
        restarted.stop()


def test_killed_between_due_and_sent_the_notice_goes_out_once(
    cluster: Cluster, namespace: str, hook: HttpReceiver, operator: SessionOperator
) -> None:
    hook.key = None
    with operator.paused():
        cluster.apply(
            notifying_policy(namespace, [{"name": "hook", "webhook": {"url": hook.url()}, "notices": ["Deactivated"]}])
        )
        cluster.apply(key_manifest("k", namespace, active=False))
        run_crashing(cluster, "before-send")
        assert hook.posts == [], "it died before sending"
        assert status_of(cluster, namespace, "k").get("phase") == "Inactive", "the notice was due"
        assert not status_of(cluster, namespace, "k").get("notices")

        def recorded() -> bool:
            return delivered_to("hook", "Deactivated")(status_of(cluster, namespace, "k"))

        run_operator_until(cluster, recorded, what="the notice delivered after the restart")
        assert len(hook.posts) == 1
        run_operator_until(
            cluster,
            lambda: True,
            what="another restart",
            then_holds=lambda: len(hook.posts) == 1,
            linger=3.0,
            holding="no second post after another restart",
        )
    assert len(hook.posts) == 1, "sent exactly once across two restarts"


def test_killed_after_sending_before_recording_the_retry_has_the_same_delivery_id(
    cluster: Cluster, namespace: str, hook: HttpReceiver, operator: SessionOperator
) -> None:
    """The one window no operator can close: receivers drop the duplicate by X-Credop-Delivery."""
    hook.key = None
    with operator.paused():
        cluster.apply(
            notifying_policy(namespace, [{"name": "hook", "webhook": {"url": hook.url()}, "notices": ["Deactivated"]}])
        )
        cluster.apply(key_manifest("k", namespace, active=False))
        run_crashing(cluster, "after-send")
        assert len(hook.posts) == 1
        run_operator_until(
            cluster,
            lambda: delivered_to("hook", "Deactivated")(status_of(cluster, namespace, "k")),
            what="the notice recorded after the restart",
        )
    assert len(hook.posts) == 2
    assert hook.posts[0].headers["X-Credop-Delivery"] == hook.posts[1].headers["X-Credop-Delivery"]
    assert json.loads(hook.posts[0].body)["id"] == json.loads(hook.posts[1].body)["id"]
