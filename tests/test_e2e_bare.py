"""--mode bare end to end, on a 3-node lab of its own (node1: data services; node2, node3: apps),
reached like real servers: ssh as `ops` with sudo, on internal networks, packages through the lab's
package cache. One converged lab serves every check, in order:

1. the lab itself: internal networks only, ssh with host keys checked, the package cache in use;
2. the reference stack (PostgreSQL, Redis, RabbitMQ, 3 Java 8 apps, the Node front), built and
   published by `toolkit bootstrap` itself: an order travels through all of it, read back with real
   clients; the Java services run Java 8; status; rerun and --check change nothing; every distinct tag
   selection runs in --check (extended); no secret in any log, also through a --diff run that rotates
   every secret to values of every odd character; each port open only to its clients;
3. a node whose sshd is down: named unreachable with its address, the others finish, the rerun converges;
   faults on the reference stack: a node lost mid-run (extended), dpkg interrupted, a full disk on the data
   host (before the variants below change the stack);
4. variants of the stack, each carrying an order end to end: two Java versions side by side (on the
   rotated secrets; extended: molecule's java scenario runs both versions in the default run); a stack
   without billing, deployed with `toolkit deploy` (pruned everywhere); MariaDB with Kafka;
5. the roles as a collection, used by their fully qualified names from a playbook elsewhere;
6. reset keeps the data and a second bootstrap finds it (extended: the docker e2e's reset test covers the
   same promise in the default run); reset --purge-data deletes it; lab down leaves nothing of the lab behind.

Tests marked `extended` cost a whole-stack run each: left out of the default run (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import BIN, ROOT, Lab, assert_no_secret_leaks, changed_hosts, lab_secrets, recap, tasks_that_ran

pytestmark = [pytest.mark.lab, pytest.mark.slow]
VARIANTS = ROOT / "stacks" / "variants"
ODD = "/ @ : % # ' $"  # every secret of the rotation test holds all of these and a space


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:  # noqa: S310 - a lab container address
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def psql(lab: Lab, sql: str) -> str:
    return lab.exec("node1", "runuser", "-u", "postgres", "--", "psql", "-d", "shop", "-tAc", sql).strip()


def mariadb(lab: Lab, sql: str) -> str:
    return lab.exec("node1", "mariadb", "-N", "-B", "shop", "-e", sql).strip()


def order(lab: Lab, front: str, billed: bool, read: Any) -> int:
    """POST an order through the front; wait until `read(id)` shows it (billed when `billed`)."""
    status, products = http("GET", f"{front}/api/products")
    assert status == 200 and products, products
    status, created = http("POST", f"{front}/api/orders", {"product_id": products[0]["id"], "quantity": 2})
    assert status == 201, created
    order_id = int(created["id"])
    want = "2|billed" if billed else "2|created"
    deadline, row = time.monotonic() + 90, ""
    while time.monotonic() < deadline:
        row = read(order_id)
        if row == want:
            break
        time.sleep(2)
    assert row == want, f"order {order_id}: {row!r}, expected {want!r}"
    return order_id


def pg_row(lab: Lab) -> Any:
    return lambda order_id: psql(lab, f"select quantity, status from orders where id = {order_id}")


@pytest.fixture(scope="module")
def lab(require_docker: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab("toolkit-e2e-bare", 100, tmp_path_factory.mktemp("home-bare"))
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
        nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"label=toolkit.lab={lab.name}"],
                              capture_output=True, text=True, check=True).stdout.split()
        assert nets == [], "lab down left networks behind"


@pytest.fixture(scope="module")
def bare(lab: Lab) -> dict[str, Any]:
    """The reference stack, bootstrapped once: the artifacts are built and published by the CLI.

    First --check on the fresh lab: refused while the artifacts are not published (a check builds nothing);
    then, with the example apps published by hand, every role must get through check mode on fresh nodes.
    """
    refused = lab.toolkit("bootstrap", "--mode", "bare", "--check")
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "lacks catalog.jar" in refused.stderr and "without --check builds" in refused.stderr
    build = subprocess.run([str(ROOT / "apps" / "build.sh"), str(lab.lab_dir() / "files")], capture_output=True,
                           text=True, env={**os.environ, "SKIP_TESTS": "1"})
    assert build.returncode == 0, build.stderr[-3000:]
    check = recap(lab.toolkit("bootstrap", "--mode", "bare", "--check", "--output", "json"))
    started = time.monotonic()
    first = recap(lab.toolkit("bootstrap", "--mode", "bare", "--output", "json"))
    return {"check": check, "first": first, "seconds": time.monotonic() - started, "addresses": lab.addresses()}


# --- 1. the lab as servers, isolated


def test_lab_nodes_sit_only_on_internal_networks(lab: Lab) -> None:
    status = lab.status()
    nodes = [c for c in status["containers"] if c["kind"] == "node"]
    assert sorted(c["node"] for c in nodes) == ["node1", "node2", "node3"]
    assert all(c["state"] == "running" and c["address"] for c in nodes)
    for node in nodes:
        for network in node["networks"]:
            info = json.loads(subprocess.run(["docker", "network", "inspect", network], capture_output=True,
                                             text=True, check=True).stdout)[0]
            assert info["Internal"], f"{node['node']} is on {network}, which routes off the machine"
    services = {c["container"] for c in status["containers"] if c["kind"] == "service"}
    assert services == {f"{lab.name}-files", f"{lab.name}-registry"}
    # Nothing answers outside: a direct connection to Debian's mirror has no route.
    probe = lab.exec("node2", "sh", "-c", "curl -s -m 5 -o /dev/null http://deb.debian.org/ && echo reached || echo no-route",
                     check=False)
    assert "no-route" in probe


def test_lab_is_reached_over_ssh_as_an_operator_with_sudo(lab: Lab) -> None:
    address = lab.addresses()["node2"]
    ssh_dir = lab.lab_dir() / "ssh"
    assert oct((ssh_dir / "id_ed25519").stat().st_mode & 0o777) == "0o600"
    base = ["ssh", "-i", str(ssh_dir / "id_ed25519"), "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    who = subprocess.run([*base, f"ops@{address}", "id -un; sudo -n id -un"], capture_output=True, text=True)
    assert who.returncode == 0 and who.stdout.split() == ["ops", "root"], who.stdout + who.stderr
    root = subprocess.run([*base, f"root@{address}", "true"], capture_output=True, text=True)
    assert root.returncode != 0, "root may log in over ssh"
    inventory = (lab.lab_dir() / "inventory" / "hosts.yml").read_text()
    assert "ansible_connection: ssh" in inventory and "StrictHostKeyChecking=yes" in inventory


def test_packages_come_through_the_lab_package_cache(lab: Lab, bare: dict[str, Any]) -> None:
    log = subprocess.run(["docker", "exec", "toolkit-aptcache", "cat", "/var/log/apt-cacher-ng/apt-cacher.log"],
                         capture_output=True, text=True, check=True).stdout
    node_ips = set(bare["addresses"].values())
    clients = {line.split("|")[3] for line in log.splitlines() if line.count("|") >= 4}
    assert node_ips & clients, f"no node of the lab fetched through the package cache ({sorted(clients)[:5]})"
    # The cache forwards to Debian's mirror only.
    refused = lab.exec("node2", "sh", "-c", "curl -s -o /dev/null -w '%{http_code}' -x "
                       "$(/usr/local/lib/toolkit-lab/apt-proxy) http://download.docker.com/linux/debian/gpg", check=False)
    assert refused.strip() == "403", refused


# --- 2. the reference stack


def test_an_order_travels_through_the_whole_stack(lab: Lab, bare: dict[str, Any]) -> None:
    front = f"http://{bare['addresses']['node2']}:3000"
    order_id = order(lab, front, billed=True, read=pg_row(lab))
    assert psql(lab, f"select count(*) from invoices where order_id = {order_id}") == "1"
    cached = lab.exec("node1", "redis-cli", "--no-auth-warning", "GET", f"order:{order_id}",
                      env={"REDISCLI_AUTH": lab.secret("nosql")})
    assert json.loads(cached)["id"] == order_id
    queues = lab.exec("node1", "rabbitmqctl", "-q", "list_queues", "-p", "shop", "name", "messages")
    counts = dict(line.split() for line in queues.strip().splitlines() if line and not line.startswith("name"))
    assert int(counts["orders.audit"]) >= 1, queues
    status, bill = http("GET", f"{front}/api/invoices/{order_id}")
    assert status == 200 and int(bill["order_id"]) == order_id


def test_java_services_run_on_java_8(lab: Lab, bare: dict[str, Any]) -> None:
    for node in ("node2", "node3"):
        for app in ("catalog", "orders", "billing"):
            pid = lab.exec(node, "systemctl", "show", "-p", "MainPID", "--value", f"toolkit-{app}").strip()
            exe = lab.exec(node, "readlink", f"/proc/{pid}/exe").strip()
            assert "java-8" in exe, f"{app} on {node} runs {exe}"


def test_apps_run_as_the_service_account_that_cannot_log_in(lab: Lab, bare: dict[str, Any]) -> None:
    """common's service account (molecule/common's checks, now on the converged lab): a system account
    with its home 0750, no password and no login shell; every app's process runs as it."""
    for node in ("node2", "node3"):
        passwd = lab.exec(node, "getent", "passwd", "toolkit").strip().split(":")
        assert int(passwd[2]) < 1000 and passwd[5] == "/var/lib/toolkit" and passwd[6] == "/usr/sbin/nologin", passwd
        shadow = lab.exec(node, "getent", "shadow", "toolkit").strip().split(":")
        assert shadow[1][:1] in ("!", "*"), "the service account has a password"
        assert lab.exec(node, "stat", "-c", "%U:%G %a", "/var/lib/toolkit").strip() == "toolkit:toolkit 750"
        login = lab.exec(node, "su", "-", "toolkit", "-c", "id", check=False)
        assert "uid=" not in login, f"{node}: the service account got a login shell: {login}"
        for app in ("catalog", "orders", "billing", "front"):
            pid = lab.exec(node, "systemctl", "show", "-p", "MainPID", "--value", f"toolkit-{app}").strip()
            assert lab.exec(node, "ps", "-o", "user=", "-p", pid).strip() == "toolkit", f"{app} on {node}"


