"""Run every benchmark and write their figures under benchmarks/results/ (summary.md, scale.md, scale.png).

    .venv/bin/python -m benchmarks.run_all [--quick]

``--quick`` runs small sizes (a smoke run: the figures are not the reported ones).
Each benchmark starts its own control plane unless $KUBECONFIG is set.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time

from benchmarks.harness import REPO, RESULTS

FULL = {
    "reconcile_throughput": ["--count", "1000"],
    "scale": ["--sizes", "1000,5000,10000", "--idle", "30"],
    "write_amplification": ["--clients", "50", "--requests", "10000"],
    "token_endpoint": [],
}
QUICK = {
    "reconcile_throughput": ["--count", "200"],
    "scale": ["--sizes", "200,400", "--idle", "5"],
    "write_amplification": ["--clients", "10", "--requests", "2000"],
    "token_endpoint": ["--quick"],
}


def run(name: str, args: list[str]) -> tuple[str, float, int]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args], cwd=REPO, capture_output=True, text=True
    )
    output = result.stdout + (f"\n[exit {result.returncode}]\n{result.stderr[-3000:]}" if result.returncode else "")
    (RESULTS / f"{name}.txt").write_text(output)
    return output, time.monotonic() - started, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="benchmark names to run")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    RESULTS.mkdir(parents=True, exist_ok=True)
    sections = [
        f"# credop benchmarks ({'quick smoke run' if args.quick else 'full run'})",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}, {platform.machine()}, Python {platform.python_version()}",
    ]
    failed = 0
    for name, extra in plan.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name} {' '.join(extra)}", flush=True)
        output, seconds, code = run(name, extra)
        failed += code != 0
        print(output, flush=True)
        sections.append(f"## {name} ({seconds:.0f} s)\n\n```\n{output.strip()}\n```")
    (RESULTS / "summary.md").write_text("\n\n".join(sections) + "\n")
    print(f"wrote {RESULTS / 'summary.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
