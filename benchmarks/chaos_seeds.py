"""Reliability mode: the chaos test under several seeds, each a different workload and kill schedule.

    .venv/bin/python -m benchmarks.chaos_seeds [--seeds 20261123,1,2,3,4] [--count 1000]

Each seed runs ``tests/cluster/test_chaos.py`` on a control plane of its own
(1,000 credentials created, rotated and deleted while the operator is SIGKILLed
20 times and the API server is down 30 s); the table of outcomes and times goes
to benchmarks/results/chaos.md. CI runs the default seed only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from benchmarks.harness import REPO, RESULTS

DEFAULT_SEEDS = "20261123,1,2,3,4"


def run_seed(seed: int, count: int) -> tuple[str, float, str]:
    env = {
        **os.environ,
        "CREDOP_CHAOS_SEED": str(seed),
        "CREDOP_CHAOS_COUNT": str(count),
        "CREDOP_CHAOS_OPERATOR_LOG": str(RESULTS / f"chaos-{seed}-operator.log"),
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cluster/test_chaos.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    (RESULTS / f"chaos-{seed}.log").write_text(result.stdout + result.stderr)  # git-ignored: the whole run
    failure = next((line for line in result.stdout.splitlines() if line.startswith("E ")), "")
    return ("passed" if result.returncode == 0 else "FAILED"), elapsed, re.sub(r"\s+", " ", failure)[:200]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default=DEFAULT_SEEDS, help=f"comma-separated (default {DEFAULT_SEEDS})")
    parser.add_argument("--count", type=int, default=1000, help="credentials per run (default 1000)")
    args = parser.parse_args()
    lines = [
        "# Chaos under several seeds",
        "",
        f"{args.count} credentials per run; 20 operator kills, 30 s API server outage.",
        "",
    ]
    lines += ["| seed | outcome | seconds | first failure |", "| --- | --- | --- | --- |"]
    failed = 0
    for seed in (int(text) for text in args.seeds.split(",")):
        outcome, elapsed, failure = run_seed(seed, args.count)
        failed += outcome != "passed"
        lines.append(f"| {seed} | {outcome} | {elapsed:.0f} | {failure or '-'} |")
        print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chaos.md").write_text("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
