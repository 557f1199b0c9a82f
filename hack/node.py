"""The test bed's node: containerd, kubelet, kube-proxy and CoreDNS in namespaces of their own.

What kind does with a container, done with ``unshare``: one process (the node's
init, PID 1 of a new PID namespace) holds a network, mount, UTS and PID
namespace, and every node component is started inside them with ``nsenter``.
So the node has its own iptables (kube-proxy's rules never touch the host's or
another test bed's), its own ``/run/containerd``, ``/var/lib/cni`` and
``/var/log/containers`` (tmpfs mounts only it sees), and its own containers:
killing the init by PID ends every process of the node, containers included,
and the kernel then drops its mounts and network namespace.

Network (one /24 of pods and one /30 link per test bed, chosen under a lock so
that no two test beds and no host route overlap)::

    host netns                           node netns
    10.245.N.1 credop-tbN  <--veth-->  eth0 10.245.N.2 (node IP, CoreDNS :53)
      route 10.244.N.0/24 via .2         cni0 10.244.N.1 (bridge) -- pods 10.244.N.x
      tcp_forward :API port -> 127.0.0.1 (kube-apiserver)

The node netns has no default route, IPv6 off, and drops every packet that
would leave it for anything but the host's end of the link (mangle
POSTROUTING), so nothing a pod sends can leave the machine. Pods reach the API
server through the ``kubernetes`` Service (10.0.0.1:443, an EndpointSlice to
the forwarder); the API server reaches the kubelet at the node IP and webhooks
at pod IPs (``--enable-aggregator-routing``).

Pods' cgroups go under ``<this process's memory cgroup>/credop-testbed-N``
(cgroup v1, cgroupfs driver), so their memory counts where the test bed's does.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed import ControlPlane

NODE_NAME = "credop-node"
CLUSTER_DOMAIN = "cluster.local"
SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
NETWORK_LOCK = Path("/tmp/credop-testbed-network.lock")  # noqa: S108 - shared by every test bed on the machine
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
CNI_PLUGIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
# Host directories the node's components use whatever their configuration says:
# the node mounts a tmpfs of its own over each.
PRIVATE_DIRS = ("/run/containerd", "/var/lib/cni", "/var/log/containers")
NODE_READY_TIMEOUT_S = 120.0

_INIT = """
import os, signal, time
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.5)
"""


@dataclass(frozen=True)
class NodeNetwork:
    """The addresses of one test bed's node (index N in 0..255)."""

    index: int

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def link_cidr(self) -> str:
        return f"10.245.{self.index}.0/30"

    @property
    def host_ip(self) -> str:
        """The host's end of the link: where the API server's forwarder listens."""
        return f"10.245.{self.index}.1"

    @property
    def node_ip(self) -> str:
        """The node's address: kubelet, CoreDNS (the pods' nameserver)."""
        return f"10.245.{self.index}.2"

    @property
    def host_link(self) -> str:
        return f"credop-tb{self.index}"


def _ip_json(*args: str) -> list[dict[str, Any]]:
    answer = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return list(json.loads(answer or "[]"))


def _networks_in_use() -> tuple[list[ipaddress.IPv4Network], set[str]]:
    networks: list[ipaddress.IPv4Network] = []
    for route in _ip_json("-4", "route", "show", "table", "all"):
        dst = str(route.get("dst", ""))
        if dst and dst != "default" and not dst.startswith(("ff", "fe80")):
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    for link in _ip_json("-4", "addr"):
        for info in link.get("addr_info", []):
            networks.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    names = {str(link["ifname"]) for link in _ip_json("link")}
    return networks, names


def _free_network() -> NodeNetwork:
    used, names = _networks_in_use()
    for index in range(256):
        candidate = NodeNetwork(index)
        wanted = [ipaddress.IPv4Network(candidate.pod_cidr), ipaddress.IPv4Network(candidate.link_cidr)]
        if candidate.host_link in names:
            continue
        if not any(a.overlaps(b) for a in wanted for b in used):
            return candidate
    raise RuntimeError("no free 10.244.N.0/24 + 10.245.N.0/30 pair for a test bed node")


