"""Cluster faults that operators hit in the field (issue 12), each a test that fails on the code before
its fix, on a lab of its own.

The lab first holds one server-profile node (read-only commands must leave it alone), then three
Kubernetes nodes with two internal networks each: `mgmtN`, the node's own, which carries its default
route and connects no two nodes, and `lab`, the cluster network that holds the inventory's address
(docs/lab.md). One cluster serves every case, in this order:

- fault 1: status and --check never recreate or reprofile lab nodes; a bootstrap that would needs --yes;
- fault 7: the cluster follows the inventory's address, not the default route (kubelet's node IP, the
  advertise address, Flannel), and pods on two workers talk over the cluster network;
- fault 2: kubelet is restarted when its binary or its drop-in changes, and the node is Ready again;
- fault 3: a half-done kubeadm init on a fresh control plane is refused with the command that cleans it;
- fault 4 (control plane): that command resets the control plane alone; the rebuild takes the workers,
  whose kubelet.conf belongs to the old cluster, back in;
- fault 5: node names kubeadm cannot register are refused before any host is touched;
- fault 6: settings that must agree (cgroup driver, sandbox image repository) are refused before any
  host is touched, by the CLI or, for values only Ansible can evaluate, by the playbook's preflight;
- fault 4 (worker): reset --limit drains the worker (a blocked drain names the pod and resets nothing)
  and deletes its Node; it rejoins under the name k8s_node_name gives it, past a stale Node object;
- and a last rerun changes nothing (no healthy node is taken for a stale or half-done one).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import ROOT, Lab, changed_hosts, pod_pair_manifest, push_lab_base_image, recap

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.extended]

K8S_VERSION = "v1.35.4"
BUNDLE = Path.home() / ".cache" / "toolkit" / "bundles" / f"k8s-{K8S_VERSION}"
TEST_IMAGE = "registry:5000/toolkit/debian:trixie"  # the lab base image, pushed by the fixture
WORKERS = ("node2", "node3")
LAB: Lab  # set by the module fixture


def inventory() -> str:
    return str(LAB.lab_dir() / "inventory")


def bootstrap(*args: str, json_output: bool = True) -> subprocess.CompletedProcess[str]:
    """`toolkit bootstrap --mode k8s` on the lab's inventory, the cluster's plays only (no add-ons, no stack)."""
    tags = [] if any(a.startswith("--tags") for a in args) else ["--tags", "nodes,control_plane,workers"]
    return LAB.toolkit("bootstrap", "--mode", "k8s", "-i", inventory(), *tags, *args,
                       *(["--output", "json"] if json_output else []))


def kubectl(*args: str, stdin: str | None = None) -> str:
    return LAB.exec("node1", "kubectl", *args, stdin=stdin)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def nodes() -> dict[str, Any]:
    return {n["metadata"]["name"]: n for n in kubectl_json("get", "nodes")["items"]}


def ready(node: dict[str, Any]) -> bool:
    return [c["status"] for c in node["status"].get("conditions", []) if c["type"] == "Ready"] == ["True"]


def addresses() -> dict[str, str]:
    """Each node's inventory address (toolkit_address: its address on the `lab` network)."""
    hosts = yaml.safe_load((LAB.lab_dir() / "inventory" / "hosts.yml").read_text())["all"]["hosts"]
    return {name: host["toolkit_address"] for name, host in hosts.items()}


def runs() -> int:
    """How many runs the toolkit has recorded (a refusal before any host is touched records none)."""
    directory = LAB.home / "runs"
    return len(list(directory.iterdir())) if directory.is_dir() else 0


def kubelet_pid(node: str) -> str:
    return LAB.exec(node, "systemctl", "show", "-p", "MainPID", "--value", "kubelet").strip()


def sha256(node: str, path: str) -> str:
    return LAB.exec(node, "sha256sum", path).split()[0]


def write_lab_config(nodes_config: list[dict[str, Any]]) -> None:
    LAB.lab_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    (LAB.lab_dir() / "lab.yml").write_text(yaml.safe_dump({"nodes": nodes_config}, sort_keys=False))


