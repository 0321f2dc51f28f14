"""--mode docker end to end, on a 3-node lab of its own (node1: data services; node2, node3: apps), reached
like real servers (ssh as `ops` with sudo), each node running its own Docker engine (Debian's docker.io,
installed by the docker_engine role) that pulls from the lab registry with htpasswd credentials. One
converged lab serves every check, in order:

1. the reference stack, images built and pushed by `toolkit bootstrap` itself: an order travels front ->
   orders -> catalog -> PostgreSQL -> RabbitMQ -> billing, read back with real clients (psql, redis-cli,
   rabbitmqctl through `docker exec` in node1's engine); how the containers are wired, published, limited
   and checked; status JSON; the rerun (extended) and --check change nothing;
2. data survives `toolkit deploy` and a `docker restart` of the database container;
3. a new image tag of catalog is rolled out one host at a time while a client loop against the front counts
   zero failed requests;
4. bad input: an image missing from the registry fails naming it and the registry before any container is
   replaced; an app without an image is refused at validation (exit 2);
5. an app removed from the stack file is removed; reset keeps the volumes and a second bootstrap finds the
   data; lab down leaves nothing of the lab behind.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import ROOT, Lab, assert_no_secret_leaks, changed_hosts, recap, run_events, tasks_that_ran

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REFERENCE = ROOT / "stacks" / "reference.yml"
APPS = ("catalog", "orders", "billing", "front")
SERVICES = ("toolkit-postgresql", "toolkit-redis", "toolkit-rabbitmq")


def http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 20) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - a lab container address
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def inner(lab: Lab, node: str, *cmd: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """`docker ...` run by the node's own engine (the engine the docker_engine role installed there)."""
    return lab.exec(node, "docker", *cmd, env=env, check=check)


def inspect(lab: Lab, node: str, container: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(inner(lab, node, "inspect", container))
    return data[0]


def psql(lab: Lab, sql: str) -> str:
    # Inside the container, local socket connections are trusted (as in the official image).
    return inner(lab, "node1", "exec", "toolkit-postgresql", "psql", "-U", "shop", "-d", "shop", "-tAc", sql).strip()


def order(lab: Lab, front: str, billed: bool = True) -> int:
    """POST an order through the front; wait until PostgreSQL shows it (billed when `billed`)."""
    status, products = http("GET", f"{front}/api/products")
    assert status == 200 and products, products
    status, created = http("POST", f"{front}/api/orders", {"product_id": products[0]["id"], "quantity": 2})
    assert status == 201, created
    order_id = int(created["id"])
    want = "2|billed" if billed else "2|created"
    deadline, row = time.monotonic() + 90, ""
    while time.monotonic() < deadline:
        row = psql(lab, f"select quantity, status from orders where id = {order_id}")
        if row == want:
            break
        time.sleep(2)
    assert row == want, f"order {order_id}: {row!r}, expected {want!r}"
    return order_id


def container_ids(lab: Lab) -> dict[str, str]:
    """{node/container: id} of every stack container on the lab's nodes."""
    found = {}
    for node in ("node1", "node2", "node3"):
        lines = inner(lab, node, "ps", "-a", "--filter", "label=toolkit.stack=toolkit",
                      "--format", "{{.Names}} {{.ID}}").split()
        found.update({f"{node}/{name}": cid for name, cid in zip(lines[::2], lines[1::2])})
    return found


def stack_file(tmp_path: Path, name: str, change: Any) -> Path:
    """The reference stack, changed by `change(data)`, written to tmp_path/name."""
    data = yaml.safe_load(REFERENCE.read_text())
    change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def app_image(data: dict[str, Any], app: str, image: str) -> None:
    next(a for a in data["apps"] if a["name"] == app)["image"] = image


@pytest.fixture(scope="module")
def lab(require_docker: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab("toolkit-e2e-docker", 300, tmp_path_factory.mktemp("home-docker"))
    lab.toolkit("lab", "down")
    up = lab.toolkit("lab", "up", "--nodes", "3")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    try:
        yield lab
    finally:
        lab.down()
        left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=toolkit.lab={lab.name}"],
                              capture_output=True, text=True, check=True).stdout.split()
        assert left == [], "lab down left containers behind"
        volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=toolkit.lab={lab.name}"],
                                 capture_output=True, text=True, check=True).stdout.split()
        assert volumes == [], "lab down left volumes behind"


