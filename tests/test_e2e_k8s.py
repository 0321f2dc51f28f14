"""--mode k8s end to end: a kubeadm cluster on 3 kind-style nodes of a lab of its own (1 control plane,
2 workers), from the offline bundle the lab builds from source (lab/build-k8s-bundle, cached under
~/.cache), reached like real servers (ssh as `ops` with sudo, internal networks), with the add-ons and
the stack on it (the first bootstrap builds and pushes the stack's images into the lab registry).
One cluster serves every check, in order: bad input first, then the cluster, the pod network and DNS,
rerun (extended) and --check, status; then the stack under a client loop through the front's NodePort (the
order's whole path, a deleted pod, rolling updates good and bad, scale, a deleted PostgreSQL pod, logs
of a gone pod, storage refused, a removed app, a rerun); then, marked `extended` (left out of the default
run, tests/conftest.py: each costs about 10 min), a fourth worker joined with --limit (after a blocked join),
and reset with a second bootstrap.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import (ROOT, Lab, assert_no_secret_leaks, changed_hosts, pod_pair_manifest, push_lab_base_image,
                      recap, tasks_that_ran)

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
    # A lab of its own; TOOLKIT_E2E_K8S_LAB=NAME:PORT_OFFSET runs it under another name (beside a CI run).
    name, _, offset = os.environ.get("TOOLKIT_E2E_K8S_LAB", "toolkit-e2e-k8s:200").partition(":")
    LAB = Lab(name, int(offset or 200), tmp_path_factory.mktemp("home-k8s"))
    toolkit("lab", "down")
    # scripts/test starts this build in the background; the lock makes this wait for it.
    build = subprocess.run([str(ROOT / "lab" / "build-k8s-bundle"), str(BUNDLE)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    up = toolkit("lab", "up", "--nodes", "3", "--profile", "k8s")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        serve = toolkit("bundle", "serve", str(BUNDLE), "--lab")
        assert serve.returncode == 0, serve.stdout + serve.stderr
        # The registry asks for the lab's credentials (htpasswd).
        push_lab_base_image(LAB)

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
    manifest = pod_pair_manifest(TEST_IMAGE)
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


@pytest.mark.extended
def test_k8s_rerun_reports_zero_changed(k8s_lab: dict[str, Any]) -> None:
    """A whole rerun (about 6 min under CI's load). The default run keeps the --check below (the nodes' and the
    add-ons' tasks report nothing to change) and the deploy rerun of the stack further down."""
    again = recap(toolkit("bootstrap", "--mode", "k8s", "--output", "json"))
    assert changed_hosts(again) == {}, f"rerun changed tasks: {changed_hosts(again)}"


def test_k8s_check_reports_zero_changed(k8s_lab: dict[str, Any]) -> None:
    """On the control plane and one worker (node3 runs node2's tasks). With every package installed, no role
    calls apt (dpkg answers; apt would load its whole cache)."""
    check = recap(toolkit("bootstrap", "--mode", "k8s", "--check", "--limit", "node1,node2", "--output", "json"))
    assert check["status"] == "successful" and changed_hosts(check) == {}
    ran = tasks_that_ran(Path(check["artifacts"]), "ansible.builtin.apt")
    assert ran == [], f"--check ran apt with every package installed: {ran}"


def test_k8s_status_shows_nodes_and_system_pods(k8s_lab: dict[str, Any]) -> None:
    status = recap(toolkit("status", "--mode", "k8s", "--output", "json"))
    nodes = status["data"]["nodes"]
    assert sorted(nodes) == ["node1", "node2", "node3"]
    assert all(n["ready"] and n["version"] == K8S_VERSION for n in nodes.values())
    assert nodes["node1"]["roles"] == "control-plane"
    assert any(name.startswith("kube-system/kube-apiserver-") for name in status["data"]["pods"])
    text = toolkit("status", "--mode", "k8s")
    assert text.returncode == 0 and "node2" in text.stdout and "kube-apiserver" in text.stdout


# --------------------------------------------------------------------------------------------- the stack

NS = "toolkit"
STATE: dict[str, Any] = {}  # what one stack test leaves for a later one (a deleted pod's name)


@dataclass
class Traffic:
    """A client loop through the front's NodePort, bounded in count and time, counting failed requests.

    Each round: GET /api/products (front -> catalog -> Redis/PostgreSQL) and POST /api/orders (front ->
    orders -> catalog, PostgreSQL, Redis, RabbitMQ). A request fails when it raises or answers other than
    200/201. New connection per request (no keep-alive), 10 s timeout.
    """

    base: str
    max_requests: int = 4000
    max_seconds: float = 420.0
    total: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _one(self, method: str, path: str, body: bytes | None = None) -> None:
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers={"Content-Type": "application/json", "Connection": "close"})
        self.total += 1
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                if response.status in (200, 201):
                    return
                error = f"{method} {path}: HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            error = f"{method} {path}: HTTP {exc.code} {exc.read()[:200]!r}"
        except OSError as exc:
            error = f"{method} {path}: {exc}"
        self.failed += 1
        self.errors.append(f"{time.strftime('%H:%M:%S')} {error}")

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and self.total < self.max_requests and time.monotonic() < deadline:
            self._one("GET", "/api/products")
            self._one("POST", "/api/orders", json.dumps({"product_id": 2, "quantity": 1}).encode())
            time.sleep(0.05)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def check(self, minimum: int = 20) -> None:
        assert self.total >= minimum, f"the client loop sent only {self.total} requests"
        assert self.failed == 0, f"{self.failed} of {self.total} requests failed: {self.errors[:10]}"


