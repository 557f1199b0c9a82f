"""``hack/run``: credop running, with the examples applied and a status table printed.

Without $KUBECONFIG: the test bed's one-node cluster is started (kube-apiserver,
scheduler, controllers, and a node with containerd, kubelet, kube-proxy and
CoreDNS), credop's image is built from the Dockerfile and loaded into it, and
the Helm chart is installed, the way ``kind create cluster && helm install``
would; the examples go into ``credop-examples`` (the refused ones are shown
with the webhook's answer). Ctrl-C stops everything.

With ``--in-process`` (or $KUBECONFIG set): the operator and the credential
service run in this process, against that cluster or a control plane without a
node (CRDs applied with server-side apply): faster to iterate on, but without
the webhooks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hack"))
EXAMPLES_NAMESPACE = "credop-examples"


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    candidates = [REPO / ".venv" / "bin" / "kubectl", REPO / ".testbed" / "bin" / "kubectl"]
    binary = next((str(path) for path in candidates if path.exists()), "kubectl")
    command = [binary, f"--kubeconfig={kubeconfig}", *args]
    return subprocess.run(command, capture_output=True, text=True, check=check)


def install(kubeconfig: str, namespace: str) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    for name in (namespace, EXAMPLES_NAMESPACE):
        kubectl(kubeconfig, "create", "namespace", name, check=False)


def apply_examples(kubeconfig: str, *, webhooks: bool = False) -> None:
    """The policy first (so every credential sees it), then the rest; then the refused ones, with the answer.

    With ``webhooks`` (the chart installed) the refused examples are applied for real, so the
    webhook sees the Secrets they bring, and what the API server did accept of them is deleted
    again; without, a server-side dry run shows what the API server's schema refuses.
    """
    kubectl(kubeconfig, "apply", "-n", EXAMPLES_NAMESPACE, "-f", str(REPO / "examples" / "01-keypolicy-default.yaml"))
    time.sleep(1)
    print(kubectl(kubeconfig, "apply", "-n", EXAMPLES_NAMESPACE, "-f", str(REPO / "examples")).stdout, flush=True)
    for refused in sorted((REPO / "examples" / "refused").glob("*.yaml")):
        dry_run = [] if webhooks else ["--dry-run=server"]
        result = kubectl(kubeconfig, "apply", *dry_run, "-n", EXAMPLES_NAMESPACE, "-f", str(refused), check=False)
        if webhooks:
            kubectl(
                kubeconfig, "delete", "--ignore-not-found", "-n", EXAMPLES_NAMESPACE, "-f", str(refused), check=False
            )
        answer = " ".join(line.strip() for line in result.stderr.strip().splitlines() if line.strip())
        verdict = (
            f"refused: {answer}"
            if result.returncode
            else "accepted by the API server (the webhook or controller refuses it)"
        )
        print(f"refused/{refused.name}: {verdict}", flush=True)


def print_status(kubeconfig: str) -> None:
    time.sleep(8)
    table = kubectl(kubeconfig, "get", "credentials", "-n", EXAMPLES_NAMESPACE, check=False)
    print(f"\n$ kubectl get credentials -n {EXAMPLES_NAMESPACE}\n{table.stdout}{table.stderr}", flush=True)


async def serve(kubeconfig: str, namespace: str, port: int, stop: threading.Event, ready: threading.Event) -> None:
    from credop.config import Config
    from credop.controller.main import run_operator

    config = Config(
        namespace=namespace, endpoint=f"http://127.0.0.1:{port}", kubeconfig=Path(kubeconfig), leader_election=False
    )
    operator = asyncio.create_task(run_operator(config, stop_flag=stop, ready_flag=ready))
    # kopf takes SIGINT/SIGTERM for itself: when it stops, the service stops too.
    operator.add_done_callback(lambda _: stop.set())
    tasks = [operator]
    try:
        from credop.service import run_service
    except ImportError:
        print("(the credential service is not available in this build)", flush=True)
    else:
        tasks.append(asyncio.create_task(run_service(config, host="127.0.0.1", port=port, stop_flag=stop)))
    await asyncio.gather(*tasks)


def run(kubeconfig: str, *, namespace: str, port: int) -> None:
    from credop.logs import configure_logging

    # Readable lines on a terminal; JSON (what log pipelines want) when the output goes elsewhere.
    configure_logging(level=os.environ.get("CREDOP_LOG_LEVEL", "INFO"), json_format=not sys.stderr.isatty())
    install(kubeconfig, namespace)
    stop, ready = threading.Event(), threading.Event()

    def after_start() -> None:
        if ready.wait(120):
            apply_examples(kubeconfig)
            print_status(kubeconfig)
            print(f"credential service: http://127.0.0.1:{port}  (Ctrl-C stops)", flush=True)
            print(f"export KUBECONFIG={kubeconfig}", flush=True)

    threading.Thread(target=after_start, daemon=True).start()
    try:
        asyncio.run(serve(kubeconfig, namespace, port, stop, ready))
    except KeyboardInterrupt:
        stop.set()


def run_on_node(namespace: str) -> None:
    """The one-node cluster, the chart installed with the image built here, the examples applied; until Ctrl-C."""
    from testbed import ControlPlane, image_refs

    started = time.monotonic()
    print(
        "starting the one-node cluster (etcd, kube-apiserver, controllers, scheduler; node: containerd, kubelet, kube-proxy, CoreDNS) ...",
        flush=True,
    )
    with ControlPlane.start(node=True) as plane:
        assert plane.node is not None
        print(
            f"cluster {plane.version()} ready in {plane.boot_seconds:.1f}s (node {plane.node.name}, pods {plane.node.network.pod_cidr})",
            flush=True,
        )
        repository, tag = image_refs()["credop"].rsplit(":", 1)
        print(f"helm install credop charts/credop -n {namespace} (image {repository}:{tag}) ...", flush=True)
        installing = time.monotonic()
        plane.helm(
            "install", "credop", str(REPO / "charts" / "credop"), "--namespace", namespace, "--create-namespace",
            f"--set=image.repository={repository}", f"--set=image.tag={tag}", "--set=image.pullPolicy=Never",
            "--wait", "--timeout=5m",
        )  # fmt: skip
        print(f"installed in {time.monotonic() - installing:.1f}s", flush=True)
        print(plane.kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout, flush=True)
        kubeconfig = str(plane.kubeconfig)
        kubectl(kubeconfig, "create", "namespace", EXAMPLES_NAMESPACE, check=False)
        apply_examples(kubeconfig, webhooks=True)
        print_status(kubeconfig)
        print(
            f"everything up in {time.monotonic() - started:.0f}s; credential service: https://credop.{namespace}.svc (in the cluster; clients trust tokenCA from their Secret)",
            flush=True,
        )
        print(f"export KUBECONFIG={kubeconfig}", flush=True)
        print("Ctrl-C stops the cluster.", flush=True)
        signal.pause()


def _stop_quietly(signum: int, frame: object) -> None:
    """The first Ctrl-C (or SIGTERM) unwinds; later ones are ignored while everything stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("\nstopping ...", flush=True)
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--namespace", default="credop-system", help="credop's own namespace")
    parser.add_argument("--port", type=int, default=8080, help="credential service port on 127.0.0.1 (--in-process)")
    parser.add_argument(
        "--in-process", action="store_true", help="run the operator and the service in this process (no node, no image)"
    )
    args = parser.parse_args()
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig:
        run(kubeconfig, namespace=args.namespace, port=args.port)
        return 0
    if not args.in_process:
        signal.signal(signal.SIGINT, _stop_quietly)
        signal.signal(signal.SIGTERM, _stop_quietly)
        with contextlib.suppress(KeyboardInterrupt):
            run_on_node(args.namespace)
        return 0
    from testbed import ControlPlane

    with ControlPlane.start() as plane:
        print(f"local control plane {plane.version()} ready in {plane.boot_seconds:.1f}s", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            run(str(plane.kubeconfig), namespace=args.namespace, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
