"""The stack model (pytoolkit.stack): schema, defaults, normalisation, wiring, mode and inventory checks.

Pure Python over real files; the CLI's refusals of bad input are in test_validation.py (bad-input
corpus), and one test here runs the Ansible filter plugin inside a real ansible-playbook run.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytoolkit import inventory, stack
from pytoolkit.errors import UsageError
from pytoolkit.stack import image, quantity

ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted((ROOT / "stacks").rglob("*.yml"))
ODD = "p/@:%#'$ x"  # every character that broke URLs or shells before, and a space
SECRETS = {"rdbms_password": ODD + "1", "nosql_password": ODD + "2", "queue_password": ODD + "3"}
MINIMAL = {
    "name": "s",
    "rdbms": {"engine": "postgresql", "database": "shop", "user": "shop"},
    "nosql": {"engine": "redis"},
    "queue": {"engine": "rabbitmq"},
    "apps": [{"name": "catalog", "kind": "java", "artifact": "catalog.jar", "port": 8081}],
}


def reference() -> stack.Stack:
    return stack.load(ROOT / "stacks" / "reference.yml")


def with_app(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    data["apps"][0].update(changes)
    return data


def refused(data: Any, expect: str) -> str:
    with pytest.raises(UsageError) as caught:
        stack.validate(data, Path("/x/stack.yml"))
    message = str(caught.value)
    assert message.startswith("stack file /x/stack.yml"), message
    assert expect in message, message
    return message


# --- normalisation -------------------------------------------------------------------------------

def test_reference_stack_normalised_shape() -> None:
    data = stack.dump(reference())
    assert list(data) == ["name", "rdbms", "nosql", "queue", "apps"]
    assert data["rdbms"] == {"engine": "postgresql", "database": "shop", "user": "shop",
                             "image": "docker.io/library/postgres:17", "storage": "1Gi", "storage_bytes": 2**30}
    assert data["nosql"]["image"] == "docker.io/library/redis:8"
    assert data["nosql"]["maxmemory"] == "128mb"
    assert data["queue"] == {"engine": "rabbitmq", "vhost": "shop", "user": "shop",
                             "image": "docker.io/library/rabbitmq:4.0-management", "storage": "1Gi",
                             "storage_bytes": 2**30}
    catalog, orders, billing, front = data["apps"]
    assert catalog == {
        "name": "catalog", "kind": "java", "artifact": "catalog.jar", "port": 8081,
        "image": "docker.io/toolkit/catalog:0.1.0", "java_version": 8, "replicas": 2,
        "resources": {"cpu": "500m", "memory": "256Mi", "cpu_millicores": 500, "memory_bytes": 256 * 2**20},
        "env": {}, "health_path": "/health", "uses": ["rdbms", "nosql"],
    }
    assert orders["uses"] == ["catalog", "rdbms", "nosql", "queue"]
    assert billing["uses"] == ["rdbms", "nosql", "queue"]
    assert front["uses"] == ["catalog", "orders", "billing"]
    assert front["node_version"] == 20 and "java_version" not in front


def test_defaults_are_filled() -> None:
    data = stack.normalise(MINIMAL, "test")
    app = data["apps"][0]
    assert app["replicas"] == 1 and app["env"] == {} and app["health_path"] == "/health" and app["uses"] == []
    assert app["java_version"] == 8 and "image" not in app
    assert app["resources"] == {"cpu": "1", "memory": "512Mi", "cpu_millicores": 1000, "memory_bytes": 512 * 2**20}
    node = stack.normalise({**MINIMAL, "apps": [{"name": "f", "kind": "node", "artifact": "f.tgz", "port": 3000}]},
                           "test")["apps"][0]
    assert node["node_version"] == 20
    assert node["resources"] == {"cpu": "1", "memory": "256Mi", "cpu_millicores": 1000, "memory_bytes": 256 * 2**20}
    half = stack.normalise(with_app(resources={"cpu": "250m"}), "test")["apps"][0]["resources"]
    assert half == {"cpu": "250m", "memory": "512Mi", "cpu_millicores": 250, "memory_bytes": 512 * 2**20}


@pytest.mark.parametrize(("engine", "kind", "expected"), [
    ("rdbms", "postgresql", "docker.io/library/postgres:17"),
    ("rdbms", "mariadb", "docker.io/library/mariadb:11.8"),
    ("queue", "rabbitmq", "docker.io/library/rabbitmq:4.0-management"),
    ("queue", "kafka", "docker.io/apache/kafka:3.9.1"),
])
def test_service_images_default_by_engine(engine: str, kind: str, expected: str) -> None:
    data = copy.deepcopy(MINIMAL)
    data[engine]["engine"] = kind
    assert stack.normalise(data, "test")[engine]["image"] == expected


def test_service_image_and_storage_can_be_set() -> None:
    data = copy.deepcopy(MINIMAL)
    data["rdbms"].update(image="registry.example.com:5000/db/postgres:17.2", storage="20Gi", version=17)
    rdbms = stack.normalise(data, "test")["rdbms"]
    assert rdbms["image"] == "registry.example.com:5000/db/postgres:17.2"
    assert rdbms["storage_bytes"] == 20 * 2**30
    assert rdbms["version"] == "17"


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_normalising_is_idempotent(path: Path) -> None:
    model = stack.load(path)
    once = stack.dump(model)
    # Through YAML, as the CLI writes it into the run directory and the playbooks read it back.
    again = stack.normalise(yaml.safe_load(stack.to_yaml(model)), "run directory")
    assert again == once
    assert stack.normalise(again, "twice") == once


def test_odd_but_valid_inputs_normalise_idempotently() -> None:
    data = with_app(resources={"cpu": 2, "memory": 268435456}, env={"A": 1, "B": 1.5, "C": "x"},
                    image="localhost:5000/catalog", replicas=0)
    once = stack.normalise(data, "test")
    app = once["apps"][0]
    assert app["resources"] == {"cpu": "2", "memory": "268435456", "cpu_millicores": 2000, "memory_bytes": 268435456}
    assert app["env"] == {"A": "1", "B": "1.5", "C": "x"}
    assert app["image"] == "localhost:5000/catalog:latest"
    assert app["replicas"] == 0
    assert stack.normalise(once, "again") == once


def test_empty_values_count_as_absent() -> None:
    data = with_app(image=None, resources=None)
    assert "image" not in stack.normalise(data, "test")["apps"][0]
    refused({**MINIMAL, "rdbms": None}, "required key 'rdbms' is missing")


def test_derived_keys_must_agree() -> None:
    refused(with_app(resources={"cpu": "500m", "cpu_millicores": 400}),
            "'apps[0].resources.cpu_millicores' is 400 but cpu 500m gives 500; it is computed: remove it")
    refused(with_app(resources={"memory_bytes": 5}), "'apps[0].resources.memory_bytes' is given without 'memory'")
    data = copy.deepcopy(MINIMAL)
    data["nosql"]["storage_bytes"] = 1
    refused(data, "'nosql.storage_bytes' is 1 but storage 1Gi gives 1073741824")


# --- bad input: one sentence, the file and the key ------------------------------------------------

@pytest.mark.parametrize(("data", "expect"), [
    (["a list"], "must be a YAML mapping with keys name, rdbms, nosql, queue, apps"),
    ({k: v for k, v in MINIMAL.items() if k != "queue"}, "required key 'queue' is missing"),
    ({**MINIMAL, "colour": "red"}, "unknown key 'colour'. Allowed keys: name, rdbms, nosql, queue, apps."),
    ({**MINIMAL, "rdbms": {**MINIMAL["rdbms"], "storage_byte": 1}},
     "unknown key 'rdbms.storage_byte'. Allowed keys: image, storage, engine, database, user, version."),
    (with_app(resources={"cpus": 1}), "unknown key 'apps[0].resources.cpus'. Allowed keys: cpu, memory."),
    ({**MINIMAL, "rdbms": 5}, "'rdbms' must be a mapping, got 5."),
    ({**MINIMAL, "apps": {}}, "'apps' must be a list, got {}."),
    ({**MINIMAL, "apps": []}, "'apps' is empty; list at least one app."),
    (with_app(port=True), "'apps[0].port' must be an integer, got True."),
    (with_app(port=0), "'apps[0].port' is 0; expected 1-65535."),
    (with_app(port=70000), "'apps[0].port' is 70000; expected 1-65535."),
    (with_app(replicas=-2), "'apps[0].replicas' is -2; expected an integer >= 0."),
    (with_app(replicas="2"), "'apps[0].replicas' must be an integer, got '2'."),
    (with_app(kind="python"), "'apps[0].kind' is 'python'; supported: java, node."),
    (with_app(java_version="8"), "'apps[0].java_version' is '8'; supported: 8, 11, 17, 21."),
    (with_app(node_version=20), "'apps[0].node_version' is set on a java app."),
    (with_app(name="Catalog"), "'apps[0].name' is 'Catalog'; expected a DNS label"),
    (with_app(name="nosql"), "'apps[0].name' is 'nosql', a keyword of 'uses'"),
    (with_app(health_path="health"), "'apps[0].health_path' is 'health'; expected a path starting with '/'"),
    (with_app(artifact=" "), "'apps[0].artifact' is ' '; expected a non-empty string"),
    (with_app(uses="rdbms"), "'apps[0].uses' must be a list, got 'rdbms'."),
    (with_app(uses=["rdbms", "rdbms"]), "'apps[0].uses' names 'rdbms' twice."),
    (with_app(uses=["catalog"]), "'apps[0].uses[0]' names the app itself ('catalog')"),
    (with_app(uses=["cache"]), "'apps[0].uses[0]' is 'cache', which is neither an app of this stack (catalog) nor"),
    (with_app(env={"PORT": 1}), "'apps[0].env.PORT' is set by the toolkit"),
    (with_app(env={"CATALOG_URLS": "x"}), "'apps[0].env.CATALOG_URLS' is set by the toolkit"),
    (with_app(env={"A": True}), "'apps[0].env.A' must be a string or a number, got True."),
    (with_app(env={"A-B": "x"}), "'apps[0].env' has the key 'A-B'; expected environment variable names"),
    (with_app(resources={"cpu": "0"}), "'apps[0].resources.cpu' is '0'; expected a Kubernetes CPU quantity"),
    (with_app(resources={"memory": "256m"}), "'apps[0].resources.memory' is '256m'; expected a Kubernetes size"),
    (with_app(image="Team/App:1"), "'apps[0].image' is 'Team/App:1'; expected an image reference"),
    (with_app(image="app:bad tag"), "(empty or holds spaces)"),
    ({**MINIMAL, "nosql": {"engine": "redis", "maxmemory": "1G"}}, "'nosql.maxmemory' is '1G'; expected a size such"),
    ({**MINIMAL, "queue": {"engine": "rabbitmq", "vhost": ""}}, "'queue.vhost' is ''; expected a non-empty string"),
])
def test_bad_documents_are_told_in_one_sentence(data: Any, expect: str) -> None:
    message = refused(data, expect)
    assert "\n" not in message and message.endswith(".")


def test_a_uses_cycle_is_named() -> None:
    data = copy.deepcopy(MINIMAL)
    data["apps"] = [
        {"name": "a", "kind": "java", "artifact": "a.jar", "port": 1, "uses": ["b"]},
        {"name": "b", "kind": "java", "artifact": "b.jar", "port": 2, "uses": ["c", "rdbms"]},
        {"name": "c", "kind": "java", "artifact": "c.jar", "port": 3, "uses": ["b"]},
    ]
    refused(data, "'apps[1].uses' makes a cycle: b -> c -> b;")
    data["apps"][2]["uses"] = []
    stack.validate(data, "no cycle")  # a -> b -> c is a chain, not a cycle


def test_a_string_source_is_named_as_given() -> None:
    with pytest.raises(UsageError, match=r"^stack \(variable toolkit_stack\): required key 'name' is missing\.$"):
        stack.validate({k: v for k, v in MINIMAL.items() if k != "name"}, "stack (variable toolkit_stack)")


# --- quantities and image references -------------------------------------------------------------

@pytest.mark.parametrize(("text", "millicores"), [("500m", 500), ("0.5", 500), ("1", 1000), ("1.5", 1500),
                                                  ("0.001", 1), ("2", 2000), ("1500m", 1500)])
def test_cpu_quantities(text: str, millicores: int) -> None:
    assert quantity.cpu_millicores(text) == millicores


@pytest.mark.parametrize("text", ["", "0", "0m", "-1", "500x", "1e3", "0.0001", "half", "1 ", "m"])
def test_malformed_cpu_quantities(text: str) -> None:
    with pytest.raises(ValueError):
        quantity.cpu_millicores(text)


@pytest.mark.parametrize(("text", "size"), [("256Mi", 256 * 2**20), ("1Gi", 2**30), ("128M", 128 * 10**6),
                                            ("268435456", 268435456), ("1.5Gi", 3 * 2**29), ("64k", 64000),
                                            ("2Ti", 2 * 2**40)])
def test_size_quantities(text: str, size: int) -> None:
    assert quantity.size_bytes(text) == size


@pytest.mark.parametrize("text", ["", "0", "256MB", "256m", "256mi", "1e9", "-1Gi", "Gi", "1 Gi"])
def test_malformed_size_quantities(text: str) -> None:
    with pytest.raises(ValueError):
        quantity.size_bytes(text)


@pytest.mark.parametrize(("text", "full"), [
    ("postgres:17", "docker.io/library/postgres:17"),
    ("redis", "docker.io/library/redis:latest"),
    ("apache/kafka:3.9.1", "docker.io/apache/kafka:3.9.1"),
    ("index.docker.io/library/redis:7", "docker.io/library/redis:7"),
    ("docker.io/redis:7", "docker.io/library/redis:7"),
    ("localhost/app:1", "localhost/app:1"),
    ("localhost:5000/team/app", "localhost:5000/team/app:latest"),
    ("registry:5000/toolkit/catalog:0.1.0", "registry:5000/toolkit/catalog:0.1.0"),
    ("[fd00::1]:5000/app:1", "[fd00::1]:5000/app:1"),
    ("Registry.Example.com/a__b/c-d.e:v1.2_3", "Registry.Example.com/a__b/c-d.e:v1.2_3"),
    ("ghcr.io/org/app@sha256:" + "a" * 64, "ghcr.io/org/app@sha256:" + "a" * 64),
    ("app:1@sha256:" + "b" * 64, "docker.io/library/app:1@sha256:" + "b" * 64),
])
def test_image_references_normalise(text: str, full: str) -> None:
    assert image.normalise(text) == full
    assert image.normalise(full) == full


@pytest.mark.parametrize("text", ["", "App:1", "team/App", "app:", ":1", "app:-x", "a//b", "a/b/", "-a", "a-",
                                  "app@sha256:abc", "app@sha256:" + "a" * 63, "app@md5", "a b", "app:" + "x" * 129,
                                  "bad_host:5000/a", "a___b", "x/" + "a" * 260])
def test_malformed_image_references(text: str) -> None:
    with pytest.raises(ValueError, match=r"^an image reference"):
        image.parse(text)


def test_image_parts() -> None:
    ref = image.parse("registry.example.com:5000/team/app:1.2")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("registry.example.com:5000", "team/app", "1.2", None)


# --- the wiring ----------------------------------------------------------------------------------

def endpoints(**extra: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    found = {
        "rdbms": [("10.0.0.1", 5432)], "nosql": [("10.0.0.2", 6379)], "queue": [("10.0.0.3", 5672)],
        "catalog": [("10.0.1.1", 8081), ("10.0.1.2", 8081)], "orders": [("10.0.1.1", 8082), ("10.0.1.2", 8082)],
        "billing": [("10.0.1.1", 8083)],
    }
    found.update(extra)
    return found


def test_each_app_gets_only_what_it_uses() -> None:
    model = reference()
    catalog = stack.app_environment(model, "catalog", endpoints(), SECRETS)
    assert catalog == {
        "PORT": "8081", "SERVICE_NAME": "catalog",
        "DB_URL": "jdbc:postgresql://10.0.0.1:5432/shop", "DB_USER": "shop", "DB_PASSWORD": SECRETS["rdbms_password"],
        "REDIS_HOST": "10.0.0.2", "REDIS_PORT": "6379", "REDIS_PASSWORD": SECRETS["nosql_password"],
    }
    orders = stack.app_environment(model, "orders", endpoints(), SECRETS)
    assert orders["CATALOG_URLS"] == "http://10.0.1.1:8081,http://10.0.1.2:8081"
    assert orders["QUEUE_KIND"] == "rabbitmq"
    assert orders["AMQP_ADDRESSES"] == "10.0.0.3:5672"
    assert (orders["AMQP_USER"], orders["AMQP_VHOST"]) == ("shop", "shop")
    assert orders["AMQP_PASSWORD"] == SECRETS["queue_password"]
    assert "KAFKA_BOOTSTRAP" not in orders and "ORDERS_URLS" not in orders
    front = stack.app_environment(model, "front", endpoints(), SECRETS)
    assert front == {"PORT": "3000", "SERVICE_NAME": "front",
                     "CATALOG_URLS": "http://10.0.1.1:8081,http://10.0.1.2:8081",
                     "ORDERS_URLS": "http://10.0.1.1:8082,http://10.0.1.2:8082",
                     "BILLING_URLS": "http://10.0.1.1:8083"}
    # No secret of a service the app does not use, whatever the renderer passed.
    assert not any(ODD in value for value in front.values())


def test_mariadb_and_kafka() -> None:
    model = stack.load(ROOT / "stacks" / "variants" / "mariadb-kafka.yml")
    eps = endpoints(rdbms=[("db1", 3306)], queue=[("q1", 9092), ("q2", 9092)])
    orders = stack.app_environment(model, "orders", eps, SECRETS)
    assert orders["DB_URL"] == "jdbc:mariadb://db1:3306/shop"
    assert orders["QUEUE_KIND"] == "kafka"
    assert orders["KAFKA_BOOTSTRAP"] == "q1:9092,q2:9092"
    assert not any(k.startswith("AMQP_") for k in orders)
    assert SECRETS["queue_password"] not in orders.values()


def test_secrets_with_any_character_survive() -> None:
    data = copy.deepcopy(MINIMAL)
    data["queue"].update(vhost="/shop@x", user="us er:@/")
    data["apps"][0]["uses"] = ["rdbms", "nosql", "queue"]
    env = stack.app_environment(stack.validate(data, "test"), "catalog", endpoints(), SECRETS)
    assert env["DB_PASSWORD"] == ODD + "1"
    assert env["REDIS_PASSWORD"] == ODD + "2"
    assert env["AMQP_PASSWORD"] == ODD + "3"
    assert (env["AMQP_USER"], env["AMQP_VHOST"]) == ("us er:@/", "/shop@x")  # raw, never inside a URL
    assert ODD not in env["DB_URL"] and ODD not in env["AMQP_ADDRESSES"]


def test_ipv6_endpoints_are_bracketed_in_urls() -> None:
    eps = endpoints(rdbms=[("fd00::1", 5432)], nosql=[("fd00::2", 6379)], queue=[("[fd00::3]", 5672)],
                    catalog=[("fd00::11", 8081), ("10.0.1.2", 8081)])
    model = reference()
    orders = stack.app_environment(model, "orders", eps, SECRETS)
    assert orders["DB_URL"] == "jdbc:postgresql://[fd00::1]:5432/shop"
    assert orders["REDIS_HOST"] == "fd00::2"
    assert orders["AMQP_ADDRESSES"] == "[fd00::3]:5672"
    assert orders["CATALOG_URLS"] == "http://[fd00::11]:8081,http://10.0.1.2:8081"


def test_own_env_goes_on_top_and_names_with_dashes() -> None:
    data = copy.deepcopy(MINIMAL)
    data["apps"] = [
        {"name": "front-end", "kind": "node", "artifact": "f.tgz", "port": 3000, "uses": ["price-list"],
         "env": {"LOG_LEVEL": "debug", "TIMEOUT": 5}},
        {"name": "price-list", "kind": "java", "artifact": "p.jar", "port": 8081},
    ]
    env = stack.app_environment(stack.validate(data, "test"), "front-end",
                                {"price-list": [("node1", 8081)]}, {})
    assert env == {"PORT": "3000", "SERVICE_NAME": "front-end", "PRICE_LIST_URLS": "http://node1:8081",
                   "LOG_LEVEL": "debug", "TIMEOUT": "5"}


def test_wiring_refuses_what_a_renderer_forgot() -> None:
    model = reference()
    with pytest.raises(ValueError, match="app 'catalog' uses 'rdbms', but no endpoint of 'rdbms' was given"):
        stack.app_environment(model, "catalog", {"nosql": [("r", 6379)]}, SECRETS)
    with pytest.raises(ValueError, match="app 'catalog' needs the secret 'nosql_password'"):
        stack.app_environment(model, "catalog", endpoints(), {"rdbms_password": "x"})
    with pytest.raises(ValueError, match="endpoint 'db_1' of 'rdbms' cannot be a URL host"):
        stack.app_environment(model, "catalog", endpoints(rdbms=[("db_1", 5432)]), SECRETS)
    with pytest.raises(KeyError):
        stack.app_environment(model, "ledger", endpoints(), SECRETS)


@pytest.mark.parametrize(("host", "ok"), [
    ("db1", True), ("db1.example.internal", True), ("10.0.0.1", True), ("::1", True), ("[fd00::1]", True),
    ("toolkit-lab-node1", True), ("db_1", False), ("-db", False), ("db-", False), ("1234", False),
    ("fe80::1%eth0", False), ("", False), ("a..b", False), ("a" * 64, False),
])
def test_url_hosts(host: str, ok: bool) -> None:
    assert (stack.url_host_problem(host) is None) == ok


def test_address_prefers_toolkit_address_then_ansible_host() -> None:
    assert stack.address("n1", {"toolkit_address": "10.0.0.5", "ansible_host": "c1"}) == "10.0.0.5"
    assert stack.address("n1", {"ansible_host": "c1"}) == "c1"
    assert stack.address("n1", {"toolkit_address": ""}) == "n1"


# --- mode and inventory checks -------------------------------------------------------------------

# A vendor key checksum (issue 13: a repository key is trusted only when pinned).
PINNED = "sha256:" + "0" * 64


def write_inventory(tmp_path: Path) -> Path:
    """A directory inventory with values at every precedence level Inventory.value resolves."""
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"nodejs_install_method": "tarball", "level": "inline all",
                 "java_repo_key_checksum": PINNED},
        "hosts": {"db_1": {"toolkit_address": "10.0.0.1"}, "app1": {}, "app2": {"level": "inline host"}},
        "children": {
            "rdbms": {"hosts": {"db_1": None}}, "nosql": {"hosts": {"db_1": None}}, "queue": {"hosts": {"db_1": None}},
            "apps": {"hosts": {"app1": None, "app2": None}, "vars": {"level": "inline apps"},
                     "children": {"front": {"hosts": {"app2": None}, "vars": {"level": "inline front"}}}},
        },
    }}))
    (tmp_path / "group_vars" / "all" / "main.yml").write_text("level: file all\n")
    (tmp_path / "group_vars" / "apps.yml").write_text("nodejs_install_method: package\n")
    (tmp_path / "host_vars" / "app1.yml").write_text("level: file host\n")
    return tmp_path


def test_inventory_values_follow_ansible_precedence(tmp_path: Path) -> None:
    inv = inventory.load(write_inventory(tmp_path))
    assert inv.value("db_1", "level") == "file all"            # group_vars/all beats inline group vars
    assert inv.value("app1", "level") == "file host"           # host_vars beats everything
    assert inv.value("app2", "level") == "inline host"         # inline host vars beat every group
    assert inv.value("app1", "nodejs_install_method") == "package"   # group_vars/apps beats inline all
    assert inv.value("db_1", "nodejs_install_method") == "tarball"
    assert inv.value("db_1", "missing", "d") == "d"
    assert inv.depth["front"] > inv.depth["apps"] > inv.depth["all"]


def test_two_node_versions_need_an_install_method_that_gives_both(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    data["apps"] = [{"name": "a", "kind": "node", "artifact": "a.tgz", "port": 1, "node_version": 22},
                    {"name": "b", "kind": "node", "artifact": "b.tgz", "port": 2, "node_version": 20}]
    model = stack.validate(data, Path("/s.yml"))
    inv = inventory.load(write_inventory(tmp_path))
    inv.hosts["db_1"]["toolkit_address"] = "10.0.0.1"
    with pytest.raises(UsageError, match=r"apps 'b' and 'a' ask for Node.js 20 and 22 \('apps\[1\].node_version', "
                                         r"'apps\[0\].node_version'\), but inventory .* host 'app1'"):
        stack.check_mode(model, "bare", inv)
    data["apps"][0]["node_version"] = 20
    stack.check_mode(stack.validate(data, "test"), "bare", inv)  # one version is fine with package


def test_url_hosts_of_the_inventory(tmp_path: Path) -> None:
    inv = inventory.load(write_inventory(tmp_path))
    model = reference()
    stack.check_mode(model, "bare", inv)  # db_1 is reached by its toolkit_address
    del inv.hosts["db_1"]["toolkit_address"]
    with pytest.raises(UsageError, match=r"host 'db_1' \(group 'rdbms'\) would appear in the apps' URLs as 'db_1'.*"
                                         r"set toolkit_address or ansible_host"):
        stack.check_mode(model, "docker", inv)
    stack.check_mode(model, "k8s", inv)  # k8s wires by Service names
    inv.hosts["db_1"]["ansible_host"] = "{{ lookup('env', 'DB') }}"
    stack.check_mode(model, "bare", inv)  # Jinja: left to the playbooks' preflight, which sees it evaluated


def test_docker_and_k8s_need_app_images() -> None:
    model = stack.validate(MINIMAL, Path("/s.yml"))
    stack.check_mode(model, "bare")
    for mode in ("docker", "k8s"):
        with pytest.raises(UsageError, match=rf"^stack file /s.yml: 'apps\[0\].image' is missing; --mode {mode}"):
            stack.check_mode(model, mode)


def test_inventory_as_ansible_sees_it() -> None:
    groups = {"all": ["n_1", "n2"], "ungrouped": [], "rdbms": ["n_1"], "nosql": ["n_1"], "queue": ["n_1"],
              "apps": ["n2"]}
    hostvars = {"n_1": {"ansible_host": "10.0.0.1", "other": 1}, "n2": {"nodejs_install_method": "package", "java_repo_key_checksum": PINNED}}
    inv = inventory.from_ansible("/inv.yml", groups, hostvars, stack.INVENTORY_VARIABLES)
    assert inv.hosts == {"n_1": {"ansible_host": "10.0.0.1"},
                         "n2": {"nodejs_install_method": "package", "java_repo_key_checksum": PINNED}}
    inventory.check_mode(inv, "bare", secrets=False)
    stack.check_mode(reference(), "bare", inv)
    with pytest.raises(UsageError, match="needs the secret"):
        inventory.check_mode(inv, "bare")


# --- the same code from Ansible ------------------------------------------------------------------

def test_filters_in_a_real_playbook_run(tmp_path: Path) -> None:
    """ansible-playbook loads the filter plugin, normalises a raw stack, wires an app with odd secrets
    and refuses a bad stack with the CLI's message."""
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(yaml.safe_dump({"secrets": SECRETS}))
    out = tmp_path / "out.json"
    playbook = tmp_path / "wire.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Wire", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars_files": [str(secrets_file)],
        "vars": {"raw": yaml.safe_load((ROOT / "stacks" / "reference.yml").read_text())},
        "tasks": [
            {"name": "Normalise", "ansible.builtin.set_fact": {"model": "{{ raw | toolkit_stack_model('stack file x') }}"}},
            {"name": "Write", "ansible.builtin.copy": {"dest": str(out), "mode": "0600", "content": (
                "{{ {'model': model, 'env': model | toolkit_app_environment('orders', "
                "{'rdbms': [['10.0.0.1', 5432]], 'nosql': [{'host': 'fd00::2', 'port': 6379}], "
                "'queue': ['node_a', 'node-b'] | toolkit_endpoints(hostvars, 5672), "
                "'catalog': [['10.0.1.1', 8081]]}, secrets), "
                "'image': 'postgres:17' | toolkit_image_ref} | to_json }}")}},
            {"name": "Refuse", "ansible.builtin.debug": {"msg": "{{ raw | combine({'apps': []}) | toolkit_stack_model('stack file x') }}"},
             "ignore_errors": True, "register": "refused"},
            {"name": "Keep the refusal", "ansible.builtin.copy": {"dest": str(tmp_path / "refused.txt"), "mode": "0600",
                                                                   "content": "{{ refused.msg }}"}},
        ],
    }]))
    env = {**os.environ, "ANSIBLE_FILTER_PLUGINS": str(ROOT / "playbooks" / "filter_plugins"),
           "ANSIBLE_NOCOLOR": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"node_a": {"toolkit_address": "10.0.0.3"}, "node-b": {}}}}))
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), str(playbook)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    got = json.loads(out.read_text())
    assert got["model"] == stack.dump(reference())
    assert got["env"] == stack.app_environment(
        reference(), "orders",
        {"rdbms": [("10.0.0.1", 5432)], "nosql": [("fd00::2", 6379)], "queue": [("10.0.0.3", 5672), ("node-b", 5672)],
         "catalog": [("10.0.1.1", 8081)]}, SECRETS)
    assert got["env"]["AMQP_PASSWORD"] == ODD + "3" and got["env"]["AMQP_ADDRESSES"] == "10.0.0.3:5672,node-b:5672"
    assert got["image"]["full"] == "docker.io/library/postgres:17"
    assert "stack file x: 'apps' is empty; list at least one app." in (tmp_path / "refused.txt").read_text()