def pods_talk_across_workers() -> None:
    """A web pod on node2, a client on node3: pod to pod, then by the Service's name (CoreDNS, kube-proxy)."""
    manifest = pod_pair_manifest(TEST_IMAGE)
    kubectl("apply", "-f", "-", stdin=manifest)
    try:
        kubectl("wait", "--for=condition=Ready", "pod/web", "pod/client", "--timeout=180s")
        web_ip = kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}").strip()
        for url in (f"http://{web_ip}:8080/", "http://web.default.svc.cluster.local/"):
            code = kubectl("exec", "client", "--", "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", url)
            assert code.strip() == "200", f"{url} from node3's pod: {code}"
    finally:
        kubectl("delete", "pod", "web", "client", "--now", "--ignore-not-found")
        kubectl("delete", "service", "web", "--ignore-not-found")


@pytest.fixture(scope="module")
def server_lab(require_docker: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One server-profile node, on two networks already, as a converged bare lab would have it."""
    global LAB
    LAB = Lab("toolkit-e2e-k8s-faults", 400, tmp_path_factory.mktemp("home-k8s-faults"))
    LAB.toolkit("lab", "down")
    write_lab_config([{"name": "node1", "distribution": "trixie", "profile": "server",
                       "groups": ["rdbms", "nosql", "queue", "apps", "control_plane"], "networks": ["mgmt1", "lab"]}])
    up = LAB.toolkit("lab", "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    try:
        yield
    finally:
        LAB.toolkit("lab", "down")


@pytest.fixture(scope="module")
def cluster(server_lab: None) -> dict[str, Any]:
    """Three Kubernetes nodes, each on its own management network (default route) and the lab network
    (cluster); the cached bundle served; the cluster bootstrapped once."""
    # scripts/test starts this build in the background; the lock makes this wait for it.
    build = subprocess.run([str(ROOT / "lab" / "build-k8s-bundle"), str(BUNDLE)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    write_lab_config([
        {"name": "node1", "distribution": "trixie", "profile": "k8s", "groups": ["control_plane"],
         "networks": ["mgmt1", "lab"]},
        {"name": "node2", "distribution": "trixie", "profile": "k8s", "groups": ["workers"], "networks": ["mgmt2", "lab"]},
        {"name": "node3", "distribution": "trixie", "profile": "k8s", "groups": ["workers"], "networks": ["mgmt3", "lab"]},
    ])
    up = LAB.toolkit("lab", "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    serve = LAB.toolkit("bundle", "serve", str(BUNDLE), "--lab")
    assert serve.returncode == 0, serve.stdout + serve.stderr
    # The test pods' image: the lab base image, pushed with the lab registry's credentials (never stored).
    push_lab_base_image(LAB)
    started = time.monotonic()
    first = recap(bootstrap())
    return {"first": first, "seconds": time.monotonic() - started}


def test_read_only_commands_leave_a_server_lab_alone(server_lab: None) -> None:
    """Fault 1: status and --check refuse (exit 2) instead of recreating the node; bootstrap needs --yes."""
    container = f"{LAB.name}-node1"
    identity = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", container], capture_output=True, text=True,
                              check=True).stdout.strip()
    LAB.exec("node1", "sh", "-c", "echo precious > /var/lib/toolkit-precious")
    config = (LAB.lab_dir() / "lab.yml").read_text()
    recorded = runs()
    for args in (["status", "--mode", "k8s"], ["bootstrap", "--mode", "k8s", "--check"]):
        result = LAB.toolkit(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "the lab's nodes node1 are not Kubernetes nodes (profile server)" in result.stderr, result.stderr
        assert "`toolkit bootstrap --mode k8s` recreates them" in result.stderr, result.stderr
    result = LAB.toolkit("bootstrap", "--mode", "k8s")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "needs the lab's nodes recreated: node1 (profile server -> k8s)" in result.stderr, result.stderr
    assert "would be lost" in result.stderr and "--yes" in result.stderr
    after = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", container], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert after == identity, "a refused command recreated the node"
    assert LAB.exec("node1", "cat", "/var/lib/toolkit-precious").strip() == "precious"
    assert (LAB.lab_dir() / "lab.yml").read_text() == config, "a refused command changed lab.yml"
    assert runs() == recorded, "a refused command ran a playbook"


def test_cluster_follows_the_inventory_address_not_the_default_route(cluster: dict[str, Any]) -> None:
    """Fault 7: on nodes whose default route is a network that connects no two nodes, kubelet's node IP,
    the API server's advertise address and Flannel all use the inventory's address, and pods talk."""
    assert cluster["first"]["status"] == "successful"
    wanted = addresses()
    for node, address in wanted.items():
        route = LAB.exec(node, "ip", "-4", "route", "get", "1.1.1.1")
        source = re.search(r"\bsrc (\S+)", route)
        assert source and source.group(1) != address, f"{node}: the default route is the cluster network: {route}"
    # The default route's network connects no two nodes; the lab network does.
    node3_mgmt = re.search(r"\bsrc (\S+)", LAB.exec("node3", "ip", "-4", "route", "get", "1.1.1.1"))
    assert node3_mgmt
    probe = "timeout 3 bash -c '</dev/tcp/{}/22' && echo open || echo closed"
    assert LAB.exec("node2", "sh", "-c", probe.format(node3_mgmt.group(1))).strip() == "closed"
    assert LAB.exec("node2", "sh", "-c", probe.format(wanted["node3"])).strip() == "open"

    found = nodes()
    assert sorted(found) == ["node1", "node2", "node3"] and all(ready(n) for n in found.values())
    for name, node in found.items():
        internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal == [wanted[name]], f"{name} registered {internal}, inventory says {wanted[name]}"
        public = node["metadata"]["annotations"].get("flannel.alpha.coreos.com/public-ip")
        assert public == wanted[name], f"Flannel on {name} uses {public}, not {wanted[name]}"
    endpoint = kubectl("get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes",
                       "-o", "jsonpath={.items[0].endpoints[0].addresses[0]}").strip()
    assert endpoint == wanted["node1"], f"the API server advertises {endpoint}"
    server = LAB.exec("node2", "grep", "server:", "/etc/kubernetes/kubelet.conf").split()[-1]
    assert server == f"https://{wanted['node1']}:6443"
    args = kubectl_json("get", "daemonset", "-n", "kube-flannel", "kube-flannel-ds")["spec"]["template"]["spec"][
        "containers"][0]["args"]
    assert "--iface=$(NODE_IP)" in args
    pods_talk_across_workers()


def test_kubelet_is_restarted_when_its_binary_or_drop_in_changes(cluster: dict[str, Any]) -> None:
    """Fault 2: a damaged kubelet binary (replaced by a new file, so the old process keeps running) and an
    edited drop-in are put right by a rerun, and kubelet is restarted on them; the nodes are Ready again."""
    before = {node: kubelet_pid(node) for node in WORKERS}
    LAB.exec("node2", "sh", "-c", "cp /usr/local/bin/kubelet /tmp/kubelet && printf x >> /tmp/kubelet "
             "&& chmod 0755 /tmp/kubelet && mv /tmp/kubelet /usr/local/bin/kubelet")
    LAB.exec("node3", "sh", "-c", "echo '# edited by hand' >> /etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
    rerun = recap(bootstrap("--limit", ",".join(WORKERS), "--tags", "kube_packages,workers"))
    assert set(changed_hosts(rerun)) >= set(WORKERS)
    manifest = yaml.safe_load((BUNDLE / "manifest.yml").read_text())
    published = next(f["sha256"] for f in manifest["files"] if f["path"].endswith("/bin/linux/amd64/kubelet"))
    assert sha256("node2", "/usr/local/bin/kubelet") == published
    assert "edited by hand" not in LAB.exec("node3", "cat", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
    for node in WORKERS:
        pid = kubelet_pid(node)
        assert pid not in ("0", before[node]), f"kubelet on {node} was not restarted (pid {before[node]} -> {pid})"
        exe = LAB.exec(node, "readlink", f"/proc/{pid}/exe").strip()
        assert exe == "/usr/local/bin/kubelet", f"kubelet on {node} runs {exe}"
    assert all(ready(n) for n in nodes().values())


HALF_DONE = ("kubeadm init phase certs all --kubernetes-version {v} && "
             "kubeadm init phase kubeconfig all --kubernetes-version {v}").format(v=K8S_VERSION)
STATE: dict[str, Any] = {}  # what one case hands the next


def test_half_done_init_is_refused_with_the_command_that_cleans_it(cluster: dict[str, Any]) -> None:
    """Fault 3: the control plane reset alone, then a kubeadm init stopped after its certificates and
    kubeconfigs (admin.conf written, no control plane): bootstrap does not take it for a finished init;
    it stops before init, naming what is missing and the exact command that cleans the node."""
    reset = recap(LAB.toolkit("reset", "--mode", "k8s", "-i", inventory(), "--limit", "node1", "--yes",
                              "--output", "json"))
    assert set(reset["hosts"]) - {"localhost"} == {"node1"}
    LAB.exec("node1", "sh", "-c", HALF_DONE)
    assert LAB.exec("node1", "sh", "-c", "ls /etc/kubernetes/admin.conf /etc/kubernetes/manifests/ 2>&1").split()[0] \
        == "/etc/kubernetes/admin.conf"
    STATE["worker_ca"] = {node: sha256(node, "/etc/kubernetes/pki/ca.crt") for node in WORKERS}
    result = bootstrap("--tags", "control_plane,workers", json_output=False)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    assert "kubeadm init on node1 did not finish: admin.conf is there but no control-plane static pods" in out, out[-3000:]
    command = re.search(r"`(toolkit reset --mode k8s -i (\S+) --limit node1 --yes)`", out)
    assert command, out[-3000:]
    assert command.group(2) == inventory()
    STATE["command"] = command.group(1)
    # Nothing ran on the workers: their kubelet.conf is the old cluster's still.
    for node in WORKERS:
        assert sha256(node, "/etc/kubernetes/pki/ca.crt") == STATE["worker_ca"][node]


def test_reset_of_the_control_plane_alone_then_a_rebuild_where_the_workers_rejoin(cluster: dict[str, Any]) -> None:
    """Fault 4, control plane: the command the refusal printed cleans the control plane alone; the rebuild
    makes a new cluster (a new CA) and the workers, whose kubelet.conf trusts the old one, are cleaned and
    join it instead of skipping the join."""
    assert "command" in STATE, "the previous case did not print the command"
    cleaned = recap(LAB.toolkit(*shlex.split(STATE["command"])[1:], "--output", "json"))
    assert set(cleaned["hosts"]) - {"localhost"} == {"node1"}
    assert LAB.exec("node1", "sh", "-c", "ls /etc/kubernetes/admin.conf 2>/dev/null || echo gone").strip() == "gone"
    rebuilt = recap(bootstrap("--tags", "control_plane,workers"))
    assert set(changed_hosts(rebuilt)) >= {"node1", *WORKERS}
    cluster_ca = sha256("node1", "/etc/kubernetes/pki/ca.crt")
    for node in WORKERS:
        assert cluster_ca != STATE["worker_ca"][node]
        assert sha256(node, "/etc/kubernetes/pki/ca.crt") == cluster_ca, f"{node} still trusts the old cluster"
    found = nodes()
    assert sorted(found) == ["node1", "node2", "node3"] and all(ready(n) for n in found.values())
    kubectl("rollout", "status", "-n", "kube-system", "deployment/coredns", "--timeout=180s")
    pods_talk_across_workers()


def lab_inventory_copy(tmp_path: Path, rename: dict[str, str] | None = None,
                       host_vars: dict[str, dict[str, Any]] | None = None) -> str:
    """A copy of the lab's inventory directory with hosts renamed and host_vars added."""
    copy = tmp_path / "inventory"
    shutil.copytree(LAB.lab_dir() / "inventory", copy)
    hosts = (copy / "hosts.yml").read_text()
    for old, new in (rename or {}).items():
        hosts = re.sub(rf"\b{old}\b", new, hosts)
    (copy / "hosts.yml").write_text(hosts)
    for host, values in (host_vars or {}).items():
        (copy / "host_vars").mkdir(exist_ok=True)
        (copy / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
    return str(copy)


def test_node_names_kubeadm_cannot_register_are_refused(cluster: dict[str, Any], tmp_path: Path) -> None:
    """Fault 5: an upper-case or '_' name (inventory name or k8s_node_name) is refused with exit 2 before
    any host is touched, naming the host and the fix."""
    recorded = runs()
    pid = kubelet_pid("node3")
    odd = lab_inventory_copy(tmp_path / "odd", rename={"node3": "Node_3"})
    result = LAB.toolkit("bootstrap", "--mode", "k8s", "-i", odd, "--limit", "Node_3")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert "host 'Node_3' (group 'workers') would register with Kubernetes as node 'Node_3'" in result.stderr
    assert "set k8s_node_name: node-3 for it" in result.stderr
    named = lab_inventory_copy(tmp_path / "named", host_vars={"node3": {"k8s_node_name": "Worker_3"}})
    result = LAB.toolkit("bootstrap", "--mode", "k8s", "-i", named)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert "host 'node3' (group 'workers') sets k8s_node_name to 'Worker_3'" in result.stderr
    result = LAB.toolkit("inventory", "validate", "--mode", "k8s", "-i", named)
    assert result.returncode == 2 and "Worker_3" in result.stderr
    # The odd inventory name is fine once k8s_node_name says how the node registers.
    kept = lab_inventory_copy(tmp_path / "kept", rename={"node3": "Node_3"}, host_vars={"Node_3": {"k8s_node_name": "node3"}})
    result = LAB.toolkit("inventory", "validate", "--mode", "k8s", "-i", kept)
    assert result.returncode == 0, result.stderr
    assert runs() == recorded and kubelet_pid("node3") == pid, "a refused run touched a host"


def test_settings_that_must_agree_are_refused_before_any_host_is_touched(cluster: dict[str, Any]) -> None:
    """Fault 6: a cgroup driver containerd does not use, or a sandbox image from another repository than
    kubeadm's, stops the run before any host is touched, naming both variables: exit 2 from the CLI, or
    from the playbook's preflight on localhost when only Ansible can evaluate the value."""
    recorded = runs()
    config = sha256("node1", "/etc/containerd/config.toml")
    pid = kubelet_pid("node1")
    result = bootstrap("-e", "kubeadm_control_plane_cgroup_driver=cgroupfs", json_output=False)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert "kubeadm_control_plane_cgroup_driver (given with -e) is 'cgroupfs'" in result.stderr
    assert "containerd_systemd_cgroup (default) is true on host 'node1'" in result.stderr
    # The served bundle pins containerd_sandbox_image; moving only the repository would split them.
    result = bootstrap("-e", "k8s_image_repository=registry:5000", json_output=False)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert "containerd_sandbox_image is 'registry.k8s.io/pause:3.10.1' on host 'node1'" in result.stderr
    assert "k8s_image_repository (given with -e) 'registry:5000'" in result.stderr
    assert runs() == recorded
    # A value only Ansible can evaluate: the playbook's preflight refuses it on localhost, with the same words.
    result = bootstrap("-e", "containerd_systemd_cgroup={{ 'no' | bool }}")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert "is 'systemd' (kubelet on every node) but containerd_systemd_cgroup is false on host 'node1'" in \
        result.stdout, result.stdout[-3000:]
    assert set(json.loads(result.stdout)["hosts"]) == {"localhost"}, "the refusal came after hosts were touched"
    assert sha256("node1", "/etc/containerd/config.toml") == config and kubelet_pid("node1") == pid


BLOCKER = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: pinned}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: pinned}}}}
  template:
    metadata: {{labels: {{app: pinned}}}}
    spec:
      nodeSelector: {{kubernetes.io/hostname: node3}}
      terminationGracePeriodSeconds: 1
      containers:
        - {{name: pinned, image: "{TEST_IMAGE}", command: [sleep, "3600"]}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: pinned}}
