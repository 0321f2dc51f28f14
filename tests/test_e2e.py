"""End to end on the built-in lab, in order, on one pytest worker (the lab is one shared resource).

1. Foundation: 2 nodes, `bootstrap --mode bare --tags common`, a rerun with zero changes on every
   host, real state checked inside the nodes, then the lab torn down.
2. --mode bare on 3 nodes: bootstrap the reference stack, send an order through the Node front and
   read it back with real clients from PostgreSQL, Redis and RabbitMQ; a rerun and a --check run
   report zero changed; the Java services run on Java 8; the roles are reusable by name; reset
   keeps the data and a second bootstrap works.

The test suite takes over the built-in lab (`toolkit-lab`) and tears it down when done.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import BIN, ROOT, toolkit

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB_HOME = Path(os.environ.get("TOOLKIT_HOME") or Path.home() / ".local/share/toolkit")


def node_exec(node: str, *cmd: str, env: dict[str, str] | None = None) -> str:
    args = ["docker", "exec"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    out = subprocess.run([*args, f"toolkit-lab-{node}", *cmd], capture_output=True, text=True)
    assert out.returncode == 0, f"{cmd} on {node}: {out.stdout}{out.stderr}"
    return out.stdout + out.stderr


def secret(name: str) -> str:
    return (LAB_HOME / "lab" / "secrets" / name).read_text().split()[0]


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:  # noqa: S310 - a lab container address
        return resp.status, json.loads(resp.read() or b"null")


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    return json.loads(result.stdout)


def test_common_on_a_two_node_lab(require_docker: None) -> None:
    down = toolkit("lab", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    try:
        up = toolkit("lab", "up", "--nodes", "2")
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(toolkit("lab", "status", "--output", "json").stdout)
        nodes = [c for c in status["containers"] if c["kind"] == "node"]
        assert sorted(c["node"] for c in nodes) == ["node1", "node2"]
        assert all(c["state"] == "running" and c["address"] for c in nodes)
        services = {c["container"] for c in status["containers"] if c["kind"] == "service"}
        assert services == {"toolkit-lab-files", "toolkit-lab-registry"}

        first = toolkit("bootstrap", "--mode", "bare", "--tags", "common", "--output", "json")
        assert first.returncode == 0, first.stdout + first.stderr
        recap = json.loads(first.stdout)
        assert recap["status"] == "successful"
        assert {"node1", "node2"} <= set(recap["hosts"])
        assert "TASK common" in first.stderr  # progress went to stderr, the JSON alone to stdout

        second = toolkit("bootstrap", "--mode", "bare", "--tags", "common", "--output", "json")
        assert second.returncode == 0, second.stdout + second.stderr
        rerun = json.loads(second.stdout)
        changed = {host: counts["changed"] for host, counts in rerun["hosts"].items() if counts["changed"]}
        assert changed == {}, f"rerun changed tasks: {changed}"

        # Real state on the nodes.
        assert "toolkit" in node_exec("node1", "id", "toolkit")
        assert node_exec("node1", "getent", "passwd", "toolkit").strip().endswith("/usr/sbin/nologin")
        assert "node2" in node_exec("node1", "getent", "hosts", "node2")
        assert "node1" in node_exec("node2", "getent", "hosts", "node1")
        assert node_exec("node2", "readlink", "/etc/localtime").strip().endswith("Etc/UTC")
    finally:
        down = toolkit("lab", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=toolkit.lab=toolkit-lab"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == [], "lab down left containers behind"
    nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", "name=^toolkit-lab$"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert nets == []


@pytest.fixture(scope="module")
def bare_lab(require_docker: None) -> Iterator[dict[str, Any]]:
    up = toolkit("lab", "up", "--nodes", "3")
    assert up.returncode == 0, up.stdout + up.stderr
    build = subprocess.run([str(ROOT / "apps" / "build.sh"), str(LAB_HOME / "lab" / "files")],
                           capture_output=True, text=True, env={**os.environ, "SKIP_TESTS": "1"})
    assert build.returncode == 0, build.stdout + build.stderr
    first = recap(toolkit("bootstrap", "--mode", "bare", "--output", "json"))
    status = json.loads(toolkit("lab", "status", "--output", "json").stdout)
    addresses = {c["node"]: c["address"] for c in status["containers"] if c["kind"] == "node"}
    try:
        yield {"first": first, "addresses": addresses}
    finally:
        toolkit("lab", "down")


def test_an_order_travels_through_the_whole_stack(bare_lab: dict[str, Any]) -> None:
    front = f"http://{bare_lab['addresses']['node2']}:3000"
    status, products = http("GET", f"{front}/api/products")
    assert status == 200 and len(products) >= 1
    status, order = http("POST", f"{front}/api/orders", {"product_id": products[0]["id"], "quantity": 2})
    assert status == 201, order
    order_id = int(order["id"])

    # PostgreSQL: the order row, written by orders (and marked billed by billing via the queue).
    deadline = time.monotonic() + 60
    while True:
        row = node_exec("node1", "runuser", "-u", "postgres", "--", "psql", "-d", "shop", "-tAc",
                        f"select quantity, status from orders where id = {order_id}").strip()
        if row.endswith("billed") or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert row == "2|billed", row
    invoice = node_exec("node1", "runuser", "-u", "postgres", "--", "psql", "-d", "shop", "-tAc",
                        f"select count(*) from invoices where order_id = {order_id}").strip()
    assert invoice == "1"

    # Redis: the cached order, read with redis-cli (password through the environment, not argv).
    cached = node_exec("node1", "redis-cli", "--no-auth-warning", "GET", f"order:{order_id}",
                       env={"REDISCLI_AUTH": secret("nosql")})
    assert json.loads(cached)["id"] == order_id

    # RabbitMQ: the audit copy of every published order stays in orders.audit.
    queues = node_exec("node1", "rabbitmqctl", "-q", "list_queues", "-p", "shop", "name", "messages")
    counts = dict(line.split() for line in queues.strip().splitlines() if line and not line.startswith("name"))
    assert int(counts["orders.audit"]) >= 1, queues

    # The same order read back through the front, from the billing service.
    status, bill = http("GET", f"{front}/api/invoices/{order_id}")
    assert status == 200 and int(bill["order_id"]) == order_id


def test_java_services_run_on_java_8(bare_lab: dict[str, Any]) -> None:
    for node in ("node2", "node3"):
        assert 'version "1.8.0' in node_exec(node, "java", "-version")
        for app in ("catalog", "orders", "billing"):
            pid = node_exec(node, "systemctl", "show", "-p", "MainPID", "--value", f"toolkit-{app}").strip()
            exe = node_exec(node, "readlink", f"/proc/{pid}/exe").strip()
            assert "java-8" in exe, f"{app} on {node} runs {exe}"


def test_rerun_and_check_report_zero_changed(bare_lab: dict[str, Any]) -> None:
    for args in (["bootstrap", "--mode", "bare"], ["bootstrap", "--mode", "bare", "--check"]):
        result = recap(toolkit(*args, "--output", "json"))
        changed = {h: c["changed"] for h, c in result["hosts"].items() if c["changed"]}
        assert changed == {}, f"{' '.join(args)} changed: {changed}"


def test_status_shows_every_service_running(bare_lab: dict[str, Any]) -> None:
    result = recap(toolkit("status", "--mode", "bare", "--output", "json"))
    services = result["data"]["services"]
    assert set(services["node1"].values()) == {"running"}, services["node1"]
    units = sorted(unit.split("@")[0].removesuffix(".service") for unit in services["node1"])
    assert units == ["postgresql", "rabbitmq-server", "redis-server"], units
    for node in ("node2", "node3"):
        assert set(services[node].values()) == {"running"}, services[node]


def test_roles_are_reusable_by_name_outside_the_project(bare_lab: dict[str, Any], tmp_path: Path) -> None:
    """A user's own playbook, elsewhere on disk, uses `postgresql` and `java` with documented variables only."""
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        "- hosts: rdbms\n  become: true\n  roles:\n    - role: postgresql\n"
        "      vars:\n        postgresql_databases: [{name: reuse_check, owner: postgres}]\n"
        "- hosts: apps\n  become: true\n  roles:\n    - role: java\n      vars:\n        java_version: 8\n"
    )
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(LAB_HOME / "lab" / "inventory"), str(playbook)],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    listed = node_exec("node1", "runuser", "-u", "postgres", "--", "psql", "-tAc",
                       "select datname from pg_database where datname = 'reuse_check'")
    assert listed.strip() == "reuse_check"