@pytest.fixture(scope="module")
def docker(lab: Lab) -> dict[str, Any]:
    """The reference stack, bootstrapped once: the artifacts and images are built and pushed by the CLI."""
    started = time.monotonic()
    first = recap(lab.toolkit("bootstrap", "--mode", "docker", "--output", "json"))
    addresses = lab.addresses()
    return {"first": first, "seconds": time.monotonic() - started, "addresses": addresses,
            "front": f"http://{addresses['node2']}:3000"}


# --- 1. the reference stack


def test_an_order_travels_through_the_whole_stack(lab: Lab, docker: dict[str, Any]) -> None:
    order_id = order(lab, docker["front"])
    assert psql(lab, f"select count(*) from invoices where order_id = {order_id}") == "1"
    # redis-cli reads the password from its environment (REDISCLI_AUTH), never from its arguments.
    cached = inner(lab, "node1", "exec", "-e", "REDISCLI_AUTH", "toolkit-redis", "redis-cli", "--no-auth-warning",
                   "GET", f"order:{order_id}", env={"REDISCLI_AUTH": lab.secret("nosql")})
    assert json.loads(cached)["id"] == order_id
    queues = inner(lab, "node1", "exec", "toolkit-rabbitmq", "rabbitmqctl", "-q", "list_queues", "-p", "shop",
                   "name", "messages")
    counts = dict(line.split() for line in queues.strip().splitlines() if line and not line.startswith("name"))
    assert int(counts["orders.audit"]) >= 1, queues
    status, bill = http("GET", f"{docker['front']}/api/invoices/{order_id}")
    assert status == 200 and int(bill["order_id"]) == order_id
    # The other app host's front serves the same stack.
    status, _ = http("GET", f"http://{docker['addresses']['node3']}:3000/api/products")
    assert status == 200


def test_containers_are_wired_published_limited_and_checked(lab: Lab, docker: dict[str, Any]) -> None:
    addresses = docker["addresses"]
    secrets = [lab.secret(name) for name in ("rdbms", "nosql", "queue")]
    for node, names in (("node1", SERVICES), ("node2", [f"toolkit-{a}" for a in APPS])):
        for name in names:
            info = inspect(lab, node, name)
            host = info["HostConfig"]
            assert (info["Config"].get("Healthcheck") or {}).get("Test"), f"{name} has no healthcheck"
            assert info["State"]["Health"]["Status"] == "healthy", name
            assert host["RestartPolicy"]["Name"] == "unless-stopped", name
            assert info["Config"]["StopTimeout"] == 20, name
            assert host["Memory"] > 0 and host["NanoCpus"] > 0, name
            assert "toolkit" in info["NetworkSettings"]["Networks"], name
            assert info["Config"]["Image"].startswith("registry:5000/"), info["Config"]["Image"]
            # No secret on a command line or in a data service's environment (those read mounted files).
            argv = " ".join([info["Path"], *info["Args"]])
            assert not any(secret in argv for secret in secrets), f"a secret is on the command line of {name}"
            if node == "node1":
                assert not any(secret in " ".join(info["Config"]["Env"]) for secret in secrets), name
            # Only the front on every address; the rest on the host's private address.
            bindings = [b for ports in host["PortBindings"].values() for b in ports]
            expected = {"", "0.0.0.0"} if name == "toolkit-front" else {addresses[node]}
            assert bindings and all(b["HostIp"] in expected for b in bindings), (name, bindings)
    catalog = inspect(lab, "node2", "toolkit-catalog")
    assert catalog["HostConfig"]["Memory"] == 256 * 2**20 and catalog["HostConfig"]["NanoCpus"] == 500_000_000
    postgres = inspect(lab, "node1", "toolkit-postgresql")
    assert any(m["Type"] == "volume" and m["Name"] == "toolkit-postgresql-data" for m in postgres["Mounts"])
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password" in postgres["Config"]["Env"]
    # Secret files: root's directory; readable by root, or by the image's service account alone (uid 999).
    modes = lab.exec("node1", "stat", "-c", "%a %u", "/etc/toolkit/docker", "/etc/toolkit/docker/postgresql-password",
                     "/etc/toolkit/docker/redis.conf", "/etc/toolkit/docker/rabbitmq-advanced.config").split("\n")
    assert modes[:4] == ["700 0", "400 0", "400 999", "400 999"], modes
    # Each app gets only what it uses: on this host by container name, on the other at its address.
    env = dict(e.split("=", 1) for e in inspect(lab, "node2", "toolkit-front")["Config"]["Env"])
    assert env["CATALOG_URLS"] == f"http://toolkit-catalog:8081,http://{addresses['node3']}:8081"
    assert not any("PASSWORD" in key for key in env), sorted(env)
    env = dict(e.split("=", 1) for e in inspect(lab, "node3", "toolkit-orders")["Config"]["Env"])
    assert env["DB_URL"] == f"jdbc:postgresql://{addresses['node1']}:5432/shop"
    assert env["AMQP_ADDRESSES"] == f"{addresses['node1']}:5672" and "AMQP_PASSWORD" in env
    assert "AMQP_PASSWORD" not in dict(e.split("=", 1) for e in inspect(lab, "node3", "toolkit-catalog")["Config"]["Env"])


