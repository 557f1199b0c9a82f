"""Operator metrics for Prometheus: reconciles, deadline lateness, notices, and credential state for alerts.

Credential state is read from the store when Prometheus scrapes (a custom
collector), so reconciling costs nothing extra. Per-credential series carry
``created_by``, ``policy`` and the policy's ``owner`` so Alertmanager can route
an alert to the person or team it concerns. Labels carry names and reasons,
never secret values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as CounterMetric
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from credop import names
from credop.domain.conditions import parse_timestamp

if TYPE_CHECKING:
    from credop.controller.store import ObjectRef, Store


class Watched(Protocol):
    """What the credential collector reads: the operator's store and its scheduler (the runtime)."""

    @property
    def store(self) -> Store: ...

    @property
    def scheduler(self) -> Sized: ...


NOTABLE_CONDITIONS = ("ExpiringSoon", "RotationDue", "Unused", "SecretMissing")
ROUTING_LABELS = ("created_by", "policy", "owner")
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Routing:
    """Who a credential's alerts are for: its creator and its policy (whose ``owner`` is looked up at scrape time)."""

    created_by: str = ""
    policy: str = ""


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.routing: dict[ObjectRef, Routing] = {}
        """Per credential, set by its reconcile; entries of credentials the store no longer holds are pruned."""
        self.notices = CounterMetric(
            "credop_notices_total",
            "Notice deliveries by receiver kind, notice and result (delivered, error: retried, failed: given up)",
            ["receiver_kind", "notice", "result"],
            registry=self.registry,
        )
        self.notices_queued = Gauge(
            "credop_notices_pending", "Notices waiting to be delivered (queued or retrying)", registry=self.registry
        )
        self.reconciles = CounterMetric(
            "credop_reconciles_total", "Reconciles by kind and outcome", ["kind", "outcome"], registry=self.registry
        )
        self.reconcile_seconds = Histogram(
            "credop_reconcile_duration_seconds", "Time to reconcile one credential", ["kind"], registry=self.registry
        )
        self.lateness = Histogram(
            "credop_deadline_lateness_seconds",
            "How long after its deadline a scheduled check ran",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )

        self.resyncs = CounterMetric(
            "credop_resyncs_total",
            "Periodic looks at every known credential (the lost-event safety net)",
            registry=self.registry,
        )
        self.resync_failures = CounterMetric(
            "credop_resync_failures_total",
            "Steps of the periodic resync that failed (the API server away) and wait for the next one",
            registry=self.registry,
        )

        self.keyring_missing = Gauge(
            "credop_keyring_missing",
            "1 while credop's keyring Secret is missing and credentials exist (restore it: credop keyring import)",
            registry=self.registry,
        )
        self.keyring_restores = CounterMetric(
            "credop_keyring_restores_total",
            "Times the deleted keyring Secret was written back from memory",
            registry=self.registry,
        )

    def watch(self, runtime: Watched) -> None:
        self.registry.register(CredentialCollector(runtime, self.routing))

    def note_routing(self, ref: ObjectRef, *, created_by: str | None, policy: str) -> None:
        routing = Routing(created_by or "", policy)
        if self.routing.get(ref) != routing:
            self.routing[ref] = routing


class CredentialCollector(Collector):
    """Credential phases, notable conditions, expiry times and active-client slots, from the store."""

    def __init__(self, runtime: Watched, routing: dict[ObjectRef, Routing]) -> None:
        self._runtime = runtime
        self._routing = routing

    def collect(self) -> Iterator[GaugeMetricFamily]:
        phases = GaugeMetricFamily(
            "credop_credentials", "Credentials by kind, namespace and phase", labels=["kind", "namespace", "phase"]
        )
        conditions = GaugeMetricFamily(
            "credop_credential_condition",
            "Notable conditions that are True",
            labels=["kind", "namespace", "name", "condition", *ROUTING_LABELS],
        )
        expiry = GaugeMetricFamily(
            "credop_credential_expiry_timestamp_seconds",
            "When each key expires",
            labels=["kind", "namespace", "name", *ROUTING_LABELS],
        )
        waiting = GaugeMetricFamily(
            "credop_api_clients_waiting",
            "ApiClients waiting for an active slot (ActiveLimitReached)",
            labels=["namespace"],
        )
        counts: Counter[tuple[str, str, str]] = Counter()
        queue: Counter[str] = Counter()
        summaries = dict(self._runtime.store.summaries)
        self._prune(summaries)
        for ref, summary in summaries.items():
            kind = names.KIND_OF_PLURAL.get(ref.plural, ref.plural)
            counts[(kind, ref.namespace, summary.phase)] += 1
            if summary.reason == "ActiveLimitReached":
                queue[ref.namespace] += 1
            routing = self._routing_labels(ref)
            for condition in summary.true_conditions:
                if condition in NOTABLE_CONDITIONS:
                    conditions.add_metric([kind, ref.namespace, ref.name, condition, *routing], 1)
            expires = parse_timestamp(summary.expires_at)
            if expires is not None:
                expiry.add_metric([kind, ref.namespace, ref.name, *routing], expires.timestamp())
        for labels, count in counts.items():
            phases.add_metric(list(labels), count)
        for namespace, count in queue.items():
            waiting.add_metric([namespace], count)
        scheduled = GaugeMetricFamily("credop_scheduled_deadlines", "Objects with a pending deadline in the scheduler")
        scheduled.add_metric([], len(self._runtime.scheduler))
        yield from (phases, conditions, expiry, waiting, scheduled)

    def _routing_labels(self, ref: ObjectRef) -> tuple[str, str, str]:
        routing = self._routing.get(ref) or Routing()
        policy = self._runtime.store.policies.get(ref.namespace, {}).get(routing.policy)
        return routing.created_by, routing.policy, (policy.owner or "") if policy is not None else ""

    def _prune(self, summaries: Mapping[ObjectRef, object]) -> None:
        for ref in [ref for ref in self._routing if ref not in summaries]:
            self._routing.pop(ref, None)