def test_reset_keeps_data_and_bootstrap_works_again(bare_lab: dict[str, Any]) -> None:
    before = node_exec("node1", "runuser", "-u", "postgres", "--", "psql", "-d", "shop", "-tAc",
                       "select count(*) from orders").strip()
    assert int(before) >= 1
    reset = recap(toolkit("reset", "--mode", "bare", "--yes", "--output", "json"))
    assert reset["status"] == "successful"
    gone = subprocess.run(["docker", "exec", "toolkit-lab-node2", "systemctl", "is-active", "toolkit-orders"],
                          capture_output=True, text=True)
    assert gone.stdout.strip() != "active"
    again = recap(toolkit("bootstrap", "--mode", "bare", "--output", "json"))
    assert again["status"] == "successful"
    after = node_exec("node1", "runuser", "-u", "postgres", "--", "psql", "-d", "shop", "-tAc",
                      "select count(*) from orders").strip()
    assert after == before, "reset without --purge-data lost orders"
    status, _ = http("GET", f"http://{bare_lab['addresses']['node3']}:3000/api/products")
    assert status == 200


# --- 3. --mode k8s: a kubeadm cluster on 3 kind-style nodes (1 control plane, 2 workers), from the
#     offline bundle the lab builds from source (lab/build-k8s-bundle, cached under ~/.cache).