def test_each_app_gets_only_the_secrets_it_uses(lab: Lab, bare: dict[str, Any]) -> None:
    front_env = lab.exec("node2", "cat", "/etc/toolkit/front.env")
    assert "PASSWORD" not in front_env and "CATALOG_URLS=" in front_env
    catalog_env = lab.exec("node2", "cat", "/etc/toolkit/catalog.env")
    assert "DB_PASSWORD" in catalog_env and "AMQP_PASSWORD" not in catalog_env
    # Every instance of a used app, so the caller fails over between hosts.
    addresses = bare["addresses"]
    assert f"http://{addresses['node2']}:8081" in front_env and f"http://{addresses['node3']}:8081" in front_env


def test_status_shows_every_service_running(lab: Lab, bare: dict[str, Any]) -> None:
    result = recap(lab.toolkit("status", "--mode", "bare", "--output", "json"))
    services = result["data"]["services"]
    assert set(services["node1"].values()) == {"running"}, services["node1"]
    units = sorted(unit.split("@")[0].removesuffix(".service") for unit in services["node1"])
    assert units == ["postgresql", "rabbitmq-server", "redis-server"], units
    for node in ("node2", "node3"):
        assert set(services[node].values()) == {"running"}, services[node]


def test_a_missing_artifact_is_named_before_any_host_changes(lab: Lab, bare: dict[str, Any], tmp_path: Path) -> None:
    """With an explicit inventory (as on real servers) the playbook checks every artifact at its source."""
    text = (ROOT / "stacks" / "reference.yml").read_text().replace("artifact: billing.jar", "artifact: nope.jar")
    stack_file = tmp_path / "nope.yml"
    stack_file.write_text(text)
    result = lab.toolkit("bootstrap", "--mode", "bare", "-i", str(lab.lab_dir() / "inventory"), "-s", str(stack_file),
                         "--output", "json")
    assert result.returncode == 1, result.stderr[-2000:]
    data = json.loads(result.stdout)
    message = " ".join(f["message"] for f in data["failures"])
    assert "SHA256SUMS does not list nope.jar" in message and "billing" in message, message
    assert all(c["changed"] == 0 for c in data["hosts"].values()), data["hosts"]


