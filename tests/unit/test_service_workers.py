"""``--workers``: each worker's share of the limits, and the parent's merged /metrics."""

from __future__ import annotations

from credop.service._ratelimit import Allowance
from credop.service._state import ServiceSettings
from credop.service._workers import merge_expositions, worker_settings


def test_workers_together_allow_what_one_process_allows() -> None:
    settings = ServiceSettings(metrics_port=9090)
    share = worker_settings(settings, 4)
    for name in ("revocations_per_client", "client_failures", "address_failures", "chosen_secret_ceiling"):
        whole: Allowance = getattr(settings, name)
        part: Allowance = getattr(share, name)
        assert part.burst * 4 == whole.burst
        assert part.per_second * 4 == whole.per_second
    assert share.metrics_port == 0
    assert worker_settings(ServiceSettings(), 2).metrics_port is None


def test_merging_expositions_labels_every_sample_once_per_family() -> None:
    first = '# HELP up Up\n# TYPE up gauge\nup 1.0\n# HELP req Requests\n# TYPE req counter\nreq_total{kind="a"} 2.0\n'
    second = '# HELP up Up\n# TYPE up gauge\nup 0.0\n# HELP req Requests\n# TYPE req counter\nreq_total{kind="a"} 5.0\n'
    assert merge_expositions({0: first, 1: second}).splitlines() == [
        "# HELP up Up",
        "# TYPE up gauge",
        'up{worker="0"} 1.0',
        'up{worker="1"} 0.0',
        "# HELP req Requests",
        "# TYPE req counter",
        'req_total{worker="0",kind="a"} 2.0',
        'req_total{worker="1",kind="a"} 5.0',
    ]
