"""Two operator replicas: killing the leader's pod, the standby takes over; the webhooks (every replica's) keep answering.

The gap is measured as a GitOps tool would see it: a server-side dry-run apply
of a credential (which the webhooks must admit) every 0.2 s while the leader is
killed; the longest run of refused applies is the gap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
import yaml

from tests.e2e.conftest import E2E, RELEASE, REPO, SYSTEM_NAMESPACE, wait_until

pytestmark = pytest.mark.e2e


@dataclass
class ApplyProbe:
    """Dry-run applies in a loop; records (instant, admitted, first line of the refusal)."""

    e2e: E2E
    namespace: str
    results: list[tuple[float, bool, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        manifest = yaml.safe_dump(
            {
                "apiVersion": "credop.dev/v1alpha1",
                "kind": "ServiceAccountKey",
                "metadata": {"name": "probe", "namespace": self.namespace},
                "spec": {"serviceAccount": "probe"},
            }
        )
        while not self.stop.is_set():
            started = time.monotonic()
            answer = self.e2e.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False, timeout=30)
            refusal = answer.stderr.strip().splitlines()[0] if answer.returncode else ""
            self.results.append((started, answer.returncode == 0, refusal))
            self.stop.wait(max(0.0, 0.2 - (time.monotonic() - started)))

    def longest_gap(self) -> tuple[float, int, str]:
        """(seconds from the first refused apply of the longest run to the next admitted one, refusals, a refusal)."""
        longest, count, example, run_start, run_count = 0.0, 0, "", None, 0
        for instant, admitted, refusal in self.results:
            if not admitted:
                count += 1
                example = example or refusal
                if run_start is None:
                    run_start, run_count = instant, 0
                run_count += 1
            elif run_start is not None:
                longest = max(longest, instant - run_start)
                run_start = None
        return longest, count, example


def leader_pod(e2e: E2E) -> str:
    lease = e2e.get("lease", "credop-operator", namespace=SYSTEM_NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "").rsplit("-", 1)[0]


def test_killing_the_leader_pod_the_standby_takes_over(e2e: E2E) -> None:
    started = time.monotonic()
    # Two replicas (the chart's default today), every one Ready: each serves the webhooks.
    e2e.helm(
        "upgrade", RELEASE, str(REPO / "charts" / "credop"), "--namespace", SYSTEM_NAMESPACE, "--reuse-values",
        "--set=operator.replicas=2", "--wait", "--timeout=5m",
    )  # fmt: skip
    operators = wait_until(
        lambda: len(ready := [p for p in e2e.credop_pods("operator") if e2e.ready(p)]) == 2 and ready,
        timeout=120,
        what="two Ready operator pods",
    )
    names = {p["metadata"]["name"] for p in operators}
    old_leader = wait_until(lambda: (name := leader_pod(e2e)) in names and name, timeout=60, what="a leader among them")
    e2e.timings["helm upgrade to 2 operator replicas"] = time.monotonic() - started

    namespace = e2e.namespace("e2e-failover")
    probe = ApplyProbe(e2e, namespace)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: any(ok for _, ok, _ in probe.results), timeout=30, what="a first admitted apply")
        killed = time.monotonic()
        e2e.kubectl("delete", "pod", old_leader, "-n", SYSTEM_NAMESPACE, "--grace-period=0", "--force", "--wait=false")
        new_leader = wait_until(
            lambda: (name := leader_pod(e2e)) not in ("", old_leader) and name,
            timeout=60,
            interval=0.2,
            what="a new leader",
        )
        took_over = time.monotonic() - killed
        wait_until(
            lambda: probe.results and probe.results[-1][1] and probe.results[-1][0] > killed + took_over,
            timeout=60,
            what="the webhooks admitting again",
        )
        time.sleep(2)  # keep probing after the recovery: a second outage would count in the longest gap
    finally:
        probe.stop.set()
        thread.join(timeout=30)
    gap, refused, example = probe.longest_gap()
    total = sum(1 for instant, _, _ in probe.results if instant >= killed)
    e2e.timings["leader takeover"] = took_over
    e2e.timings["webhook gap on leader kill"] = gap
    print(
        f"leader {old_leader} killed: {new_leader} leads after {took_over:.1f}s; "
        f"{refused} of {total} applies refused, longest gap {gap:.1f}s ({example or 'none refused'})"
    )
    assert new_leader in {p["metadata"]["name"] for p in e2e.credop_pods("operator")}
    # A killed replica stays an endpoint until its pod object is gone: a moment, not a lease period.
    assert gap < 10, f"the webhooks were unavailable for {gap:.1f}s"
