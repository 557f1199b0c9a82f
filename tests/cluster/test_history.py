"""The activity log on each credential's status: ordered, bounded, actor where known; kubectl describe and the CLI."""

from __future__ import annotations

import contextlib
import datetime
import io
from typing import Any

import pytest

from credop.api.notifications import HISTORY_LIMIT
from credop.cli import main
from tests.cluster.helpers import (
    APIC,
    client_manifest,
    created_by,
    deployment_manifest,
    key_manifest,
    policy_manifest,
    status_of,
    wait_policy,
    wait_status,
)
from tests.cluster.kube import Cluster, wait_for
from tests.cluster.operator import LogCapture

pytestmark = pytest.mark.usefixtures("operator")


def actions(status: dict[str, Any]) -> list[str]:
    return [entry["action"] for entry in status.get("history") or []]


def has_actions(*wanted: str) -> Any:
    return lambda status: actions(status)[-len(wanted) :] == list(wanted)


def test_a_keys_transitions_in_order_with_actors(cluster: Cluster, namespace: str, operator_logs: LogCapture) -> None:
    cluster.apply(created_by(key_manifest("ci", namespace, expiresAt="2031-01-01T00:00:00Z"), "alice"))
    wait_status(cluster, namespace, "ci", has_actions("Created"))
    cluster.kubectl("annotate", "sak", "ci", "-n", namespace, "credop.dev/rotate=r1")
    wait_status(cluster, namespace, "ci", has_actions("Created", "Rotated"))
    cluster.kubectl("annotate", "sak", "ci", "-n", namespace, "credop.dev/invalidate-tokens=t1")
    wait_status(cluster, namespace, "ci", has_actions("Rotated", "TokensInvalidated"))
    cluster.kubectl("patch", "sak", "ci", "-n", namespace, "--type=merge", "-p", '{"spec":{"active":false}}')
    wait_status(cluster, namespace, "ci", has_actions("TokensInvalidated", "Deactivated"))
    cluster.kubectl("patch", "sak", "ci", "-n", namespace, "--type=merge", "-p", '{"spec":{"active":true}}')
    wait_status(cluster, namespace, "ci", has_actions("Deactivated", "Activated"))
    later = '{"spec":{"expiresAt":"2032-01-01T00:00:00Z"}}'
    cluster.kubectl("patch", "sak", "ci", "-n", namespace, "--type=merge", "-p", later)
    status = wait_status(cluster, namespace, "ci", has_actions("Activated", "ExpiryExtended"))

    history = status["history"]
    assert actions(status) == ["Created", "Rotated", "TokensInvalidated", "Deactivated", "Activated", "ExpiryExtended"]
    assert history[0]["actor"] == "alice" and history[0]["generation"] == 1
    assert "credop.dev/rotate=r1" in history[1]["message"] and history[1]["generation"] == 2
    assert "2031-01-01T00:00:00Z" in history[5]["message"] and "2032-01-01T00:00:00Z" in history[5]["message"]
    times = [entry["time"] for entry in history]
    assert times == sorted(times)

    def audited() -> list[str]:
        lines = [
            line for line in operator_logs.lines if f"ServiceAccountKey {namespace}/ci" in line and "audit:" in line
        ]
        return [line.split("audit: ")[1].split()[0] for line in lines]

    # the audit line follows the status write that the wait above saw
    wait_for(lambda: len(audited()) >= len(actions(status)), timeout=10, what="the last audit line")
    assert audited() == actions(status), "one audit line each"

    described = cluster.kubectl("describe", "sak", "ci", "-n", namespace).stdout
    assert "History:" in described
    for action in actions(status):
        assert action in described

    printed = credop_history(cluster, namespace, "sak/ci")
    assert printed.splitlines()[0].split() == ["TIME", "ACTION", "ACTOR", "MESSAGE"]
    assert "Created" in printed and "alice" in printed and "ExpiryExtended" in printed


def credop_history(cluster: Cluster, namespace: str, target: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--kubeconfig", str(cluster.kubeconfig), "-n", namespace, "history", target]) == 0
    return out.getvalue()


def test_auto_rotation_records_the_restarted_targets(cluster: Cluster, namespace: str) -> None:
    cluster.apps.create_namespaced_deployment(namespace, deployment_manifest("app"))
    cluster.apply(policy_manifest(namespace, rotation={"period": "9s", "notifyBefore": "None", "action": "None"}))
    wait_policy(cluster, namespace)
    rotation = {"autoRotate": True, "restartTargets": [{"kind": "Deployment", "name": "app"}, {"name": "gone"}]}
    cluster.apply(key_manifest("auto", namespace, rotation=rotation))
    status = wait_status(cluster, namespace, "auto", has_actions("Rotated", "RestartedTargets"), timeout=20)
    rotated, restarted = status["history"][-2:]
    assert rotated["actor"] == "credop" and "automatically" in rotated["message"]
    assert restarted["message"] == "restarted Deployment/app; could not restart Deployment/gone"


def test_a_clients_transitions(cluster: Cluster, namespace: str) -> None:
    cluster.apply(policy_manifest(namespace, maxActiveClients=1))
    wait_policy(cluster, namespace)
    cluster.apply(client_manifest("first", namespace))
    wait_status(cluster, namespace, "first", lambda s: s.get("phase") == "Active", plural=APIC)
    cluster.apply(client_manifest("second", namespace))
    wait_status(cluster, namespace, "second", has_actions("Created", "WaitingForSlot"), plural=APIC)
    cluster.apply(client_manifest("first", namespace, active=False))
    status = wait_status(cluster, namespace, "second", has_actions("WaitingForSlot", "Activated"), plural=APIC)
    assert actions(status) == ["Created", "WaitingForSlot", "Activated"]
    cluster.apply(client_manifest("second", namespace, clientId="second-v2"))
    renamed = wait_status(cluster, namespace, "second", has_actions("Activated", "ClientIdChanged"), plural=APIC)
    assert renamed["history"][-1]["message"] == 'client ID changed from "second" to "second-v2"'
    assert actions(status_of(cluster, namespace, "first", APIC)) == ["Created", "Deactivated"]


def test_history_keeps_the_newest_entries(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("busy", namespace))
    wait_status(cluster, namespace, "busy", has_actions("Created"))
    for value in range(HISTORY_LIMIT + 2):
        cluster.kubectl(
            "annotate", "--overwrite", "sak", "busy", "-n", namespace, f"credop.dev/invalidate-tokens={value}"
        )
        wait_status(cluster, namespace, "busy", lambda s, v=value: s.get("invalidateTokensHandled") == str(v))
    status = status_of(cluster, namespace, "busy")
    assert len(status["history"]) == HISTORY_LIMIT
    assert actions(status) == ["TokensInvalidated"] * HISTORY_LIMIT
    assert f"credop.dev/invalidate-tokens={HISTORY_LIMIT + 1})" in status["history"][-1]["message"]
    instants = [datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in status["history"]]
    assert instants == sorted(instants)
