"""Run every benchmark and write their figures under benchmarks/results/ (summary.md, scale.md, scale.png).

    .venv/bin/python -m benchmarks.run_all [--quick] [--only NAME ...] [--with-100k]

``--quick`` runs small sizes (a smoke run: the figures are not the reported ones).
``--with-100k`` also runs the 100k-credential mode of ``benchmarks.scale``
(about an hour on two cores; not for CI); without it, the summary shows the
goals of the last 100k run saved in ``results/scale_100k.txt``, marked as such.
Each benchmark starts its own control plane unless $KUBECONFIG is set.

summary.md starts with a table of every goal: what was measured against its
floor or target in the same run, and whether it was met. Each benchmark
reports its goals on a last line ``GOALS [...]`` (JSON).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import REPO, RESULTS

FULL = {
    "token_endpoint": [],
    "token_ablation": ["--rounds", "7"],
    "hydra": [],
    "reconcile_throughput": ["--count", "1000", "--repeat", "2"],
    "scale": ["--sizes", "1000,5000,10000", "--idle", "30"],
    "write_amplification": ["--clients", "50", "--requests", "10000"],
}
QUICK = {
    "token_endpoint": ["--quick"],
    "token_ablation": ["--rounds", "1", "--seconds", "1"],
    "hydra": ["--seconds", "1", "--repeat", "1"],
    "reconcile_throughput": ["--count", "200"],
    "scale": ["--sizes", "200,400", "--idle", "5", "--resync", "10"],
    "write_amplification": ["--clients", "10", "--requests", "2000"],
}
SCALE_100K = [
    "--sizes",
    "100000",
    "--populate",
    "direct",
    "--resync",
    "60",
    "--idle",
    "60",
    "--output-name",
    "scale_100k",
]


def run(name: str, module: str, args: list[str]) -> tuple[str, float, int]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args], cwd=REPO, capture_output=True, text=True
    )
    output = result.stdout + (f"\n[exit {result.returncode}]\n{result.stderr[-3000:]}" if result.returncode else "")
    (RESULTS / f"{name}.txt").write_text(output)
    return output, time.monotonic() - started, result.returncode


def goals_of(output: str, source: str) -> list[dict[str, Any]]:
    for line in reversed(output.splitlines()):
        if line.startswith("GOALS "):
            return [{**goal, "source": source} for goal in json.loads(line[len("GOALS ") :])]
    return []


def goals_table(goals: list[dict[str, Any]]) -> str:
    lines = ["| goal | measured | target | met | benchmark |", "| --- | ---: | ---: | :---: | --- |"]
    for goal in goals:
        met = "yes" if goal["met"] else "**no**"
        if goal["target"] == "-":
            met = "(information)"
        lines.append(f"| {goal['goal']} | {goal['measured']} | {goal['target']} | {met} | {goal['source']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="benchmark names to run")
    parser.add_argument("--with-100k", action="store_true", help="also run the 100k-credential scale mode")
    args = parser.parse_args()
    plan = {name: (name, extra) for name, extra in (QUICK if args.quick else FULL).items()}
    if args.with_100k:
        plan["scale_100k"] = ("scale", SCALE_100K)
    RESULTS.mkdir(parents=True, exist_ok=True)
    header = [
        f"# credop benchmarks ({'quick smoke run' if args.quick else 'full run'})",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}, {platform.machine()}, "
        f"Python {platform.python_version()}",
    ]
    sections, goals, failed = [], [], 0
    for name, (module, extra) in plan.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name} {' '.join(extra)}", flush=True)
        output, seconds, code = run(name, module, extra)
        failed += code != 0
        print(output, flush=True)
        goals += goals_of(output, name)
        sections.append(f"## {name} ({seconds:.0f} s)\n\n```\n{output.strip()}\n```")
    saved = RESULTS / "scale_100k.txt"
    if "scale_100k" not in plan and saved.exists():
        when = datetime.datetime.fromtimestamp(saved.stat().st_mtime, datetime.UTC)
        goals += goals_of(saved.read_text(), f"scale_100k (earlier run, {when:%Y-%m-%d}; `--with-100k`)")
    summary = "\n\n".join([*header, "## Goals\n\n" + goals_table(goals), *sections]) + "\n"
    (RESULTS / "summary.md").write_text(summary)
    print(goals_table(goals))
    print(f"wrote {RESULTS / 'summary.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