spec:
  minAvailable: 1
  selector: {{matchLabels: {{app: pinned}}}}
"""


def test_reset_of_a_worker_drains_it_and_deletes_its_node(cluster: dict[str, Any]) -> None:
    """Fault 4, worker: reset --limit drains the worker within a bounded time. A pod its
    PodDisruptionBudget keeps blocks the drain: the run names it, resets nothing and leaves the node
    schedulable. Without the budget the drain goes through and the Node object is deleted."""
    kubectl("apply", "-f", "-", stdin=BLOCKER)
    kubectl("rollout", "status", "deployment/pinned", "--timeout=180s")
    settings = LAB.lab_dir() / "inventory" / "group_vars" / "all" / "reset.yml"
    settings.write_text("toolkit_reset_drain_timeout: 15\n")  # an inventory variable (reset takes no -e)
    try:
        blocked = LAB.toolkit("reset", "--mode", "k8s", "-i", inventory(), "--limit", "node3", "--yes")
    finally:
        settings.unlink()
    out = blocked.stdout + blocked.stderr
    assert blocked.returncode == 1, out[-3000:]
    pod = kubectl("get", "pods", "-l", "app=pinned", "-o", "jsonpath={.items[0].metadata.name}").strip()
    assert f"these pods blocked it: default/{pod}" in out, out[-3000:]
    assert "did not finish within 15 s" in out and "Nothing was reset on node3" in out
    assert LAB.exec("node3", "ls", "/etc/kubernetes/kubelet.conf").strip() == "/etc/kubernetes/kubelet.conf"
    assert not nodes()["node3"]["spec"].get("unschedulable"), "a drain that stopped left the node cordoned"
    kubectl("delete", "poddisruptionbudget", "pinned")
    done = recap(LAB.toolkit("reset", "--mode", "k8s", "-i", inventory(), "--limit", "node3", "--yes",
                             "--output", "json"))
    assert set(done["hosts"]) - {"localhost"} == {"node3"}
    assert "node3" not in nodes(), "the reset worker's Node object is still in the cluster"
    assert LAB.exec("node3", "sh", "-c", "ls /etc/kubernetes/*.conf 2>/dev/null || echo none").strip() == "none"
    kubectl("delete", "deployment", "pinned")


def test_a_reset_worker_rejoins_under_its_node_name_past_a_stale_node(cluster: dict[str, Any]) -> None:
    """Faults 4 and 5: the reset worker rejoins with --limit under the name k8s_node_name gives it (its
    inventory and host name stay node3), although a stale, cordoned Node object of that name is there."""
    (LAB.lab_dir() / "inventory" / "host_vars").mkdir(exist_ok=True)
    (LAB.lab_dir() / "inventory" / "host_vars" / "node3.yml").write_text("k8s_node_name: worker-3\n")
    kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Node\nmetadata: {name: worker-3, labels: {stale: 'yes'}}\n"
                                      "spec: {unschedulable: true}\n")
    joined = recap(bootstrap("--limit", "node3", "--tags", "workers"))
    assert "node3" in changed_hosts(joined)
    found = nodes()
    assert sorted(found) == ["node1", "node2", "worker-3"]
    worker = found["worker-3"]
    assert ready(worker)
    assert not worker["spec"].get("unschedulable") and "stale" not in worker["metadata"]["labels"], \
        "the stale Node object was taken over"
    internal = [a["address"] for a in worker["status"]["addresses"] if a["type"] == "InternalIP"]
    assert internal == [addresses()["node3"]]
    assert LAB.exec("node3", "hostname").strip() == "node3"


def test_rerun_changes_nothing(cluster: dict[str, Any]) -> None:
    """No healthy node is taken for a stale or half-done one: a rerun of the cluster's plays changes nothing."""
    again = recap(bootstrap())
    assert changed_hosts(again) == {}, f"rerun changed tasks: {changed_hosts(again)}"
