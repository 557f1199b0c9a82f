"""helm install: every credop pod Ready, running as the chart says (non-root, read-only root filesystem)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.e2e.conftest import E2E, REPO, SYSTEM_NAMESPACE

pytestmark = pytest.mark.e2e


def test_every_credop_pod_is_ready_with_the_image_built_here(e2e: E2E) -> None:
    defaults = yaml.safe_load((REPO / "charts" / "credop" / "values.yaml").read_text())
    operators, services = e2e.credop_pods("operator"), e2e.credop_pods("service")
    assert (len(operators), len(services)) == (defaults["operator"]["replicas"], defaults["service"]["replicas"])
    for pod in operators + services:
        assert e2e.ready(pod), pod["metadata"]["name"]
        (container,) = pod["spec"]["containers"]
        assert container["image"] == e2e.images["credop"]
        assert pod["spec"]["nodeName"] == e2e.plane.node.name
    deployments = e2e.get("deployments", namespace=SYSTEM_NAMESPACE)
    assert {d["metadata"]["name"]: d["status"].get("readyReplicas") for d in deployments} == {
        "credop-operator": len(operators),
        "credop-service": len(services),
    }


def test_pods_run_non_root_with_a_read_only_root_filesystem(e2e: E2E) -> None:
    for pod in e2e.credop_pods("operator") + e2e.credop_pods("service"):
        name = pod["metadata"]["name"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = pod["spec"]["containers"][0]["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        # What the kernel says about the running process, not what the spec asks for.
        probe = """
import json, os
writable = []
for path in ("/", "/opt/credop", "/etc"):
    try:
        open(os.path.join(path, ".probe"), "w").close()
        writable.append(path)
    except OSError:
        pass
open("/tmp/.probe", "w").write("the emptyDir is writable")
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps([os.getuid(), os.getgid(), writable, status["CapEff"].strip(), status["NoNewPrivs"].strip(), status["Seccomp"].strip()]))
"""
        result = e2e.kubectl("exec", "-n", SYSTEM_NAMESPACE, name, "--", "python3", "-c", probe)
        uid, gid, writable, capabilities, no_new_privs, seccomp = json.loads(result.stdout)
        assert (uid, gid) == (65532, 65532), name
        assert writable == [], f"{name} can write its root filesystem: {writable}"
        assert int(capabilities, 16) == 0 and no_new_privs == "1" and seccomp == "2", result.stdout
