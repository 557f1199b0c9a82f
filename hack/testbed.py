"""A real Kubernetes control plane on 127.0.0.1 for credop's tests and local runs.

It starts etcd, kube-apiserver and kube-controller-manager built by
``hack/build-testbed`` (what controller-runtime's envtest does), with
certificates made by ``cryptography``, RBAC authorization, service-account
tokens and the garbage collector, on free loopback ports. Everything it starts
is stopped (by PID) when the context exits, and dies with this process.

With ``node=True`` it is a one-node cluster, the way kind is one: kube-scheduler,
the controllers a workload needs, and a node (``hack/node.py``: containerd,
kubelet, kube-proxy and CoreDNS in namespaces of their own) with the images of
``hack/build-images`` imported, so Deployments run real pods.

Use it as a context manager (``with ControlPlane.start() as cp: cp.kubeconfig``)
or from the shell: ``python hack/testbed.py up [--node]`` prints the kubeconfig
path and runs until interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from node import Node

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CREDOP_CACHE", REPO / ".testbed"))
BIN = CACHE / "bin"
CONTROLLERS = (
    "garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller"
)
# What workloads on a node need besides: Deployments, their pods' Services and
# PodDisruptionBudgets, the kube-root-ca.crt ConfigMap every service-account
# volume mounts, node taints from conditions, Jobs for chart hooks.
NODE_CONTROLLERS = (
    "deployment-controller,replicaset-controller,statefulset-controller,daemonset-controller,job-controller,"
    "cronjob-controller,ttl-after-finished-controller,endpoints-controller,endpointslice-controller,"
    "disruption-controller,root-ca-certificate-publisher-controller,node-lifecycle-controller,pod-garbage-collector-controller,"
    "clusterrole-aggregation-controller"
)
READY_TIMEOUT_S = 90.0


def ensure_binaries() -> Path:
    """Build the test bed's binaries and images unless the cache already holds them."""
    subprocess.run([str(REPO / "hack" / "build-testbed")], check=True)
    return BIN