def test_plugins_import_the_checkout_they_belong_to(tmp_path: Path) -> None:
    """Run from a checkout where pytoolkit is not importable, the plugins add the checkout's root to sys.path."""
    import shutil

    for part in ("pytoolkit", "playbooks"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "import os, sys, importlib.util\n"
        # Hide every installed or checked-out pytoolkit (an editable install may point anywhere).
        "sys.path = [p for p in sys.path if p and not os.path.isdir(os.path.join(p, 'pytoolkit', 'stack'))]\n"
        "for f in ('filter_plugins/toolkit_stack.py', 'action_plugins/toolkit_preflight.py'):\n"
        f"    spec = importlib.util.spec_from_file_location('p', {str(tmp_path / 'playbooks')!r} + '/' + f)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "import pytoolkit.stack\n"
        "print(pytoolkit.stack.__file__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "pytoolkit" / "stack" / "__init__.py")


# --- one set of rules: the CLI and a direct ansible-playbook run refuse alike ----------------------

BAD = ROOT / "tests" / "data" / "bad"


def ansible_playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize(("playbook", "inventory_file", "stack_file"), [
    ("status_bare.yml", "inventory.yml", "uses-cycle.yml"),
    ("status_bare.yml", "inventory.yml", "malformed-image.yml"),
    ("status_bare.yml", "inventory-underscore-host.yml", None),
    ("status_bare.yml", "inventory-package-nodejs.yml", "two-node-versions.yml"),
    ("status_k8s.yml", "inventory.yml", "app-without-image.yml"),
    ("status_k8s.yml", "inventory-two-control-planes.yml", None),
], ids=lambda v: str(v))
def test_the_playbooks_refuse_with_the_cli_message(toolkit_home: Path, playbook: str, inventory_file: str,
                                                   stack_file: str | None) -> None:
    from typer.testing import CliRunner

    from pytoolkit.cli import app

    mode = playbook.removeprefix("status_").removesuffix(".yml")
    stack_path = BAD / stack_file if stack_file else ROOT / "stacks" / "reference.yml"
    cli = CliRunner().invoke(app, ["inventory", "validate", "--mode", mode, "-i", str(BAD / inventory_file),
                                   "--stack", str(stack_path)])
    assert cli.exit_code == 2, cli.output
    message = cli.output.strip().removeprefix("error: ")
    direct = ansible_playbook("-i", str(BAD / inventory_file), f"playbooks/{playbook}", "--tags", "preflight",
                              "-e", f"toolkit_stack_file={stack_path}")
    assert direct.returncode != 0, direct.stdout[-3000:]
    assert json.dumps(message)[1:-1] in direct.stdout, f"{message}\n---\n{direct.stdout[-3000:]}"


def test_cli_writes_the_normalised_stack_into_the_run_directory(toolkit_home: Path, tmp_path: Path) -> None:
    """A real run reads the stack from the run directory. Only the preflight runs (--tags preflight), and
    --limit localhost keeps the other plays to this machine (fact gathering only): no host is contacted."""
    from typer.testing import CliRunner

    from pytoolkit.cli import app

    data = yaml.safe_load((BAD / "inventory.yml").read_text())
    data["all"]["hosts"]["localhost"] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(data))
    variant = ROOT / "stacks" / "variants" / "two-javas.yml"
    result = CliRunner().invoke(app, ["bootstrap", "--mode", "bare", "-i", str(tmp_path / "inv.yml"),
                                      "--stack", str(variant), "--tags", "preflight", "--limit", "localhost",
                                      "--output", "json"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (toolkit_home / "runs").iterdir()
    written = run_dir / "stack.yml"
    assert written.read_text() == stack.to_yaml(stack.load(variant))
    assert stack.normalise(yaml.safe_load(written.read_text()), "again") == stack.dump(stack.load(variant))
    events = "\n".join(p.read_text() for p in (run_dir / "artifacts" / "run" / "job_events").glob("*.json"))
    assert "Check the inventory and the stack for --mode bare" in events
    assert f"toolkit_stack_file={written}" not in result.output  # passed as an extra var, not on a command line