def _cgroup_mounts() -> list[tuple[Path, str]]:
    """(mount point, type) of every cgroup hierarchy on this machine."""
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, point, fstype, *_ = line.split()
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((Path(point), fstype))
    return mounts


def _own_memory_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    return "/"


def _die_with_parent() -> None:
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, indent=2) + "\n")
    return path


@dataclass
class Node:
    """One running node (see the module docstring); made by :meth:`create`, ended by :meth:`stop`."""

    workdir: Path
    logdir: Path
    network: NodeNetwork
    init: subprocess.Popen[bytes]
    pid: int
    cgroup_root: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _imports: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    name: str = NODE_NAME
    boot_seconds: float = 0.0

    # ---- namespaces and network ------------------------------------------------

    @classmethod
    def create(cls, workdir: Path, logdir: Path) -> Node:
        """The node's namespaces, its veth link and the host route to its pods (no component runs yet)."""
        workdir.mkdir(parents=True, exist_ok=True)
        logdir.mkdir(parents=True, exist_ok=True)
        init = subprocess.Popen(
            [
                "unshare",
                "--fork",
                "--kill-child=SIGKILL",
                "--pid",
                "--mount-proc",
                "--net",
                "--uts",
                "--propagation=private",
                "--",
                sys.executable,
                "-c",
                _INIT,
            ],
            stdin=subprocess.DEVNULL,
            stdout=(logdir / "node-init.log").open("ab"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        pid = _child_pid(init)
        node: Node | None = None
        try:
            with _network_lock():
                network = _free_network()
                node = cls(
                    workdir=workdir,
                    logdir=logdir,
                    network=network,
                    init=init,
                    pid=pid,
                    cgroup_root=f"{_own_memory_cgroup().rstrip('/')}/credop-testbed-{network.index}",
                )
                node._link()
            node._configure_namespaces()
        except BaseException:
            if node is not None:
                node.stop()
            else:
                init.kill()
                init.wait()
            raise
        return node

    def _link(self) -> None:
        """The veth pair (the node's end is its eth0) and the host's route to the node's pods."""
        net = self.network
        _run(*f"ip link add {net.host_link} type veth peer name eth0 netns /proc/{self.pid}/ns/net".split())
        _run(*f"ip addr add {net.host_ip}/30 dev {net.host_link}".split())
        _run(*f"ip link set {net.host_link} up".split())
        _run(*f"ip route add {net.pod_cidr} via {net.node_ip} dev {net.host_link}".split())

    def nsenter(self, *, pid_namespace: bool = True) -> list[str]:
        """The command prefix that runs a program inside the node."""
        spaces = ["--mount", "--net", "--uts"] + (["--pid"] if pid_namespace else [])
        return ["nsenter", f"--target={self.pid}", *spaces, "--"]

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node (its mounts, network and hostname) and wait for it."""
        return subprocess.run([*self.nsenter(), *args], capture_output=True, text=True, check=check, timeout=timeout)

    def _configure_namespaces(self) -> None:
        net = self.network
        mounts = " ".join(PRIVATE_DIRS)
        script = f"""
set -eu
hostname {NODE_NAME}
ip link set lo up
ip addr add {net.node_ip}/30 dev eth0
ip link set eth0 up
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6
if [ -w /proc/sys/net/bridge/bridge-nf-call-iptables ]; then echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables; fi
# Nothing leaves the node but for the host's end of the link.
iptables -w -t mangle -A POSTROUTING -o eth0 ! -d {net.host_ip}/32 -j DROP
for dir in {mounts}; do mkdir -p "$dir"; mount -t tmpfs -o mode=0755 tmpfs "$dir"; done
"""
        result = self.run("sh", "-c", script, check=False)
        if result.returncode:
            raise RuntimeError(f"configuring the node's namespaces failed: {result.stderr.strip()}")

    # ---- cgroups ------------------------------------------------------------

    def _make_cgroup_root(self) -> None:
        for point, fstype in _cgroup_mounts():
            if fstype != "cgroup":
                continue
            path = point / self.cgroup_root.lstrip("/")
            _remove_cgroup_tree(path)
            created = []
            probe = path
            while not probe.exists():
                created.append(probe)
                probe = probe.parent
            for directory in reversed(created):
                directory.mkdir()
                for name in ("cpuset.cpus", "cpuset.mems"):
                    own = directory / name
                    if own.exists() and not own.read_text().strip():
                        own.write_text((directory.parent / name).read_text())

    def _remove_cgroups(self) -> None:
        deadline = time.monotonic() + 15
        for point, _ in _cgroup_mounts():
            path = point / self.cgroup_root.lstrip("/")
            while path.exists() and not _remove_cgroup_tree(path) and time.monotonic() < deadline:
                time.sleep(0.2)

    # ---- components ------------------------------------------------------------

    def start(self, plane: ControlPlane, images: list[Path]) -> None:
        """Configure and start containerd, import the images (in the background: see :meth:`wait_for_images`),
        and start kubelet, kube-proxy and CoreDNS."""
        from testbed import BIN

        started = time.monotonic()
        self._make_cgroup_root()
        configs = self._write_configs(plane)
        self._spawn("containerd", ["containerd", f"--config={configs['containerd']}"])
        self._wait_for_containerd()
        for archive in images:
            self._imports[archive.name] = subprocess.Popen(
                self._ctr_command("images", "import", str(archive)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self._spawn(
            "kubelet",
            [
                str(BIN / "kubelet"),
                f"--config={configs['kubelet']}",
                f"--kubeconfig={configs['kubelet-kubeconfig']}",
                f"--root-dir={self.workdir / 'kubelet'}",
                f"--cert-dir={self.workdir / 'kubelet' / 'pki'}",
                f"--node-ip={self.network.node_ip}",
                f"--hostname-override={self.name}",
                "--v=1",
            ],
        )
        self._spawn("kube-proxy", [str(BIN / "kube-proxy"), f"--config={configs['kube-proxy']}", "--v=1"])
        self._spawn("coredns", [str(BIN / "coredns"), "-conf", str(configs["coredns"]), "-dns.port", "53"])
        self.boot_seconds = time.monotonic() - started

    def wait_for_images(self, timeout: float = 600) -> None:
        """Wait for the image imports :meth:`start` began; fail with ctr's words if one failed."""
        deadline = time.monotonic() + timeout
        for name, proc in self._imports.items():
            try:
                output, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                raise TimeoutError(f"importing {name} into the node's containerd took over {timeout}s") from None
            if proc.returncode:
                raise RuntimeError(
                    f"importing {name} into the node's containerd failed: {output.decode(errors='replace')}"
                )
        self._imports.clear()

    @property
    def containerd_socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    def _ctr_command(self, *args: str) -> list[str]:
        return ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args]

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``ctr`` against the node's containerd, in its ``k8s.io`` namespace (the one the kubelet uses)."""
        return subprocess.run(self._ctr_command(*args), capture_output=True, text=True, check=True, timeout=timeout)

    def _wait_for_containerd(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._check_alive()
            if self.containerd_socket.exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    self.ctr("version", timeout=10)
                    return
            time.sleep(0.2)
        raise TimeoutError(f"containerd did not answer on {self.containerd_socket}")

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.logdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [*self.nsenter(), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            cwd=self.workdir,
        )

    def _check_alive(self) -> None:
        if self.init.poll() is not None:
            raise RuntimeError(f"the node's namespaces ended (unshare exited {self.init.returncode})")
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                tail = (self.logdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def component_pid(self, name: str) -> int:
        """The host PID of a node component (``nsenter`` forks it as its only child)."""
        return _child_pid(self.processes[name])

    def _write_configs(self, plane: ControlPlane) -> dict[str, Path]:
        net, wd = self.network, self.workdir
        pki = plane.pki
        ca = pki.directory / "ca.crt"
        server = f"https://{net.host_ip}:{plane.api_port}"
        for sub in ("containerd", "cni/bin", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "coredns"):
            (wd / sub).mkdir(parents=True, exist_ok=True)
        for plugin in CNI_PLUGINS:
            source = next((d / plugin for d in CNI_PLUGIN_DIRS if (d / plugin).exists()), None)
            if source is None:
                raise FileNotFoundError(f"CNI plugin {plugin} not found in {CNI_PLUGIN_DIRS} (hack/setup installs it)")
            link = wd / "cni" / "bin" / plugin
            link.unlink(missing_ok=True)
            link.symlink_to(source)
        configs: dict[str, Path] = {}

        def kubeconfig(name: str, user: str, groups: list[str]) -> Path:
            from testbed import write_kubeconfig

            cert, key = pki.issue_client_cert(name=name, user=user, groups=groups)
            return write_kubeconfig(wd / f"{name}.kubeconfig", server=server, ca=ca, cert=cert, key=key, user=user)

        containerd = wd / "containerd"
        from testbed import CACHE

        images = json.loads((CACHE / "images" / "images.json").read_text())
        configs["containerd"] = containerd / "config.toml"
        configs["containerd"].write_text(
            f"""version = 2
root = "{containerd / "root"}"
state = "{containerd / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{containerd / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images["pause"]["ref"]}"
  # This VM forbids lowering oom_score_adj; without this every sandbox fails in runc.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{wd / "cni" / "bin"}"
    conf_dir = "{wd / "cni" / "net.d"}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{containerd / "state" / "runc"}"
"""
        )
        _write_json(
            wd / "cni" / "net.d" / "10-credop-testbed.conflist",
            {
                "cniVersion": "1.0.0",
                "name": "credop-testbed",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": "cni0",
                        "isGateway": True,
                        "ipMasq": False,
                        "hairpinMode": True,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": net.pod_cidr, "gateway": net.pod_gateway}]],
                            "routes": [{"dst": "0.0.0.0/0"}],
                            "dataDir": str(wd / "cni" / "ipam"),
                        },
                    },
                    {"type": "portmap", "capabilities": {"portMappings": True}},
                ],
            },
        )
        serving_cert, serving_key = pki.issue_serving_cert(
            name="kubelet-serving", common_name=self.name, ips=[net.node_ip], dns=[self.name]
        )
        resolv = wd / "resolv.conf"
        resolv.write_text("")  # pods get the cluster DNS only: the host's resolvers are not theirs
        configs["kubelet-kubeconfig"] = kubeconfig("kubelet", f"system:node:{self.name}", ["system:nodes"])
        configs["kubelet"] = _write_json(
            wd / "kubelet-config.json",
            {
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "kind": "KubeletConfiguration",
                "cgroupDriver": "cgroupfs",
                "cgroupRoot": self.cgroup_root,
                "failCgroupV1": False,
                "failSwapOn": False,
                "oomScoreAdj": 0,
                "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
                "address": net.node_ip,
                "port": 10250,
                "readOnlyPort": 0,
                "healthzBindAddress": "127.0.0.1",
                "healthzPort": 10248,
                "tlsCertFile": str(serving_cert),
                "tlsPrivateKeyFile": str(serving_key),
                "authentication": {
                    "anonymous": {"enabled": False},
                    "webhook": {"enabled": True},
                    "x509": {"clientCAFile": str(ca)},
                },
                "authorization": {"mode": "Webhook"},
                "clusterDomain": CLUSTER_DOMAIN,
                "clusterDNS": [net.node_ip],
                "resolvConf": str(resolv),
                "podLogsDir": str(wd / "pod-logs"),
                "volumePluginDir": str(wd / "kubelet" / "volume-plugins"),
                "evictionHard": {
                    "memory.available": "100Mi",
                    "nodefs.available": "1%",
                    "nodefs.inodesFree": "1%",
                    "imagefs.available": "1%",
                },
                "imageGCHighThresholdPercent": 100,
                "imageGCLowThresholdPercent": 99,
                "serializeImagePulls": False,
                "syncFrequency": "10s",
                "nodeStatusUpdateFrequency": "5s",
                "fileCheckFrequency": "5s",
                "shutdownGracePeriod": "0s",
                "maxPods": 110,
            },
        )
        configs["kube-proxy-kubeconfig"] = kubeconfig("kube-proxy", "system:kube-proxy", [])
        configs["kube-proxy"] = _write_json(
            wd / "kube-proxy-config.json",
            {
                "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                "kind": "KubeProxyConfiguration",
                "mode": "iptables",
                "clientConnection": {"kubeconfig": str(configs["kube-proxy-kubeconfig"])},
                "hostnameOverride": self.name,
                "bindAddress": net.node_ip,
                "clusterCIDR": net.pod_cidr,
                "healthzBindAddress": "127.0.0.1:10256",
                "metricsBindAddress": "127.0.0.1:10249",
                "oomScoreAdj": 0,
                # Leave the machine's conntrack settings alone (they are not per namespace).
                "conntrack": {
                    "maxPerCore": 0,
                    "min": 0,
                    "tcpEstablishedTimeout": "0s",
                    "tcpCloseWaitTimeout": "0s",
                },
                "iptables": {"syncPeriod": "30s", "minSyncPeriod": "0s", "masqueradeAll": False},
            },
        )
        configs["coredns-kubeconfig"] = kubeconfig("coredns", "system:coredns", [])
        configs["coredns"] = wd / "coredns" / "Corefile"
        configs["coredns"].write_text(
            f""".:53 {{
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {configs["coredns-kubeconfig"]} system:coredns
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""
        )
        return configs

    # ---- the cluster objects a node needs -------------------------------------

    def manifests(self, api_port: int) -> list[dict[str, Any]]:
        """CoreDNS's RBAC and the ``kubernetes`` Service's endpoints (the forwarder on the host's end of the link)."""
        net = self.network
        port = {"name": "https", "port": api_port, "protocol": "TCP"}
        return [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "system:coredns"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "system:coredns"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:coredns",
                },
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}],
            },
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
                },
                "subsets": [{"addresses": [{"ip": net.host_ip}], "ports": [port]}],
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {
                        "kubernetes.io/service-name": "kubernetes",
                        "endpointslice.kubernetes.io/managed-by": "credop-testbed",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [net.host_ip], "conditions": {"ready": True}}],
                "ports": [port],
            },
        ]

    # ---- stop -----------------------------------------------------------------

    def stop(self) -> None:
        """SIGKILL the node's init: the kernel ends every process of the node, containers included."""
        if self.init.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            try:
                self.init.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.init.kill()
                self.init.wait()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        for proc in self._imports.values():
            proc.kill()
            proc.wait()
        self._imports.clear()
        self._remove_cgroups()


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")


def _child_pid(proc: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """The PID of the only child of ``proc`` (unshare --fork and nsenter --pid fork once)."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            found = children.read_text().split()
            if found:
                return int(found[0])
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before starting its child")
        time.sleep(0.02)
    raise TimeoutError(f"{proc.args!r} started no child within {timeout}s")


def _remove_cgroup_tree(path: Path) -> bool:
    """rmdir a cgroup directory and its children, deepest first; False while some still hold tasks."""
    if not path.exists():
        return True
    removed = True
    for directory in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            directory.rmdir()
        except OSError:
            removed = False
    try:
        path.rmdir()
    except OSError:
        removed = False
    return removed


@contextlib.contextmanager
def _network_lock() -> Iterator[None]:
    with NETWORK_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def node_tools_missing() -> list[str]:
    """The host programs the node needs that this machine lacks (hack/setup installs them)."""
    tools = ["unshare", "nsenter", "ip", "iptables", "containerd", "containerd-shim-runc-v2", "runc", "ctr"]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not any((d / "bridge").exists() for d in CNI_PLUGIN_DIRS):
        missing.append("containernetworking-plugins")
    return missing
