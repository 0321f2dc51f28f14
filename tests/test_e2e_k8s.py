"""--mode k8s end to end: a kubeadm cluster on 3 kind-style nodes of a lab of its own (1 control plane,
2 workers), from the offline bundle the lab builds from source (lab/build-k8s-bundle, cached under
~/.cache), reached like real servers (ssh as `ops` with sudo, internal networks). One cluster serves
every check, in order: bad input first, then the cluster, the pod network and DNS, rerun and --check,
status, a fourth worker joined with --limit (after a blocked join), reset and a second bootstrap.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, Lab, changed_hosts, recap

pytestmark = [pytest.mark.lab, pytest.mark.slow]

K8S_VERSION = "v1.35.4"
BUNDLE = Path.home() / ".cache" / "toolkit" / "bundles" / f"k8s-{K8S_VERSION}"
TEST_IMAGE = "registry:5000/toolkit/debian:trixie"  # the lab base image, pushed by the fixture
LAB: Lab  # set by the module fixture


def node_exec(node: str, *cmd: str) -> str:
    return LAB.exec(node, *cmd)


def toolkit(*args: str) -> subprocess.CompletedProcess[str]:
    return LAB.toolkit(*args)


def kubectl(*args: str) -> str:
    return node_exec("node1", "kubectl", *args)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


@pytest.fixture(scope="module")
def k8s_lab(require_docker: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    global LAB
    LAB = Lab("toolkit-e2e-k8s", 200, tmp_path_factory.mktemp("home-k8s"))
    toolkit("lab", "down")
    # scripts/test starts this build in the background; the lock makes this wait for it.
    build = subprocess.run([str(ROOT / "lab" / "build-k8s-bundle"), str(BUNDLE)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    up = toolkit("lab", "up", "--nodes", "3", "--profile", "k8s")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        serve = toolkit("bundle", "serve", str(BUNDLE), "--lab")
        assert serve.returncode == 0, serve.stdout + serve.stderr
        for cmd in (["docker", "tag", "toolkit-lab/debian:trixie", f"{LAB.registry}/toolkit/debian:trixie"],
                    ["docker", "push", "-q", f"{LAB.registry}/toolkit/debian:trixie"]):
            subprocess.run(cmd, check=True, capture_output=True)

        # Bad input first, on the fresh nodes: a release the source does not have stops the run
        # before anything is installed.
        missing = toolkit("bootstrap", "--mode", "k8s", "-e", "kube_packages_version=v1.99.0")
        assert missing.returncode != 0
        assert "Kubernetes v1.99.0 has no artifacts" in missing.stdout + missing.stderr
        leftover = LAB.exec("node2", "sh", "-c", "command -v kubeadm containerd || true")
        assert leftover.strip() == "", "a refused version still installed something"

        started = time.monotonic()
        first = recap(toolkit("bootstrap", "--mode", "k8s", "--output", "json"))
        yield {"first": first, "seconds": time.monotonic() - started}
    finally:
        toolkit("lab", "down")


def test_k8s_every_node_ready_at_the_pinned_version(k8s_lab: dict[str, Any]) -> None:
    assert k8s_lab["first"]["status"] == "successful"
    nodes = kubectl_json("get", "nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["node1", "node2", "node3"]
    for node in nodes:
        ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], f"{node['metadata']['name']} not Ready"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == K8S_VERSION
    server = json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    assert server == K8S_VERSION
    assert "control-plane" in kubectl("get", "nodes", "-o", "wide").split("\n")[1]


def test_k8s_system_pods_running(k8s_lab: dict[str, Any]) -> None:
    pods = kubectl_json("get", "pods", "-A")["items"]
    names = {p["metadata"]["name"].rsplit("-", 1)[0] for p in pods}
    for wanted in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert f"{wanted}" in {n.split("-node")[0] for n in names}, wanted
    assert sum(p["metadata"]["name"].startswith("kube-proxy-") for p in pods) == 3
    assert sum(p["metadata"]["name"].startswith("kube-flannel-ds-") for p in pods) == 3
    assert sum(p["metadata"]["name"].startswith("coredns-") for p in pods) == 2
    for pod in pods:
        statuses = pod["status"].get("containerStatuses", [])
        assert pod["status"]["phase"] == "Running" and statuses and all(s["ready"] for s in statuses), \
            f"{pod['metadata']['namespace']}/{pod['metadata']['name']}: {pod['status'].get('phase')}"


def test_k8s_pods_on_two_workers_talk_through_the_cni_and_dns(k8s_lab: dict[str, Any]) -> None:
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  nodeName: node2
  containers:
    - {{name: web, image: "{TEST_IMAGE}", command: [python3, -m, http.server, "8080"]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: node3
  containers:
    - {{name: client, image: "{TEST_IMAGE}", command: [sleep, "3600"]}}
"""
    LAB.exec("node1", "kubectl", "apply", "-f", "-", stdin=manifest)
    kubectl("wait", "--for=condition=Ready", "pod/web", "pod/client", "--timeout=180s")
    web_ip = kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}").strip()
    client_ip = kubectl("get", "pod", "client", "-o", "jsonpath={.status.podIP}").strip()
    assert web_ip.split(".")[2] != client_ip.split(".")[2], "both pods landed in one node's pod subnet"
    # Pod to pod across the two workers, then by the Service's DNS name through CoreDNS and kube-proxy.
    direct = kubectl("exec", "client", "--", "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                     f"http://{web_ip}:8080/")
    assert direct.strip() == "200"
    resolved = kubectl("exec", "client", "--", "getent", "hosts", "web.default.svc.cluster.local")
    service_ip = kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").strip()
    assert resolved.split()[0] == service_ip
    by_name = kubectl("exec", "client", "--", "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                      "http://web.default.svc.cluster.local/")
    assert by_name.strip() == "200"
    kubectl("delete", "pod", "web", "client", "--now")
    kubectl("delete", "service", "web")


def test_k8s_rerun_and_check_report_zero_changed(k8s_lab: dict[str, Any]) -> None:
    again = recap(toolkit("bootstrap", "--mode", "k8s", "--output", "json"))
    assert changed_hosts(again) == {}, f"rerun changed tasks: {changed_hosts(again)}"
    check = recap(toolkit("bootstrap", "--mode", "k8s", "--check", "--output", "json"))
    assert check["status"] == "successful" and changed_hosts(check) == {}


def test_k8s_status_shows_nodes_and_system_pods(k8s_lab: dict[str, Any]) -> None:
    status = recap(toolkit("status", "--mode", "k8s", "--output", "json"))
    nodes = status["data"]["nodes"]
    assert sorted(nodes) == ["node1", "node2", "node3"]
    assert all(n["ready"] and n["version"] == K8S_VERSION for n in nodes.values())
    assert nodes["node1"]["roles"] == "control-plane"
    assert any(name.startswith("kube-system/kube-apiserver-") for name in status["data"]["pods"])
    text = toolkit("status", "--mode", "k8s")
    assert text.returncode == 0 and "node2" in text.stdout and "kube-apiserver" in text.stdout


def test_k8s_new_worker_joins_with_limit(k8s_lab: dict[str, Any]) -> None:
    up = toolkit("lab", "up", "--nodes", "4", "--profile", "k8s")
    assert up.returncode == 0, up.stdout + up.stderr
    prepared = recap(toolkit("bootstrap", "--mode", "k8s", "--limit", "node4", "--tags", "nodes", "--output", "json"))
    assert set(prepared["hosts"]) - {"localhost"} == {"node4"}
    # A worker that cannot reach the API endpoint fails, named, with the endpoint it tried.
    endpoint = kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").strip()
    host = endpoint.split("//")[1].split(":")[0]
    node_exec("node4", "iptables", "-I", "OUTPUT", "-d", host, "-p", "tcp", "--dport", "6443", "-j", "DROP")
    blocked = toolkit("bootstrap", "--mode", "k8s", "--limit", "node4", "-e", "kubeadm_worker_connect_timeout=3")
    node_exec("node4", "iptables", "-D", "OUTPUT", "-d", host, "-p", "tcp", "--dport", "6443", "-j", "DROP")
    assert blocked.returncode != 0
    assert f"node4 cannot reach the Kubernetes API endpoint {host}:6443" in blocked.stdout + blocked.stderr
    joined = recap(toolkit("bootstrap", "--mode", "k8s", "--limit", "node4", "--output", "json"))
    assert joined["status"] == "successful"
    nodes = {n["metadata"]["name"]: n for n in kubectl_json("get", "nodes")["items"]}
    assert sorted(nodes) == ["node1", "node2", "node3", "node4"]
    ready = [c["status"] for c in nodes["node4"]["status"]["conditions"] if c["type"] == "Ready"]
    assert ready == ["True"]


def test_k8s_reset_then_bootstrap_again(k8s_lab: dict[str, Any]) -> None:
    reset = recap(toolkit("reset", "--mode", "k8s", "--yes", "--output", "json"))
    assert reset["status"] == "successful"
    for node in ("node1", "node2"):
        left = LAB.exec(node, "sh", "-c",
                        "ls /etc/kubernetes/*.conf /etc/cni/net.d/* 2>/dev/null; iptables-save | grep -c KUBE- || true")
        assert left.split() == ["0"], f"{node} keeps cluster state after reset: {left}"
    again = recap(toolkit("bootstrap", "--mode", "k8s", "--output", "json"))
    assert again["status"] == "successful"
    nodes = kubectl_json("get", "nodes")["items"]
    assert len(nodes) == 4
    assert all([c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"] == ["True"] for n in nodes)