def image_refs() -> dict[str, str]:
    """The images hack/build-images made: ``{"credop": ref, "base": ref, "pause": ref}``."""
    import json

    entries = json.loads((CACHE / "images" / "images.json").read_text())
    return {name: str(entry["ref"]) for name, entry in entries.items()}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent process dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Pki:
    """Certificates for one control plane: a CA, serving, admin and SA keys."""

    directory: Path

    def write(self, *, extra_ips: list[str] | None = None) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credop-testbed-ca")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self._save("ca", ca_cert, ca_key)
        sans: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips or []),
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
        ]
        self._leaf("serving", "kube-apiserver", None, sans, ca_cert, ca_key, server=True)
        self._leaf("admin", "credop-testbed-admin", "system:masters", [], ca_cert, ca_key)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.directory / "sa.key").write_bytes(_private_pem(sa_key))
        (self.directory / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def issue_client_cert(self, *, name: str, user: str, groups: list[str]) -> tuple[Path, Path]:
        """A client certificate for ``user`` in ``groups``, signed by the cluster CA."""
        ca_cert = x509.load_pem_x509_certificate((self.directory / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((self.directory / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        return self._leaf(name, user, groups, [], ca_cert, ca_key)

    def issue_serving_cert(self, *, name: str, common_name: str, ips: list[str], dns: list[str]) -> tuple[Path, Path]:
        """A serving certificate for these addresses, signed by the cluster CA (the kubelet's)."""
        ca_cert = x509.load_pem_x509_certificate((self.directory / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((self.directory / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        sans += [x509.DNSName(name) for name in dns]
        return self._leaf(name, common_name, None, sans, ca_cert, ca_key, server=True)

    def _leaf(
        self,
        name: str,
        common_name: str,
        organization: str | list[str] | None,
        sans: list[x509.GeneralName],
        ca_cert: x509.Certificate,
        ca_key: ec.EllipticCurvePrivateKey,
        *,
        server: bool = False,
    ) -> tuple[Path, Path]:
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        orgs = [organization] if isinstance(organization, str) else (organization or [])
        attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
        usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return self._save(name, builder.sign(ca_key, hashes.SHA256()), key)

    def _save(self, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
        crt, pem = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem.write_bytes(_private_pem(key))
        pem.chmod(0o600)
        return crt, pem


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_kubeconfig(path: Path, *, server: str, ca: Path, cert: Path, key: Path, user: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "credop-testbed", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": user, "context": {"cluster": "credop-testbed", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver + kube-controller-manager."""

    workdir: Path
    api_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    arguments: dict[str, list[str]] = field(default_factory=dict)
    keep_workdir: bool = False
    node: Node | None = None
    boot_seconds: float = 0.0

    @property
    def pki(self) -> Pki:
        return Pki(self.workdir / "pki")

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @classmethod
    @contextlib.contextmanager
    def start(cls, *, workdir: Path | None = None, node: bool = False) -> Iterator[ControlPlane]:
        """A control plane; with ``node=True`` a one-node cluster (images built and imported)."""
        ensure_binaries()
        owned = workdir is None
        root = Path(tempfile.mkdtemp(prefix="credop-testbed-")) if workdir is None else workdir
        plane = cls(workdir=root, api_port=free_port(), keep_workdir=not owned)
        try:
            plane._boot(node=node)
            yield plane
        finally:
            plane.stop()

    def _boot(self, *, node: bool = False) -> None:
        started = time.monotonic()
        (self.workdir / "pki").mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        if node:
            self._create_node()
        assert self.node is not None or not node
        self.pki.write(extra_ips=[self.node.network.host_ip] if self.node else [])
        pki = self.pki.directory
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca=pki / "ca.crt",
            cert=pki / "admin.crt",
            key=pki / "admin.key",
            user="admin",
        )
        if self.node:
            self.pki.issue_client_cert(
                name="apiserver-kubelet-client", user="kube-apiserver-kubelet-client", groups=["system:masters"]
            )
        etcd_url = self._start_etcd()
        self._start_apiserver(etcd_url)
        self._wait_ready()
        self._start_controller_manager()
        if self.node:
            self._start_scheduler()
            self._start_node()
        self.boot_seconds = time.monotonic() - started

    # ---- the node ---------------------------------------------------------------

    def _create_node(self) -> None:
        from node import Node, node_tools_missing

        missing = node_tools_missing()
        if missing:
            raise RuntimeError(f"the test bed's node needs {', '.join(missing)}: run hack/setup (as root)")
        self.node = Node.create(self.workdir / "node", self.workdir / "logs")

    def _start_scheduler(self) -> None:
        cert, key = self.pki.issue_client_cert(name="scheduler", user="system:kube-scheduler", groups=[])
        kubeconfig = write_kubeconfig(
            self.workdir / "scheduler.kubeconfig",
            server=self.server,
            ca=self.pki.directory / "ca.crt",
            cert=cert,
            key=key,
            user="system:kube-scheduler",
        )
        self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--v=1",
            ],
        )

    def _start_node(self) -> None:
        """The forwarder pods reach the API server through, then the node's components, then wait for Ready."""
        assert self.node is not None
        net = self.node.network
        log = (self.workdir / "logs" / "tcp-forward.log").open("ab")
        self.processes["tcp-forward"] = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "hack" / "tcp_forward.py"),
                net.host_ip,
                str(self.api_port),
                "127.0.0.1",
                str(self.api_port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            cwd=self.workdir,
        )
        images = json_load(CACHE / "images" / "images.json")
        self.apply(self.node.manifests(self.api_port))
        self.node.start(self, [Path(entry["archive"]) for entry in images.values()])
        self._wait_node_ready()
        self.node.wait_for_images()

    def _wait_node_ready(self) -> None:
        assert self.node is not None
        deadline = time.monotonic() + 120
        state = "not registered"
        while time.monotonic() < deadline:
            self.node._check_alive()
            found = self.get(f"/api/v1/nodes/{self.node.name}")
            if found is not None:
                ready = [c for c in found["status"].get("conditions", []) if c["type"] == "Ready"]
                taints = [t for t in found["spec"].get("taints", []) if t.get("effect") in ("NoSchedule", "NoExecute")]
                state = f"Ready={ready[0]['status'] if ready else 'unknown'} taints={[t['key'] for t in taints]}"
                if ready and ready[0]["status"] == "True" and not taints:
                    return
            time.sleep(0.5)
        raise TimeoutError(
            f"node {self.node.name} was not Ready within 120s: {state} (logs in {self.workdir / 'logs'})"
        )

    def get(self, path: str) -> dict[str, Any] | None:
        """GET an API path as admin; None for 404."""
        import json
        import urllib.error

        try:
            with urllib.request.urlopen(f"{self.server}{path}", context=self.ssl_context(), timeout=10) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def apply(self, objects: list[dict[str, Any]]) -> None:
        """Server-side apply objects as admin with kubectl."""
        manifest = yaml.safe_dump_all(objects)
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=credop-testbed", "-f", "-", input=manifest
        )

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """kubectl (the test bed's build) as admin."""
        result = subprocess.run(
            [str(BIN / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def helm(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """helm (the test bed's build) as admin."""
        result = subprocess.run(
            [str(BIN / "helm"), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode:
            raise RuntimeError(f"helm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def _spawn(self, name: str, args: list[str]) -> None:
        self.arguments[name] = args
        log = (self.workdir / "logs" / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [str(BIN / name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            cwd=self.workdir,
        )

    def _start_etcd(self) -> str:
        client, peer = free_port(), free_port()
        self._spawn(
            "etcd",
            [
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
                "--quota-backend-bytes=8589934592",
            ],
        )
        return f"http://127.0.0.1:{client}"

    def _start_apiserver(self, etcd_url: str) -> None:
        pki = self.pki.directory
        node_flags = []
        if self.node:
            node_flags = [
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                # Webhooks and aggregated APIs at their pods' IPs: the host has no kube-proxy.
                "--enable-aggregator-routing=true",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'serving.crt'}",
                f"--tls-private-key-file={pki / 'serving.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                *([] if self.node else ["--authorization-mode=RBAC"]),
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                "--max-requests-inflight=2000",
                "--max-mutating-requests-inflight=1000",
                "--v=1",
                *node_flags,
            ],
        )

    def _start_controller_manager(self) -> None:
        pki = self.pki.directory
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--controllers={CONTROLLERS},{NODE_CONTROLLERS}" if self.node else f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--concurrent-gc-syncs=20",
                "--v=1",
            ],
        )

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver (etcd and the controller manager keep running), for outage tests."""
        proc = self.processes["kube-apiserver"]
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again with the same arguments, port and certificates."""
        self._spawn("kube-apiserver", self.arguments["kube-apiserver"])
        self._wait_ready()

    def ssl_context(self) -> ssl.SSLContext:
        pki = self.pki.directory
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        context = self.ssl_context()
        last_error = "no answer"
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    tail = (self.workdir / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError as error:
                last_error = str(error)
            time.sleep(0.2)
        raise TimeoutError(f"kube-apiserver was not ready within {READY_TIMEOUT_S}s: {last_error}")

    def version(self) -> str:
        with urllib.request.urlopen(f"{self.server}/version", context=self.ssl_context(), timeout=5) as answer:
            return str(yaml.safe_load(answer.read())["gitVersion"])

    def stop(self) -> None:
        """Stop what was started, newest first (the node and its containers first): SIGTERM, then SIGKILL after 5 s."""
        if self.node is not None:
            self.node.stop()
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def json_load(path: Path) -> dict[str, Any]:
    import json

    return dict(json.loads(path.read_text()))


def main(argv: list[str]) -> int:
    if argv[1:2] != ["up"] or argv[2:] not in ([], ["--node"]):
        print(
            "usage: testbed.py up [--node]   # start a control plane (and a node), print its kubeconfig, run until ^C"
        )
        return 2
    with ControlPlane.start(node="--node" in argv) as plane:
        what = "one-node cluster" if plane.node else "control plane"
        print(f"{what} {plane.version()} ready in {plane.boot_seconds:.1f}s", flush=True)
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main(sys.argv))