def test_status_shows_every_container_healthy_with_its_image(lab: Lab, docker: dict[str, Any]) -> None:
    result = recap(lab.toolkit("status", "--mode", "docker", "--output", "json"))
    containers = result["data"]["containers"]
    assert sorted(containers["node1"]) == sorted(SERVICES)
    assert containers["node1"]["toolkit-postgresql"]["image"] == "registry:5000/library/postgres:17"
    for node in ("node2", "node3"):
        assert sorted(containers[node]) == sorted(f"toolkit-{a}" for a in APPS)
        assert containers[node]["toolkit-catalog"]["image"] == "registry:5000/toolkit/catalog:0.1.0"
    for node, boxes in containers.items():
        for name, box in boxes.items():
            assert (box["state"], box["health"]) == ("running", "healthy"), f"{node} {name}: {box}"


@pytest.mark.extended
def test_rerun_reports_zero_changed(lab: Lab, docker: dict[str, Any]) -> None:
    """A whole rerun. The default run keeps the --check below and the apps' no-op deploys further down."""
    result = recap(lab.toolkit("bootstrap", "--mode", "docker", "--output", "json"))
    assert changed_hosts(result) == {}, f"the rerun changed: {changed_hosts(result)}"


def test_check_reports_zero_changed(lab: Lab, docker: dict[str, Any]) -> None:
    """On the data host and one app host (node3 runs node2's tasks). With every package installed, no role
    calls apt (dpkg answers; apt would load its whole cache)."""
    result = recap(lab.toolkit("bootstrap", "--mode", "docker", "--check", "--limit", "node1,node2", "--output", "json"))
    assert changed_hosts(result) == {}, f"--check changed: {changed_hosts(result)}"
    ran = tasks_that_ran(Path(result["artifacts"]), "ansible.builtin.apt")
    assert ran == [], f"--check ran apt with every package installed: {ran}"


def test_no_secret_in_any_log_container_log_or_run_record(lab: Lab, docker: dict[str, Any]) -> None:
    """After the bootstrap, --check (and the whole rerun with --extended) and a --diff deploy: no lab secret
    (database, Redis, broker, registry) in any node's journal or /var/log, in any container's log, or in the
    controller's run records.
    (The engine's own state, config.v2.json, holds the apps' environment by design: root only, not a log.)"""
    result = recap(lab.toolkit("deploy", "--mode", "docker", "--diff", "--output", "json"))
    assert changed_hosts(result) == {}, changed_hosts(result)
    assert_no_secret_leaks(lab, extra_paths=("/var/lib/docker/containers",), extra_match=r"-json\.log(\.\d+)?$")


# --- 2. data survives a deploy and a restart of the database container