K8S_VERSION = "v1.35.4"
BUNDLE = Path.home() / ".cache" / "toolkit" / "bundles" / f"k8s-{K8S_VERSION}"
TEST_IMAGE = "registry:5000/toolkit/debian:trixie"  # the lab base image, pushed by the fixture


def kubectl(*args: str) -> str:
    return node_exec("node1", "kubectl", *args)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def changed_hosts(result: dict[str, Any]) -> dict[str, int]:
    return {host: counts["changed"] for host, counts in result["hosts"].items() if counts["changed"]}


@pytest.fixture(scope="module")
def k8s_lab(require_docker: None) -> Iterator[dict[str, Any]]:
    toolkit("lab", "down")
    build = subprocess.run([str(ROOT / "lab" / "build-k8s-bundle"), str(BUNDLE)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    up = toolkit("lab", "up", "--nodes", "3", "--profile", "k8s")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        serve = toolkit("bundle", "serve", str(BUNDLE), "--lab")
        assert serve.returncode == 0, serve.stdout + serve.stderr
        for cmd in (["docker", "tag", "toolkit-lab/debian:trixie", "127.0.0.1:15000/toolkit/debian:trixie"],
                    ["docker", "push", "-q", "127.0.0.1:15000/toolkit/debian:trixie"]):
            subprocess.run(cmd, check=True, capture_output=True)

        # Bad input first, on the fresh nodes: a release the source does not have stops the run
        # before anything is installed.
        missing = toolkit("bootstrap", "--mode", "k8s", "-e", "kube_packages_version=v1.99.0")
        assert missing.returncode != 0
        assert "Kubernetes v1.99.0 has no artifacts" in missing.stdout + missing.stderr
        leftover = subprocess.run(["docker", "exec", "toolkit-lab-node2", "sh", "-c",
                                   "command -v kubeadm containerd || true"], capture_output=True, text=True)
        assert leftover.stdout.strip() == "", "a refused version still installed something"

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
    apply = subprocess.run(["docker", "exec", "-i", "toolkit-lab-node1", "kubectl", "apply", "-f", "-"],
                           input=manifest, capture_output=True, text=True)
    assert apply.returncode == 0, apply.stderr
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
        left = subprocess.run(["docker", "exec", f"toolkit-lab-{node}", "sh", "-c",
                               "ls /etc/kubernetes/*.conf /etc/cni/net.d/* 2>/dev/null; iptables-save | grep -c KUBE- || true"],
                              capture_output=True, text=True)
        assert left.stdout.split() == ["0"], f"{node} keeps cluster state after reset: {left.stdout}"
    again = recap(toolkit("bootstrap", "--mode", "k8s", "--output", "json"))
    assert again["status"] == "successful"
    nodes = kubectl_json("get", "nodes")["items"]
    assert len(nodes) == 4
    assert all([c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"] == ["True"] for n in nodes)
