"""Render the plain manifests in ``deploy/`` from the Helm chart, for ``kubectl apply -f deploy/``.

``deploy/credop.yaml`` is the namespace, the CRDs and the chart with the
webhook certificate kept by the operator (no cert-manager, no secret in git);
``deploy/monitoring/credop.yaml`` holds the ServiceMonitors and PrometheusRule
for clusters that run the Prometheus Operator (a subdirectory, so that
``kubectl apply -f deploy/`` leaves it out). ``--check`` fails when they drift
from the chart, like ``python -m credop.api.crdgen --check``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
HELM = REPO / ".testbed" / "bin" / "helm"
RELEASE = "credop"
NAMESPACE = "credop-system"
PLAIN_VALUES = ("--set", "webhook.certificate.source=operator", "--set", "service.tls.source=operator")
MONITORING_APIS = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
MONITORING_GROUP = "monitoring.coreos.com/"
HEADER = "# Generated from charts/credop by hack/render-manifests: do not edit.\n"


def helm_template(root: Path, *extra: str, helm: Path = HELM) -> str:
    command = [str(helm), "template", RELEASE, str(root / "charts" / "credop"), "--namespace", NAMESPACE]
    return subprocess.run([*command, *PLAIN_VALUES, *extra], check=True, capture_output=True, text=True).stdout


def namespace_manifest() -> str:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    return "---\n" + yaml.safe_dump(body, sort_keys=False)


def targets(root: Path = REPO) -> dict[Path, str]:
    """Each file of ``deploy/`` under ``root`` and the text it should hold."""
    core = helm_template(root, "--include-crds")
    monitored = helm_template(root, *(f"--api-versions={api}" for api in MONITORING_APIS))
    monitoring = [doc for doc in monitored.split("\n---\n") if f"apiVersion: {MONITORING_GROUP}" in doc]
    return {
        root / "deploy" / "credop.yaml": HEADER + namespace_manifest() + core,
        root / "deploy" / "monitoring" / "credop.yaml": HEADER + "".join(f"---\n{doc.strip()}\n" for doc in monitoring),
    }


def drifted(root: Path = REPO) -> list[Path]:
    """The files of ``deploy/`` that differ from what the chart renders."""
    return [path for path, text in targets(root).items() if not path.exists() or path.read_text() != text]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when deploy/ differs from the chart")
    args = parser.parse_args(argv)
    if args.check:
        stale = drifted()
        for path in stale:
            print(f"{path.relative_to(REPO)} differs from the chart: run hack/render-manifests", file=sys.stderr)
        return 1 if stale else 0
    for path, text in targets().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