def test_rerun_and_check_report_zero_changed(lab: Lab, bare: dict[str, Any]) -> None:
    """The whole rerun on every node; --check on the data host and one app host (node3 runs node2's tasks).
    With every package installed, no role calls apt (dpkg answers; apt would load its whole cache)."""
    for args in (["bootstrap", "--mode", "bare"],
                 ["bootstrap", "--mode", "bare", "--check", "--limit", "node1,node2"]):
        result = recap(lab.toolkit(*args, "--output", "json"))
        assert changed_hosts(result) == {}, f"{' '.join(args)} changed: {changed_hosts(result)}"
        ran = tasks_that_ran(Path(result["artifacts"]), "ansible.builtin.apt")
        assert ran == [], f"{' '.join(args)} ran apt with every package installed: {ran}"


def tag_lists() -> list[set[str]]:
    """Every `tags:` list of the bare playbook and of the roles (a string counts as a list of one)."""
    found: list[set[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "tags" and isinstance(value, (str, list)):
                    found.append({value} if isinstance(value, str) else {str(v) for v in value})
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in [ROOT / "playbooks" / "bootstrap_bare.yml", *sorted((ROOT / "roles").rglob("*.yml"))]:
        walk(yaml.safe_load(path.read_text()))
    return found


def tag_selections() -> dict[str, list[str]]:
    """Every role name and every tag docs/tags.md lists for bare mode, grouped by the tasks they select.

    Two tags that stand in exactly the same `tags:` lists select exactly the same tasks (a task's tags are
    the union of its own and its parents' lists), so each group needs one run; the first name speaks for
    the group. `stack` is left out: it selects the plays of rdbms, nosql, queue, runtime and apps, each run
    here on its own, and the rerun test's `--check` runs every one of its tasks in the same order.
    """
    table = (ROOT / "docs" / "tags.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+)`", table, re.M))
    roles = {"common", "postgresql", "redis", "rabbitmq", "java", "nodejs", "app", "download"}
    bare_tags = {"common", "rdbms", "nosql", "queue", "runtime", "apps", "deploy"}
    lists = tag_lists()
    groups: dict[frozenset[int], list[str]] = {}
    for tag in sorted((listed & bare_tags) | roles):
        groups.setdefault(frozenset(i for i, tags in enumerate(lists) if tag in tags), []).append(tag)
    return {names[0]: names for names in groups.values()}


@pytest.mark.extended
def test_every_tag_selects_tasks(lab: Lab, bare: dict[str, Any]) -> None:
    """`--tags X --check` for every distinct selection of bare mode's role names and documented tags runs some
    task of it, and fails nowhere."""
    selections = tag_selections()
    assert selections["apps"] == ["apps", "deploy"], selections  # docs/tags.md: the same row, the same tasks

    def run(tag: str) -> tuple[str, int]:
        # The data host and one app host: node3 runs the same tasks as node2.
        result = recap(lab.toolkit("bootstrap", "--mode", "bare", "--check", "--tags", tag, "--limit", "node1,node2",
                                   "--output", "json"))
        # Preflight (tag always) runs 4 tasks on localhost and the artifact checks on one app server.
        ran = sum(c["ok"] + c["changed"] for host, c in result["hosts"].items() if host != "localhost")
        return tag, ran

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(pool.map(run, selections))
    baseline = dict([run("preflight")])["preflight"]
    empty = sorted(tag for tag, ran in results.items() if ran <= baseline)
    assert not empty, f"these tags select no task beyond the preflight: {empty} ({results}, baseline {baseline})"


# --- 2b. no secret anywhere; each port open only to its clients (issue 13)


def test_no_secret_in_any_log_or_run_record(lab: Lab, bare: dict[str, Any]) -> None:
    """Every node's journal and /var/log, and every run directory, after the full bootstraps above."""
    assert_no_secret_leaks(lab)


def assert_clients_use(lab: Lab, secrets: dict[str, str]) -> None:
    """The services follow the lab's secrets: Redis and PostgreSQL accept them from real clients on node1."""
    pong = lab.exec("node1", "redis-cli", "--no-auth-warning", "PING", env={"REDISCLI_AUTH": secrets["nosql"]})
    assert pong.strip() == "PONG", pong
    pg = lab.exec("node1", "sh", "-c", "PGPASSWORD=\"$P\" psql -h 127.0.0.1 -U shop -d shop -tAc 'select 1'",
                  env={"P": secrets["rdbms"]})
    assert pg.strip() == "1"


def test_a_diff_run_that_rotates_the_secrets_shows_none(lab: Lab, bare: dict[str, Any]) -> None:
    """--diff -v while every secret changes (env files, redis.conf, users' passwords): neither the old values
    nor the new ones appear anywhere; the stack follows the new ones."""
    before = {f"{kind} before the rotation": value for kind, value in lab_secrets(lab.home).items()}
    rotate_secrets(lab, "diffed")
    result = recap(lab.toolkit("bootstrap", "--mode", "bare", "--diff", "-v", "--output", "json"))
    changed = changed_hosts(result)
    assert {"node1", "node2", "node3"} <= set(changed), f"the rotation changed only {changed}"
    order(lab, f"http://{bare['addresses']['node2']}:3000", billed=True, read=pg_row(lab))
    secrets = lab_secrets(lab.home)
    assert_clients_use(lab, secrets)
    assert_no_secret_leaks(lab, secrets={**before, **secrets})


def answers(lab: Lab, source: str | None, host: str, port: int) -> bool:
    """Whether a TCP connection to host:port is accepted from `source` (a node, or None: the controller)."""
    if source is None:
        try:
            with socket.create_connection((host, port), timeout=3):
                return True
        except OSError:
            return False
    out = lab.exec(source, "bash", "-c", f"timeout 3 bash -c '</dev/tcp/{host}/{port}' 2>/dev/null && echo open || echo closed",
                   check=False)
    return out.strip().endswith("open")


def listeners(lab: Lab, node: str) -> set[str]:
    """The node's listening TCP sockets as ADDRESS:PORT."""
    out = lab.exec(node, "ss", "-Hltn")
    return {line.split()[3] for line in out.splitlines() if line.strip()}


def test_data_ports_answer_only_the_app_hosts(lab: Lab, bare: dict[str, Any]) -> None:
    data = bare["addresses"]["node1"]
    for port in (5432, 6379, 5672):
        assert answers(lab, "node2", data, port), f"{port} on the data host does not answer an app host"
        assert not answers(lab, None, data, port), f"{port} on the data host answers the controller"
    # RabbitMQ's management UI, epmd and distribution port: loopback only (one-node queue), closed to all.
    on_node1 = listeners(lab, "node1")
    assert {"127.0.0.1:15672", "127.0.0.1:4369", "127.0.0.1:25672"} <= on_node1, on_node1
    assert not {a for a in on_node1 if a.rsplit(":", 1)[1] in ("4369", "25672", "15672") and
                not a.startswith("127.0.0.1:")}, on_node1
    for port in (4369, 25672, 15672):
        assert not answers(lab, "node2", data, port), f"{port} on the data host answers an app host"
    # The toolkit's table stands beside the others (Docker's own nat table inside the node).
    tables = lab.exec("node1", "nft", "list", "tables")
    assert "table inet toolkit" in tables and "table ip nat" in tables, tables


def test_app_ports_answer_only_the_app_hosts_and_the_front_everyone(lab: Lab, bare: dict[str, Any]) -> None:
    app = bare["addresses"]["node2"]
    for port in (8081, 8082, 8083):
        assert answers(lab, "node3", app, port), f"{port} on an app host does not answer another app host"
        assert not answers(lab, None, app, port), f"{port} on an app host answers the controller"
        assert not answers(lab, "node1", app, port), f"{port} on an app host answers the data host"
        # Bound to loopback (its health check) and the private address only (BIND_ADDRESS).
        assert {a for a in listeners(lab, "node2") if a.endswith(f":{port}")} == {f"127.0.0.1:{port}", f"{app}:{port}"}
    assert answers(lab, None, app, 3000), "the front does not answer the controller"


# --- 3. a node that cannot be reached


def test_an_unreachable_node_is_named_and_the_rest_finish(lab: Lab, bare: dict[str, Any]) -> None:
    # Stop sshd and end its sessions too: an ssh master connection kept by ControlPersist would outlive it.
    lab.exec("node3", "sh", "-c", "systemctl stop ssh.socket ssh.service; pkill -x sshd-session; pkill -x sshd; true",
             check=False)
    try:
        broken = lab.toolkit("bootstrap", "--mode", "bare", "--output", "json")
        assert broken.returncode == 1, broken.stderr[-3000:]
        result = json.loads(broken.stdout)
        assert result["hosts"]["node3"]["unreachable"] >= 1
        assert all(result["hosts"][n]["failed"] == 0 and result["hosts"][n]["unreachable"] == 0
                   for n in ("node1", "node2"))
        # node2 finished the apps play: its last task ran.
        message = " ".join(f["message"] for f in result["failures"] if f["host"] == "node3")
        assert bare["addresses"]["node3"] in message, message
    finally:
        lab.exec("node3", "systemctl", "start", "ssh.service")
    # node1 and node2 finished every play above; the rerun for node3 converges it (0 failed, 0 unreachable).
    again = recap(lab.toolkit("bootstrap", "--mode", "bare", "--limit", "node3", "--output", "json"))
    assert again["hosts"]["node3"]["failed"] == 0 and again["hosts"]["node3"]["unreachable"] == 0, again["hosts"]


# --- 3b. faults on the reference stack: a node lost mid-run, dpkg interrupted, a full disk (issue 13)


def bootstrap_until(lab: Lab, marker: str, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `toolkit bootstrap --mode bare --output json` and read its progress (stderr) until a line holds
    `marker`; returns the running process and the lines read."""
    exe = shutil.which("toolkit", path=str(BIN)) or "toolkit"
    proc = subprocess.Popen([exe, "bootstrap", "--mode", "bare", "--output", "json", *args], cwd=ROOT, text=True,
                            env={**os.environ, **lab.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            return proc, seen
    proc.wait()
    raise AssertionError(f"the run ended before '{marker}': {''.join(seen)[-3000:]}")


@pytest.mark.extended
def test_a_node_stopped_mid_run_is_named_and_converges_when_back(lab: Lab, bare: dict[str, Any]) -> None:
    """node3 (an app host) goes down while node1 installs the data services: the recap names it unreachable,
    node1 and node2 finish every play (node2 its apps and their rolling restart), and once node3 is back
    (its services and its firewall start at boot) the rerun converges it."""
    proc, seen = bootstrap_until(lab, "PLAY RDBMS")
    subprocess.run(["docker", "kill", lab.container("node3")], check=True, capture_output=True)
    stdout, rest = proc.communicate(timeout=3600)
    assert proc.returncode == 1, "".join(seen)[-2000:] + rest[-3000:]
    result = json.loads(stdout)
    assert result["hosts"]["node3"]["unreachable"] >= 1, result["hosts"]
    for node in ("node1", "node2"):
        assert result["hosts"][node]["failed"] == 0 and result["hosts"][node]["unreachable"] == 0, result["hosts"]
    assert all(f["host"] == "node3" for f in result["failures"]), result["failures"]
    assert "PLAY Apps - the stack" in rest, rest[-3000:]  # node2 went on to its apps
    subprocess.run(["docker", "start", lab.container("node3")], check=True, capture_output=True)
    up = lab.toolkit("lab", "up")  # the node's address and host key, as the lab sees them now
    assert up.returncode == 0, up.stderr[-2000:]
    lab.exec("node3", "sh", "-c", "timeout 180 systemctl is-system-running --wait >/dev/null 2>&1; true")
    assert "table inet toolkit" in lab.exec("node3", "nft", "list", "tables"), "the firewall did not come back at boot"
    # node1 and node2 finished every play above: the rerun is node3's.
    again = recap(lab.toolkit("bootstrap", "--mode", "bare", "--limit", "node3", "--output", "json"))
    assert again["hosts"]["node3"]["failed"] == 0 and again["hosts"]["node3"]["unreachable"] == 0, again["hosts"]
    status, _ = http("GET", f"http://{lab.addresses()['node3']}:3000/api/products")
    assert status == 200


DPKG_WATCHER = """echo $$ > /run/toolkit-e2e-dpkg-watcher.pid
for i in $(seq 1 60000); do
  if ls /var/lib/dpkg/updates 2>/dev/null | grep -q '^[0-9]'; then
    pid=$(pidof dpkg) && kill -9 $pid && echo "$pid" > /run/toolkit-e2e-dpkg-killed && exit 0
  fi
  sleep 0.01
done"""


def test_an_interrupted_dpkg_is_repaired_by_the_rerun(lab: Lab, bare: dict[str, Any]) -> None:
    """dpkg is killed on node2 halfway through an install the run started (a package added for node2 alone):
    the run fails there with dpkg interrupted; the rerun finishes dpkg's work and installs the package."""
    host_vars = lab.lab_dir() / "inventory" / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "node2.yml").write_text("common_packages: [vim-runtime]\n")
    lab.exec("node2", "sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q vim-runtime >/dev/null 2>&1; "
             "rm -f /run/toolkit-e2e-dpkg-killed")
    subprocess.run(["docker", "exec", "-d", lab.container("node2"), "bash", "-c", DPKG_WATCHER], check=True)
    args = ("bootstrap", "--mode", "bare", "--tags", "common", "--limit", "node2", "--output", "json")
    try:
        broken = lab.toolkit(*args)
        assert lab.exec("node2", "cat", "/run/toolkit-e2e-dpkg-killed", check=False).strip().isdigit(), \
            "dpkg was never caught in the middle of an install"
        assert broken.returncode == 1, broken.stdout[-2000:] + broken.stderr[-3000:]
        failures = json.loads(broken.stdout)["failures"]
        assert [f["host"] for f in failures] == ["node2"], failures
        state = lab.exec("node2", "sh", "-c", "dpkg --audit; ls /var/lib/dpkg/updates", check=False)
        assert state.strip(), "dpkg does not look interrupted"
        again = recap(lab.toolkit(*args))
        assert again["hosts"]["node2"]["failed"] == 0 and changed_hosts(again).get("node2"), again["hosts"]
        assert lab.exec("node2", "dpkg", "--audit").strip() == ""
        installed = lab.exec("node2", "dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "vim-runtime")
        assert installed.strip() == "ii", installed
    finally:
        (host_vars / "node2.yml").unlink()
        lab.exec("node2", "sh", "-c", "kill $(cat /run/toolkit-e2e-dpkg-watcher.pid) 2>/dev/null; "
                 "rm -f /run/toolkit-e2e-dpkg-watcher.pid", check=False)


def test_a_full_disk_on_the_data_host_stops_the_run_and_keeps_the_data(lab: Lab, bare: dict[str, Any]) -> None:
    """PostgreSQL's data directory moved onto a small filesystem of its own (tmpfs) inside node1, never the
    machine's disk, with 64 MiB left free: room for PostgreSQL's own start (a new 16 MiB WAL segment; with only a
    few MiB it could not start at all), under the 256 MiB the role asks for (postgresql_data_min_free_mb). The run
    fails on node1 naming that filesystem and its free space, before PostgreSQL is touched; the orders are all
    there, on the small disk and back on the real one."""
    before = psql(lab, "select count(*) from orders")
    major = lab.exec("node1", "sh", "-c", "ls /etc/postgresql | sort -n | tail -1").strip()
    data, small, unit = f"/var/lib/postgresql/{major}/main", "/mnt/toolkit-e2e-small", f"postgresql@{major}-main"
    setup = f"""set -e
systemctl stop {unit}
mkdir -p {small}
used=$(du -sm {data} | cut -f1)
mount -t tmpfs -o size=$((used + 128))m,mode=0700 toolkit-e2e-small {small}
cp -a {data}/. {small}/
chown postgres:postgres {small}
mount --bind {small} {data}
free=$(df --output=avail -BM {small} | tail -1 | tr -dc 0-9)
dd if=/dev/zero of={small}/toolkit-e2e-ballast bs=1M count=$((free - 64)) status=none
systemctl start {unit}"""
    try:
        # In the try: a setup that fails half-way (say, PostgreSQL refusing to start) is undone below too.
        lab.exec("node1", "bash", "-c", setup)
        assert psql(lab, "select count(*) from orders") == before
        failed = lab.toolkit("bootstrap", "--mode", "bare", "--tags", "rdbms", "--output", "json")
        assert failed.returncode == 1, failed.stdout[-2000:] + failed.stderr[-3000:]
        failures = json.loads(failed.stdout)["failures"]
        assert [f["host"] for f in failures] == ["node1"], failures
        message = failures[0]["message"]
        assert "toolkit-e2e-small" in message and f"mounted at {data}" in message and "MiB free" in message, message
        assert psql(lab, "select count(*) from orders") == before
        assert lab.exec("node1", "systemctl", "is-active", unit).strip() == "active"
    finally:
        lab.exec("node1", "bash", "-c", f"systemctl stop {unit}; umount {data}; umount {small}; rmdir {small}; "
                 f"systemctl start {unit}", check=False)
    assert psql(lab, "select count(*) from orders") == before


# --- 4. variants of the stack


def rotate_secrets(lab: Lab, suffix: str) -> dict[str, str]:
    """New lab secrets holding every odd character, written where the lab inventory reads them."""
    values = {name: f"{name}-{suffix} {ODD}" for name in ("rdbms", "nosql", "queue")}
    for name, value in values.items():
        (lab.lab_dir() / "secrets" / name).write_text(value)
    up = lab.toolkit("lab", "up")  # rewrites the inventory's secrets file from the secrets
    assert up.returncode == 0, up.stderr[-2000:]
    return values


@pytest.mark.extended
def test_two_javas_side_by_side_with_rotated_odd_secrets(lab: Lab, bare: dict[str, Any]) -> None:
    """Java 21 for orders beside Java 8, on the secrets of every odd character that the --diff test rotated
    (one rotation serves both: a `lab up` and a whole-stack change less)."""
    secrets = lab_secrets(lab.home)
    assert all(ODD in secrets[name] for name in ("rdbms", "nosql", "queue")), "the rotation test did not run first"
    recap(lab.toolkit("bootstrap", "--mode", "bare", "-s", str(VARIANTS / "two-javas.yml"), "--output", "json"))
    front = f"http://{bare['addresses']['node3']}:3000"
    order(lab, front, billed=True, read=pg_row(lab))
    for node in ("node2", "node3"):
        versions = {}
        for app in ("catalog", "orders", "billing"):
            pid = lab.exec(node, "systemctl", "show", "-p", "MainPID", "--value", f"toolkit-{app}").strip()
            versions[app] = lab.exec(node, "readlink", f"/proc/{pid}/exe").strip()
        assert "java-21" in versions["orders"] and "java-8" in versions["catalog"], versions
    assert_clients_use(lab, secrets)


def test_a_removed_app_is_pruned_everywhere(lab: Lab, bare: dict[str, Any]) -> None:
    # `toolkit deploy` (the apps only), as an operator drops an app: pruning is part of the apps' plays.
    recap(lab.toolkit("deploy", "--mode", "bare", "-s", str(VARIANTS / "without-billing.yml"), "--output", "json"))
    for node in ("node2", "node3"):
        state = lab.exec(node, "systemctl", "show", "-p", "LoadState", "--value", "toolkit-billing", check=False)
        assert state.strip() == "not-found", f"billing still on {node}"
        assert lab.exec(node, "sh", "-c", "ls /opt/toolkit /etc/toolkit").count("billing") == 0
    front = f"http://{bare['addresses']['node2']}:3000"
    order(lab, front, billed=False, read=pg_row(lab))


def test_mariadb_with_kafka(lab: Lab, bare: dict[str, Any]) -> None:
    recap(lab.toolkit("bootstrap", "--mode", "bare", "-s", str(VARIANTS / "mariadb-kafka.yml"), "--output", "json"))
    front = f"http://{bare['addresses']['node2']}:3000"
    order_id = order(lab, front, billed=True,
                     read=lambda i: mariadb(lab, f"select concat(quantity, '|', status) from orders where id = {i}"))
    assert mariadb(lab, f"select count(*) from invoices where order_id = {order_id}") == "1"
    topics = lab.exec("node1", "sh", "-c", "/opt/kafka/bin/kafka-topics.sh --bootstrap-server "
                      f"{bare['addresses']['node1']}:9092 --list")
    assert "orders" in topics.split()


# --- 5. the roles as a collection


def test_roles_are_reusable_from_the_collection(lab: Lab, tmp_path: Path) -> None:
    built = subprocess.run([str(ROOT / "scripts" / "build-collection"), str(tmp_path / "dist")],
                           capture_output=True, text=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert built.returncode == 0, built.stderr
    tarball = built.stdout.strip().splitlines()[-1]
    collections = tmp_path / "collections"
    install = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps",
                              "-p", str(collections), tarball], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        "- hosts: rdbms\n  become: true\n  roles:\n    - role: toolkit.stack.postgresql\n"
        "      vars:\n        postgresql_databases: [{name: reuse_check, owner: postgres}]\n"
        "- hosts: apps[0]\n  become: true\n  roles:\n    - role: toolkit.stack.java\n"
        "      vars:\n        java_version: 8\n"
    )
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_ROLES_PATH": str(tmp_path / "none"),
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(lab.lab_dir() / "inventory"), str(playbook)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    listed = lab.exec("node1", "runuser", "-u", "postgres", "--", "psql", "-tAc",
                      "select datname from pg_database where datname = 'reuse_check'")
    assert listed.strip() == "reuse_check"


# --- 6. reset and bootstrap again


@pytest.mark.extended
def test_reset_keeps_data_and_bootstrap_works_again(lab: Lab, bare: dict[str, Any]) -> None:
    before = psql(lab, "select count(*) from orders")
    assert int(before) >= 1
    reset = recap(lab.toolkit("reset", "--mode", "bare", "--yes", "--output", "json"))
    assert reset["status"] == "successful"
    state = lab.exec("node2", "systemctl", "is-active", "toolkit-orders", check=False)
    assert state.strip() != "active"
    again = recap(lab.toolkit("bootstrap", "--mode", "bare", "--output", "json"))
    assert again["status"] == "successful"
    assert psql(lab, "select count(*) from orders") == before, "reset without --purge-data lost orders"
    status, _ = http("GET", f"http://{bare['addresses']['node3']}:3000/api/products")
    assert status == 200


def test_reset_with_purge_deletes_the_data(lab: Lab, bare: dict[str, Any]) -> None:
    """The remove entry points with their data: every service of the stack and its data go."""
    purge = recap(lab.toolkit("reset", "--mode", "bare", "--yes", "--purge-data", "--output", "json"))
    assert purge["status"] == "successful"
    left = lab.exec("node1", "sh", "-c", "ls -d /var/lib/postgresql /var/lib/redis /var/lib/rabbitmq 2>/dev/null || true")
    assert left.strip() == "", f"--purge-data left data behind: {left}"
    again = recap(lab.toolkit("reset", "--mode", "bare", "--yes", "--purge-data", "--output", "json"))
    assert changed_hosts(again) == {}, f"a second reset changed: {changed_hosts(again)}"