def test_data_survives_deploy_and_a_database_restart(lab: Lab, docker: dict[str, Any]) -> None:
    psql(lab, "create table if not exists e2e_marker (note text); insert into e2e_marker values ('before deploy')")
    deployed = recap(lab.toolkit("deploy", "--mode", "docker", "--output", "json"))
    assert changed_hosts(deployed) == {}, changed_hosts(deployed)
    assert psql(lab, "select note from e2e_marker") == "before deploy"
    psql(lab, "insert into e2e_marker values ('before restart')")
    before = inspect(lab, "node1", "toolkit-postgresql")["Id"]
    inner(lab, "node1", "restart", "toolkit-postgresql")
    deadline = time.monotonic() + 120
    while inspect(lab, "node1", "toolkit-postgresql")["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, "PostgreSQL did not become healthy after docker restart"
        time.sleep(2)
    assert inspect(lab, "node1", "toolkit-postgresql")["Id"] == before
    assert psql(lab, "select note from e2e_marker order by note") == "before deploy\nbefore restart"
    order(lab, docker["front"])  # the apps reconnected


# --- 3. a new image, rolled out one host at a time under load


class ClientLoop(threading.Thread):
    """Requests against the front until stopped, or `limit` requests, or `seconds`: counts the failures.

    Mostly GET /api/products (front -> catalog); every tenth a POST /api/orders (front -> orders -> catalog).
    """

    def __init__(self, front: str, limit: int = 20000, seconds: float = 1200) -> None:
        super().__init__(daemon=True)
        self.front, self.limit, self.seconds = front, limit, seconds
        self.stop = threading.Event()
        self.done = 0
        self.failures: list[str] = []

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set() and self.done < self.limit and time.monotonic() - started < self.seconds:
            try:
                if self.done % 10 == 9:
                    status, body = http("POST", f"{self.front}/api/orders", {"product_id": 1, "quantity": 1})
                    ok = status == 201
                else:
                    status, body = http("GET", f"{self.front}/api/products")
                    ok = status == 200 and isinstance(body, list) and len(body) > 0
                if not ok:
                    self.failures.append(f"{time.monotonic() - started:.1f}s: {status} {str(body)[:200]}")
            except (OSError, ValueError) as exc:
                self.failures.append(f"{time.monotonic() - started:.1f}s: {exc!r}")
            self.done += 1
            time.sleep(0.05)


def replacement_spans(artifacts: Path, app: str) -> dict[str, tuple[str, str]]:
    """{host: (start, end)} of the task that replaced `app` in the rolling play, from the run's events."""
    spans: dict[str, list[str]] = {}
    for event in run_events(artifacts):
        data = event.get("event_data", {})
        if (data.get("play", "").startswith("Apps - replace") and data.get("task") == f"Run the container of {app}"
                and event.get("event") in ("runner_on_start", "runner_on_ok")):
            span = spans.setdefault(data["host"], ["", ""])
            span[0 if event["event"] == "runner_on_start" else 1] = event["created"]
    return {host: (start, end) for host, (start, end) in spans.items()}


def test_a_new_image_rolls_out_one_host_at_a_time_without_a_failed_request(
        lab: Lab, docker: dict[str, Any], tmp_path: Path) -> None:
    pushed = lab.toolkit("lab", "images", "--only", "catalog", "--app-tag", "catalog=0.1.1")
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    new = stack_file(tmp_path, "catalog-0.1.1.yml", lambda d: app_image(d, "catalog", "toolkit/catalog:0.1.1"))
    before = container_ids(lab)
    loop = ClientLoop(docker["front"])
    loop.start()
    try:
        time.sleep(3)
        deployed = recap(lab.toolkit("deploy", "--mode", "docker", "-s", str(new), "--output", "json"))
    finally:
        time.sleep(3)
        loop.stop.set()
        loop.join(60)
    assert loop.done > 100, f"only {loop.done} requests were made"
    assert loop.failures == [], f"{len(loop.failures)} of {loop.done} requests failed: {loop.failures[:10]}"
    assert deployed["status"] == "successful"
    after = container_ids(lab)
    replaced = sorted(key for key in before if before[key] != after.get(key))
    assert replaced == ["node2/toolkit-catalog", "node3/toolkit-catalog"], replaced
    # One host at a time: the replacement (which returns once the new container is healthy) of one host
    # ended before the other's began.
    spans = replacement_spans(Path(deployed["artifacts"]), "catalog")
    assert sorted(spans) == ["node2", "node3"], spans
    (_, (_, end)), (_, (start, _)) = sorted(spans.items(), key=lambda item: item[1][0])
    assert end <= start, f"the hosts' catalog replacements overlap: {spans}"
    for node in ("node2", "node3"):
        assert inspect(lab, node, "toolkit-catalog")["Config"]["Image"] == "registry:5000/toolkit/catalog:0.1.1"
    docker["stack"] = new


# --- 4. bad input


def test_a_missing_image_fails_before_any_container_is_replaced(
        lab: Lab, docker: dict[str, Any], tmp_path: Path) -> None:
    # An image `toolkit lab images` cannot build, so the CLI leaves it to the run.
    missing = stack_file(tmp_path, "missing.yml", lambda d: (app_image(d, "catalog", "toolkit/catalog:0.1.1"),
                                                             app_image(d, "front", "toolkit/front-next:9.9.9")))
    before = container_ids(lab)
    result = lab.toolkit("deploy", "--mode", "docker", "-s", str(missing), "--output", "json")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    messages = " ".join(f["message"] for f in json.loads(result.stdout)["failures"])
    assert "registry:5000/toolkit/front-next:9.9.9" in messages and "registry registry:5000" in messages, messages
    assert container_ids(lab) == before, "a container was replaced although an image was missing"


def test_an_app_without_an_image_is_refused_at_validation(lab: Lab, docker: dict[str, Any]) -> None:
    runs = sorted((lab.home / "runs").iterdir())
    result = lab.toolkit("bootstrap", "--mode", "docker", "-s", str(ROOT / "tests" / "data" / "bad" / "app-without-image.yml"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'apps[1].image' is missing" in result.stderr and "app-without-image.yml" in result.stderr, result.stderr
    assert sorted((lab.home / "runs").iterdir()) == runs, "a run started"


# --- 5. pruning, reset and bootstrap again


def test_an_app_removed_from_the_stack_is_removed(lab: Lab, docker: dict[str, Any], tmp_path: Path) -> None:
    def without_billing(data: dict[str, Any]) -> None:
        app_image(data, "catalog", "toolkit/catalog:0.1.1")
        data["apps"] = [a for a in data["apps"] if a["name"] != "billing"]
        for app in data["apps"]:
            app["uses"] = [u for u in app["uses"] if u != "billing"]

    result = recap(lab.toolkit("deploy", "--mode", "docker", "-s",
                               str(stack_file(tmp_path, "without-billing.yml", without_billing)), "--output", "json"))
    assert result["status"] == "successful"
    for node in ("node2", "node3"):
        names = inner(lab, node, "ps", "-a", "--format", "{{.Names}}").split()
        assert "toolkit-billing" not in names and "toolkit-front" in names, names
    order(lab, docker["front"], billed=False)


def test_reset_keeps_volumes_and_bootstrap_finds_the_data(lab: Lab, docker: dict[str, Any]) -> None:
    before = psql(lab, "select count(*) from orders")
    assert int(before) >= 1
    reset = recap(lab.toolkit("reset", "--mode", "docker", "--yes", "--output", "json"))
    assert reset["status"] == "successful"
    for node in ("node1", "node2", "node3"):
        assert inner(lab, node, "ps", "-aq", "--filter", "label=toolkit.stack=toolkit").strip() == "", node
        assert "toolkit" not in inner(lab, node, "network", "ls", "--format", "{{.Name}}").split(), node
    volumes = inner(lab, "node1", "volume", "ls", "--format", "{{.Name}}").split()
    assert {"toolkit-postgresql-data", "toolkit-redis-data", "toolkit-rabbitmq-data"} <= set(volumes), volumes
    again = recap(lab.toolkit("bootstrap", "--mode", "docker", "--output", "json"))
    assert again["status"] == "successful"
    assert psql(lab, "select count(*) from orders") == before, "reset without --purge-data lost orders"
    assert psql(lab, "select note from e2e_marker order by note") == "before deploy\nbefore restart"
    order(lab, docker["front"])