def front() -> str:
    """http://<worker address>:<front's node port>."""
    port = kubectl("-n", NS, "get", "service", "front", "-o", "jsonpath={.spec.ports[0].nodePort}").strip()
    return f"http://{LAB.addresses()['node2']}:{port}"


def http_json(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for(what: str, probe: Any, seconds: float = 180, every: float = 2) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {seconds} s (last: {last})")


def deployment(name: str) -> dict[str, Any]:
    result: dict[str, Any] = kubectl_json("-n", NS, "get", "deployment", name)
    return result


def app_pods(app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl_json("-n", NS, "get", "pods", "-l", f"app.kubernetes.io/name={app}")["items"]
    return items


def rolled_out(name: str, replicas: int) -> bool:
    d = deployment(name)
    st = d["status"]
    return bool(d["spec"]["replicas"] == replicas and st.get("updatedReplicas") == replicas
                and st.get("readyReplicas") == replicas and st.get("replicas") == replicas
                and st.get("availableReplicas") == replicas)


def image_of(name: str) -> str:
    return str(deployment(name)["spec"]["template"]["spec"]["containers"][0]["image"])


def psql(sql: str) -> str:
    return LAB.exec("node1", "kubectl", "-n", NS, "exec", "postgresql-0", "--", "psql", "-U", "shop", "-d", "shop",
                    "-tAc", sql).strip()


def order_works() -> bool:
    status, _ = http_json("POST", front() + "/api/orders", {"product_id": 1, "quantity": 1})
    return status == 201


def test_k8s_stack_serves_an_order_through_every_service(k8s_lab: dict[str, Any]) -> None:
    """front -> orders -> catalog -> PostgreSQL (+ Redis) -> RabbitMQ -> billing, as in the other modes."""
    base = front()
    status, products = http_json("GET", base + "/api/products")
    assert status == 200 and len(products) >= 3, products
    status, order = http_json("POST", base + "/api/orders", {"product_id": 1, "quantity": 2})
    assert status == 201 and order["status"] == "created" and order["total_cents"] == 2 * products[0]["price_cents"], order
    invoice = wait_for("billing's invoice of the order",
                       lambda: (lambda r: r[1] if r[0] == 200 else None)(http_json("GET", f"{base}/api/invoices/{order['id']}")),
                       seconds=60)
    assert invoice["order_id"] == order["id"] and invoice["amount_cents"] == order["total_cents"]
    billed = wait_for("the order billed", lambda: (lambda r: r[1] if r[0] == 200 and r[1]["status"] == "billed" else None)(
        http_json("GET", f"{base}/api/orders/{order['id']}")), seconds=30)
    assert billed["id"] == order["id"]
    # The rows are in the RDBMS pod; the wiring used Service names and only what each app uses.
    assert psql(f"SELECT status FROM orders WHERE id = {order['id']}") == "billed"
    assert psql(f"SELECT amount_cents FROM invoices WHERE order_id = {order['id']}") == str(order["total_cents"])
    catalog_env = kubectl_json("-n", NS, "get", "configmap", "catalog-env")["data"]
    assert catalog_env["DB_URL"] == "jdbc:postgresql://rdbms:5432/shop" and catalog_env["REDIS_HOST"] == "nosql"
    assert "AMQP_ADDRESSES" not in catalog_env and "DB_PASSWORD" not in catalog_env
    secret_keys = kubectl_json("-n", NS, "get", "secret", "catalog-env")["data"].keys()
    assert sorted(secret_keys) == ["DB_PASSWORD", "REDIS_PASSWORD"]


def test_k8s_stack_objects_probes_limits_and_status(k8s_lab: dict[str, Any]) -> None:
    catalog = deployment("catalog")
    spec = catalog["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live" and "startupProbe" in container
    assert container["image"] == "registry:5000/toolkit/catalog:0.1.0"
    assert pod["imagePullSecrets"] == [{"name": "toolkit-registry"}]
    # A budget only above one replica: billing (1) has none, so it never blocks a drain.
    budgets = {p["metadata"]["name"] for p in kubectl_json("-n", NS, "get", "pdb")["items"]}
    assert budgets == {"catalog", "orders", "front"}
    assert kubectl("-n", NS, "get", "service", "front", "-o", "jsonpath={.spec.type}").strip() == "NodePort"
    assert kubectl("-n", NS, "get", "service", "catalog", "-o", "jsonpath={.spec.type}").strip() == "ClusterIP"
    policies = {p["metadata"]["name"]: p for p in kubectl_json("-n", NS, "get", "networkpolicy")["items"]}
    assert set(policies) == {"catalog", "orders", "billing", "front", "postgresql", "redis", "rabbitmq"}
    allowed = [f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
               for f in policies["postgresql"]["spec"]["ingress"][0]["from"]]
    assert sorted(allowed) == ["billing", "catalog", "orders"]
    assert kubectl("get", "storageclass", "local-path", "-o",
                   "jsonpath={.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}").strip() == "true"

    status = recap(toolkit("status", "--mode", "k8s", "--output", "json"))
    apps = status["data"]["apps"]
    assert {n: (a["desired"], a["ready"]) for n, a in apps.items()} == {
        "catalog": (2, 2), "orders": (2, 2), "billing": (1, 1), "front": (2, 2)}
    assert isinstance(apps["front"]["node_port"], int) and all("restarts" in a for a in apps.values())
    services = status["data"]["services"]
    assert set(services) == {"rdbms", "nosql", "queue"}
    for svc in services.values():
        assert svc["ready"] == 1 and svc["volume"]["phase"] == "Bound" and svc["volume"]["capacity"] == "1Gi"
        assert svc["volume"]["storage_class"] == "local-path"
    assert "NOT enforced" in status["data"]["network_policy"] and "Flannel" in status["data"]["network_policy"]
    text = toolkit("status", "--mode", "k8s")
    assert text.returncode == 0
    assert "app catalog: 2/2 ready" in text.stdout and "service rdbms (postgresql): 1/1 ready" in text.stdout
    assert "NOT enforced" in text.stdout


def test_k8s_stack_deleted_app_pod_is_replaced_without_failed_requests(k8s_lab: dict[str, Any]) -> None:
    victim = app_pods("catalog")[0]["metadata"]["name"]
    with Traffic(front()) as traffic:
        time.sleep(3)
        kubectl("-n", NS, "delete", "pod", victim, "--wait=false")
        wait_for("a replacement catalog pod Ready and the old one gone",
                 lambda: victim not in {p["metadata"]["name"] for p in app_pods("catalog")} and rolled_out("catalog", 2),
                 seconds=240)
        time.sleep(5)
    traffic.check()
    STATE["deleted_pod"] = victim


def test_k8s_stack_rolling_update_without_failed_requests(k8s_lab: dict[str, Any]) -> None:
    pushed = toolkit("lab", "images", "--only", "catalog", "--app-tag", "catalog=0.1.1")
    assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-3000:]
    with Traffic(front()) as traffic:
        result = toolkit("rollout", "catalog", "--image", "toolkit/catalog:0.1.1", "--mode", "k8s")
        time.sleep(3)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "rollout of catalog to registry:5000/toolkit/catalog:0.1.1: succeeded (2/2 ready" in result.stdout
    assert image_of("catalog") == "registry:5000/toolkit/catalog:0.1.1" and rolled_out("catalog", 2)
    traffic.check()


def test_k8s_stack_failed_rollouts_are_rolled_back_while_the_old_pods_serve(k8s_lab: dict[str, Any]) -> None:
    with Traffic(front()) as traffic:
        # An image the registry does not have: named, rolled back.
        missing = toolkit("rollout", "catalog", "--image", "toolkit/catalog:9.9.9", "--mode", "k8s")
        # An image that runs but never becomes ready (billing's, without the queue it needs: it exits).
        broken = toolkit("rollout", "catalog", "--image", "toolkit/billing:0.1.0", "--mode", "k8s")
        time.sleep(3)
    out = missing.stdout + missing.stderr
    assert missing.returncode == 1, out[-4000:]
    assert "image registry:5000/toolkit/catalog:9.9.9 cannot be pulled" in out, out[-4000:]
    assert "Rolled back to registry:5000/toolkit/catalog:0.1.1" in out
    out = broken.stdout + broken.stderr
    assert broken.returncode == 1, out[-4000:]
    assert "restarted" in out and "Rolled back to registry:5000/toolkit/catalog:0.1.1" in out, out[-4000:]
    assert image_of("catalog") == "registry:5000/toolkit/catalog:0.1.1" and rolled_out("catalog", 2)
    traffic.check()


def test_k8s_stack_scale_up_and_down(k8s_lab: dict[str, Any]) -> None:
    def top_catalog() -> int:
        out = LAB.exec("node1", "kubectl", "-n", NS, "top", "pods", "-l", "app.kubernetes.io/name=catalog",
                       "--no-headers", check=False)
        return len([line for line in out.splitlines() if line.startswith("catalog-")])

    up = toolkit("scale", "catalog", "3", "--mode", "k8s")
    assert up.returncode == 0, up.stdout[-3000:]
    assert "scaled catalog: 2 -> 3 replicas, 3 ready" in up.stdout
    assert rolled_out("catalog", 3)
    wait_for("kubectl top pods showing 3 catalog pods", lambda: top_catalog() == 3, seconds=120, every=5)
    down = toolkit("scale", "catalog", "2", "--mode", "k8s")
    assert down.returncode == 0 and "scaled catalog: 3 -> 2 replicas, 2 ready" in down.stdout, down.stdout[-3000:]
    assert rolled_out("catalog", 2)
    wait_for("kubectl top pods showing 2 catalog pods", lambda: top_catalog() == 2, seconds=120, every=5)
    nodes = LAB.exec("node1", "kubectl", "top", "nodes", "--no-headers")
    assert len(nodes.strip().splitlines()) == 3
    # Bad input, refused before anything runs.
    for args, words in ((["scale", "nosuch", "2", "--mode", "k8s"], "there is no app 'nosuch'"),
                        (["scale", "--mode", "k8s", "--", "catalog", "-1"], "give 0 or more"),
                        (["scale", "catalog", "2", "--mode", "bare"], "has no meaning in --mode bare"),
                        (["rollout", "catalog", "--image", "Bad:Ref", "--mode", "k8s"], "--image 'Bad:Ref'"),
                        (["logs", "catalog", "--since", "5x", "--mode", "k8s"], "is not a duration")):
        refused = toolkit(*args)
        assert refused.returncode == 2 and words in refused.stderr, (args, refused.stdout, refused.stderr)


def test_k8s_stack_postgres_pod_deleted_data_kept(k8s_lab: dict[str, Any]) -> None:
    claim_uid = kubectl("-n", NS, "get", "pvc", "data-postgresql-0", "-o", "jsonpath={.metadata.uid}").strip()
    psql("CREATE TABLE IF NOT EXISTS e2e_kept (v text); INSERT INTO e2e_kept VALUES ('survives the pod')")
    kubectl("-n", NS, "delete", "pod", "postgresql-0")
    kubectl("-n", NS, "wait", "--for=condition=Ready", "pod/postgresql-0", "--timeout=180s")
    assert psql("SELECT v FROM e2e_kept") == "survives the pod"
    assert kubectl("-n", NS, "get", "pvc", "data-postgresql-0", "-o", "jsonpath={.metadata.uid}").strip() == claim_uid
    # The apps reconnect by themselves: an order goes through again.
    wait_for("an order through the stack after the database came back", order_works, seconds=120, every=3)


def test_k8s_stack_logs_of_every_replica_and_of_a_gone_pod(k8s_lab: dict[str, Any]) -> None:
    gone = STATE.get("deleted_pod")
    assert gone, "the deleted-pod test did not run first"
    live = {p["metadata"]["name"] for p in app_pods("catalog")}

    def found() -> dict[str, Any] | None:
        result = toolkit("logs", "catalog", "--mode", "k8s", "--output", "json")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        data: dict[str, Any] = json.loads(result.stdout)["data"]["logs"]
        pods = {line["pod"] for line in data["lines"]}
        return data if gone in pods and live <= pods else None

    logs = wait_for("the gone pod's lines in the log store", found, seconds=90, every=5)
    assert logs["store_error"] == "" and gone in logs["gone"] and set(logs["pods"]) == live
    from_store = [line for line in logs["lines"] if line["pod"] == gone]
    assert all(line["source"] == "store" for line in from_store)
    assert any("wiring: catalog" in line["line"] for line in from_store), from_store[:5]
    assert [line["time"] for line in logs["lines"]] == sorted(line["time"] for line in logs["lines"])
    text = toolkit("logs", "catalog", "--since", "1d", "--mode", "k8s")
    assert text.returncode == 0 and f"{gone} (gone) " in text.stdout
    assert all(f" {pod} " in text.stdout for pod in live)


def test_k8s_stack_without_a_storage_class_is_refused_before_anything(k8s_lab: dict[str, Any]) -> None:
    annotation = "storageclass.kubernetes.io/is-default-class"
    kubectl("annotate", "storageclass", "local-path", f"{annotation}=false", "--overwrite")
    try:
        refused = toolkit("deploy", "--mode", "k8s", "-e", "k8s_stack_namespace=e2e-nostorage")
    finally:
        kubectl("annotate", "storageclass", "local-path", f"{annotation}=true", "--overwrite")
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1, out[-3000:]
    assert "The stack asks for storage (rdbms 1Gi, nosql 1Gi, queue 1Gi)" in out and "no default StorageClass" in out
    assert "Nothing was applied" in out
    assert "e2e-nostorage" not in kubectl("get", "namespaces", "-o", "name")


def test_k8s_stack_removed_app_is_deleted_and_a_rerun_changes_nothing(k8s_lab: dict[str, Any]) -> None:
    without = recap(toolkit("deploy", "--mode", "k8s", "--stack", str(ROOT / "stacks/variants/without-billing.yml"),
                            "--output", "json"))
    assert without["status"] == "successful"
    names = kubectl("-n", NS, "get", "deployment,service,configmap,secret,networkpolicy,pdb", "-o", "name")
    assert "billing" not in names, names
    assert "deployment.apps/orders" in names and "service/rdbms" in names
    assert order_works()
    # The reference stack again: billing comes back, catalog returns to the stack file's image; with --diff -v,
    # which the secret scan below then reads (the Secrets are re-applied with billing's).
    again = recap(toolkit("deploy", "--mode", "k8s", "--diff", "-v", "--output", "json"))
    assert again["status"] == "successful"
    assert rolled_out("billing", 1) and image_of("catalog") == "registry:5000/toolkit/catalog:0.1.0"
    rerun = recap(toolkit("deploy", "--mode", "k8s", "--output", "json"))
    assert changed_hosts(rerun) == {}, f"a rerun of deploy changed tasks: {changed_hosts(rerun)}"


def test_k8s_no_secret_in_any_log_or_run_record(k8s_lab: dict[str, Any]) -> None:
    """After the cold bootstrap, --check (and the rerun with --extended), rollouts, scaling, logs and a --diff -v
    deploy: no lab secret (raw, escaped or base64 as in a Secret's data) in any node's journal or /var/log (the
    pods' logs included), nor in any run record on the controller."""
    assert_no_secret_leaks(LAB)


@pytest.mark.extended
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


@pytest.mark.extended
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
