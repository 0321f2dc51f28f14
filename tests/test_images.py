"""`toolkit lab images`: stand-ins for the official images, built offline, pushed with credentials, and
their interface proven by running them: the variables, paths, ports and tools the official images have.

Bad input is checked without an engine. With one, the images are built (warm cache: seconds), pushed
to a throwaway htpasswd registry on a loopback port, and run on a throwaway network; every container,
volume and network here is named h4-images-<run>-... and removed at the end.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, toolkit

pytestmark = [pytest.mark.lab, pytest.mark.slow]

RUN = uuid.uuid4().hex[:6]
PREFIX = f"h4-images-{RUN}"
LAB_BASE = "toolkit-lab/debian:trixie"
REGISTRY_IMAGE = "h4-images/registry:trixie"
LOCAL = {
    "postgres": "toolkit-lab/library/postgres:17",
    "mariadb": "toolkit-lab/library/mariadb:11.8",
    "redis": "toolkit-lab/library/redis:8",
    "rabbitmq": "toolkit-lab/library/rabbitmq:4.0-management",
    "kafka": "toolkit-lab/apache/kafka:3.9.1",
    "eclipse-temurin": "toolkit-lab/library/eclipse-temurin:8-jre",
    "node": "toolkit-lab/library/node:20",
    "catalog": "toolkit-lab/toolkit/catalog:0.1.0",
    "front": "toolkit-lab/toolkit/front:0.1.0",
}
CURL = "toolkit-lab/images-base:trixie"  # the common layer has curl: the HTTP client of these tests
PASSWORD = "s3cr3t 'pa\"ss"  # quotes and a space: the entrypoints must pass it through untouched
REDIS_PASSWORD = f"redis-{uuid.uuid4().hex}"  # redis.conf quoting is its own affair: a plain one


def cli(*args: str, home: Path) -> tuple[int, str]:
    result = toolkit("lab", "images", *args, env={"TOOLKIT_HOME": str(home)}, timeout=3600)
    return result.returncode, result.stdout + result.stderr


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds:.0f} s")
        time.sleep(1)


# --------------------------------------------------------------------------- bad input (no engine needed)

@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    """A fake artifacts directory that passes the checksum check."""
    directory = tmp_path / "artifacts"
    directory.mkdir()
    for name in ("catalog.jar", "orders.jar", "billing.jar", "front.tar.gz"):
        (directory / name).write_text(name)
    sums = subprocess.run(["sha256sum", "catalog.jar", "orders.jar", "billing.jar", "front.tar.gz"],
                          cwd=directory, capture_output=True, text=True, check=True).stdout
    (directory / "SHA256SUMS").write_text(sums)
    return directory


def test_unknown_image_name_is_refused(toolkit_home: Path) -> None:
    code, out = cli("--only", "postgres,mysql", home=toolkit_home)
    assert code == 2 and "unknown image 'mysql'" in out and "postgres, mariadb" in out, out


@pytest.mark.parametrize("value, expect", [
    ("catalog", "is not APP=TAG"),
    ("shop=0.2", "is not APP=TAG"),
    ("catalog=", "is not an image tag"),
    ("catalog=-bad", "is not an image tag"),
])
def test_bad_app_tag_is_refused(toolkit_home: Path, value: str, expect: str) -> None:
    code, out = cli("--only", "catalog", "--app-tag", value, home=toolkit_home)
    assert code == 2 and expect in out, out


def test_app_tag_outside_only_is_refused(toolkit_home: Path, artifacts_dir: Path) -> None:
    code, out = cli("--only", "orders", "--app-tag", "catalog=0.1.1", "--artifacts", str(artifacts_dir),
                    home=toolkit_home)
    assert code == 2 and "add it to --only" in out, out


def test_missing_artifact_is_named_with_the_command_that_builds_it(toolkit_home: Path, artifacts_dir: Path) -> None:
    (artifacts_dir / "orders.jar").unlink()
    code, out = cli("--only", "orders", "--artifacts", str(artifacts_dir), home=toolkit_home)
    assert code == 2 and "orders.jar is missing" in out and "apps/build.sh" in out, out
    (artifacts_dir / "SHA256SUMS").unlink()
    code, out = cli("--only", "catalog", "--artifacts", str(artifacts_dir), home=toolkit_home)
    assert code == 2 and "SHA256SUMS is missing" in out and "apps/build.sh" in out, out


def test_artifact_that_does_not_match_its_checksum_is_refused(toolkit_home: Path, artifacts_dir: Path) -> None:
    (artifacts_dir / "front.tar.gz").write_text("changed")
    code, out = cli("--only", "front", "--artifacts", str(artifacts_dir), home=toolkit_home)
    assert code == 2 and "front.tar.gz does not match" in out, out


def test_without_the_lab_credentials_file_nothing_is_built(toolkit_home: Path) -> None:
    code, out = cli("--only", "redis", home=toolkit_home)
    secrets = toolkit_home / "lab" / "secrets" / "registry"
    assert code == 2 and str(secrets) in out and "toolkit lab up" in out, out


def test_lab_registry_that_does_not_answer_is_refused(toolkit_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = toolkit_home / "lab" / "secrets" / "registry"
    secrets.parent.mkdir(parents=True)
    secrets.write_text("lab:never-shown-password\n")
    monkeypatch.setenv("TOOLKIT_LAB_PORT_OFFSET", "39")  # 127.0.0.1:15039: no lab there
    code, out = cli("--only", "redis", home=toolkit_home)
    assert code == 2 and "does not answer" in out and "toolkit lab up" in out, out
    assert "never-shown-password" not in out


def test_bad_credentials_file_is_refused_without_showing_it(toolkit_home: Path, tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.write_text("no-colon-secret-here\n")
    code, out = cli("--only", "redis", "--registry", "127.0.0.1:9", "--auth-file", str(auth), home=toolkit_home)
    assert code == 2 and "must hold one line USER:PASSWORD" in out and "no-colon-secret-here" not in out, out


def test_bad_registry_address_is_refused(toolkit_home: Path) -> None:
    code, out = cli("--only", "redis", "--registry", "http://registry", home=toolkit_home)
    assert code == 2 and "is not HOST:PORT" in out, out


# ------------------------------------------------------------------------------------ with an engine

@pytest.fixture(scope="module")
def client(require_docker: None) -> Any:
    import docker

    found = docker.from_env(timeout=600)
    if not found.images.list(name=LAB_BASE):
        if os.environ.get("CI"):
            pytest.fail(f"the lab base image {LAB_BASE} is missing (scripts/test builds it: toolkit lab image)")
        pytest.skip(f"the lab base image {LAB_BASE} is missing: toolkit lab image")
    return found


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four artifacts, built by apps/build.sh from a copy of apps/ (other tests build the checkout's)."""
    work = tmp_path_factory.mktemp("apps")
    shutil.copytree(ROOT / "apps", work / "apps",
                    ignore=shutil.ignore_patterns("target", "node_modules", "dist"))
    out = work / "artifacts"
    build = subprocess.run([str(work / "apps" / "build.sh"), str(out)], capture_output=True, text=True,
                           env={**os.environ, "SKIP_TESTS": "1"}, timeout=1200)
    assert build.returncode == 0, build.stdout + build.stderr
    return out


@dataclass(frozen=True)
class Registry:
    address: str
    user: str
    password: str
    auth_file: Path

    def request(self, path: str, auth: tuple[str, str] | None = None, method: str = "GET",
                accept: str = "application/vnd.docker.distribution.manifest.v2+json") -> tuple[int, dict[str, str]]:
        """(status, headers) of a registry API request, with basic auth when given."""
        req = urllib.request.Request(f"http://{self.address}{path}", method=method, headers={"Accept": accept})
        if auth is not None:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)
        except OSError:  # not listening yet (Docker's port proxy accepts, then resets)
            return 0, {}


REGISTRY_DOCKERFILE = f"""FROM {LAB_BASE}
RUN apt-get -o Acquire::http::Proxy-Auto-Detect= update \\
 && DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::http::Proxy-Auto-Detect= install -y --no-install-recommends docker-registry \\
 && rm -rf /var/lib/apt/lists/*
CMD ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]
"""
# As the lab builds its registry (roles/lab/templates/registry-config.yml.j2), with htpasswd auth.
REGISTRY_CONFIG = """version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: /var/lib/docker-registry}}
http: {addr: ":5000"}
auth: {htpasswd: {realm: toolkit-test, path: /etc/docker/registry/htpasswd}}
"""


@pytest.fixture(scope="module")
def registry(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A throwaway registry (Debian's docker-registry) with one htpasswd user, on a random loopback port."""
    import io

    import bcrypt

    client.images.build(fileobj=io.BytesIO(REGISTRY_DOCKERFILE.encode()), tag=REGISTRY_IMAGE, rm=True, pull=False)
    work = tmp_path_factory.mktemp("registry")
    user, password = "pusher", f"{uuid.uuid4().hex}:x"  # a ':' inside: the credentials file splits at the first
    (work / "config.yml").write_text(REGISTRY_CONFIG)
    (work / "htpasswd").write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}\n")
    auth_file = work / "auth"
    auth_file.write_text(f"{user}:{password}\n")
    auth_file.chmod(0o600)
    container = client.containers.run(
        REGISTRY_IMAGE, detach=True, name=f"{PREFIX}-registry", ports={"5000/tcp": ("127.0.0.1", None)},
        volumes={str(work / "config.yml"): {"bind": "/etc/docker/registry/config.yml", "mode": "ro"},
                 str(work / "htpasswd"): {"bind": "/etc/docker/registry/htpasswd", "mode": "ro"}})
    try:
        container.reload()
        found = Registry(f"127.0.0.1:{container.ports['5000/tcp'][0]['HostPort']}", user, password, auth_file)
        wait_for(lambda: found.request("/v2/")[0] == 401, 30, "the registry answering")
        yield found
    finally:
        container.remove(force=True, v=True)


@pytest.fixture(scope="module")
def published(registry: Registry, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every image built and pushed with `toolkit lab images`, then catalog again as 0.1.1."""
    home = tmp_path_factory.mktemp("home")
    manifest = home / "images.yml"
    common = ("--registry", registry.address, "--auth-file", str(registry.auth_file), "--manifest", str(manifest),
              "--artifacts", str(artifacts))
    started = time.monotonic()
    code, first = cli(*common, home=home)
    assert code == 0, first
    seconds = time.monotonic() - started
    code, second = cli(*common, "--only", "catalog", "--app-tag", "catalog=0.1.1", home=home)
    assert code == 0, second
    print(f"\nbuild and push of every image: {seconds:.0f} s\n{first}")  # shown with -s: the timings
    return {"manifest": yaml.safe_load(manifest.read_text()), "output": first + second, "file": manifest}


SOURCES = {
    "postgres": "docker.io/library/postgres:17",
    "mariadb": "docker.io/library/mariadb:11.8",
    "redis": "docker.io/library/redis:8",
    "rabbitmq": "docker.io/library/rabbitmq:4.0-management",
    "kafka": "docker.io/apache/kafka:3.9.1",
    "eclipse-temurin": "docker.io/library/eclipse-temurin:8-jre",
    "node": "docker.io/library/node:20",
    "catalog": "docker.io/toolkit/catalog:0.1.0",
    "orders": "docker.io/toolkit/orders:0.1.0",
    "billing": "docker.io/toolkit/billing:0.1.0",
    "front": "docker.io/toolkit/front:0.1.0",
}


def test_manifest_records_each_image_with_the_registry_digest(published: dict[str, Any], registry: Registry) -> None:
    manifest = published["manifest"]
    assert manifest["registry"] == registry.address
    entries = manifest["images"]
    assert {e["source"] for e in entries} == set(SOURCES.values()) | {"docker.io/toolkit/catalog:0.1.1"}
    for entry in entries:
        path, _, tag = entry["path"].rpartition(":")
        assert entry["source"] == f"docker.io/{entry['path']}"
        assert entry["pushed"] == f"{registry.address}/{path}:{tag}"
        assert entry["reference"] == f"{registry.address}/{path}@{entry['digest']}"
        status, headers = registry.request(f"/v2/{path}/manifests/{tag}", (registry.user, registry.password), "HEAD")
        assert status == 200, entry
        assert headers["Docker-Content-Digest"] == entry["digest"], entry
    carries = {e["name"]: e["carries"] for e in entries}
    assert carries["postgres"].startswith("postgresql-17 17.")
    assert carries["mariadb"].startswith("mariadb-server 1:11.8.")
    assert carries["redis"].startswith("redis-server 5:8.")
    assert carries["rabbitmq"].startswith("rabbitmq-server 4.0.")
    assert carries["kafka"] == "kafka 3.9.1"
    assert carries["eclipse-temurin"].startswith("openjdk-8-jre-headless 8u")
    assert carries["node"].startswith("nodejs 20.")
    assert carries["catalog"].startswith("catalog.jar sha256:")


def test_registry_refuses_pulls_without_credentials(published: dict[str, Any], registry: Registry, client: Any) -> None:
    import docker.errors

    assert registry.request("/v2/library/postgres/manifests/17")[0] == 401
    assert registry.request("/v2/library/postgres/manifests/17", (registry.user, "wrong"))[0] == 401
    assert registry.request("/v2/library/postgres/manifests/17", (registry.user, registry.password))[0] == 200
    with pytest.raises(docker.errors.APIError) as refused:
        client.images.pull(f"{registry.address}/library/redis", tag="8", auth_config={"username": "x", "password": "y"})
    assert "unauthorized" in str(refused.value).lower() or "authentication" in str(refused.value).lower()


def test_credentials_never_appear_in_the_output_or_the_manifest(published: dict[str, Any], registry: Registry) -> None:
    assert registry.password not in published["output"]
    assert registry.password not in published["file"].read_text()


def test_second_app_tag_is_the_same_jar_with_another_label(published: dict[str, Any], client: Any) -> None:
    entries = {e["pushed"].rpartition("/")[2]: e for e in published["manifest"]["images"]}
    first, second = entries["catalog:0.1.0"], entries["catalog:0.1.1"]
    assert first["digest"] != second["digest"]
    assert first["carries"] == second["carries"]  # the same jar
    old = client.images.get("toolkit-lab/toolkit/catalog:0.1.0").attrs
    new = client.images.get("toolkit-lab/toolkit/catalog:0.1.1").attrs
    assert old["RootFS"]["Layers"] == new["RootFS"]["Layers"]
    assert old["Config"]["Labels"]["org.opencontainers.image.version"] == "0.1.0"
    assert new["Config"]["Labels"]["org.opencontainers.image.version"] == "0.1.1"


def test_rebuild_with_nothing_changed_uses_the_cache(published: dict[str, Any], registry: Registry,
                                                     artifacts: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    code, out = cli("--registry", registry.address, "--auth-file", str(registry.auth_file), "--artifacts",
                    str(artifacts), "--manifest", str(tmp_path / "m.yml"), home=tmp_path)
    seconds = time.monotonic() - started
    assert code == 0, out
    built = [line for line in out.splitlines() if line.startswith("built ")]
    assert len(built) == 12 and all("(cached)" in line for line in built), out
    assert seconds < 120, f"a rebuild and push with nothing changed took {seconds:.0f} s"


# ------------------------------------------------------------ the official interface, on a throwaway network

class Stack:
    """Containers, volumes and a network of this test run; everything is removed by `close`."""

    def __init__(self, client: Any, secrets: Path) -> None:
        self.client = client
        self.secrets = secrets
        self.network = client.networks.create(f"{PREFIX}-net", driver="bridge")
        self.containers: dict[str, Any] = {}

    def start(self, name: str, image: str, volume: str | None = None, **kwargs: Any) -> Any:
        volumes = dict(kwargs.pop("volumes", {}))
        if volume:
            volumes[f"{PREFIX}-{name}"] = {"bind": volume, "mode": "rw"}
        container = self.client.containers.run(
            image, detach=True, name=f"{PREFIX}-{name}", hostname=name, network=self.network.name,
            volumes=volumes, **kwargs)
        self.containers[name] = container
        return container

    def oneshot(self, image: str, command: list[str], env: dict[str, str] | None = None,
                entrypoint: list[str] | None = None) -> tuple[int, str]:
        """Run a client container on the network to its end: (exit status, output)."""
        container = self.client.containers.run(image, command, detach=True, network=self.network.name,
                                                environment=env or {}, entrypoint=entrypoint)
        try:
            status = container.wait(timeout=180)["StatusCode"]
            return status, container.logs().decode(errors="replace")
        finally:
            container.remove(force=True)

    def exec(self, name: str, command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
        code, output = self.containers[name].exec_run(command, environment=env or {})
        return code, output.decode(errors="replace")

    def close(self) -> None:
        for container in self.containers.values():
            container.remove(force=True)
        self.network.remove()
        for volume in self.client.volumes.list(filters={"name": PREFIX}):
            volume.remove(force=True)


@pytest.fixture(scope="module")
def stack(client: Any, published: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The data services, all started at once, each with a named volume for its data."""
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "password").write_text(PASSWORD + "\n")
    (secrets / "redis.conf").write_text(f"requirepass {REDIS_PASSWORD}\n")
    initdb = secrets / "initdb"
    initdb.mkdir()
    (initdb / "10-seed.sql").write_text("CREATE TABLE seeded (note text); INSERT INTO seeded VALUES ('from initdb.d');\n")
    (initdb / "20-seed.sh").write_text('psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
                                       "-c \"INSERT INTO seeded VALUES ('from a script')\"\n")
    started = Stack(client, secrets)
    try:
        secret = {str(secrets / "password"): {"bind": "/run/secrets/password", "mode": "ro"}}
        started.start("pg", LOCAL["postgres"], "/var/lib/postgresql/data",
                      environment={"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "shop"})
        started.start("pgfile", LOCAL["postgres"], "/var/lib/postgresql/data",
                      environment={"POSTGRES_USER": "owner", "POSTGRES_PASSWORD_FILE": "/run/secrets/password",
                                   "POSTGRES_DB": "app"},
                      volumes={**secret, str(initdb): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"}})
        started.start("db", LOCAL["mariadb"], "/var/lib/mysql", volumes=secret,
                      environment={"MARIADB_ROOT_PASSWORD_FILE": "/run/secrets/password", "MARIADB_DATABASE": "shop",
                                   "MARIADB_USER": "shop", "MARIADB_PASSWORD": PASSWORD})
        started.start("redis", LOCAL["redis"], "/data", command=["redis-server", "/usr/local/etc/redis/redis.conf"],
                      volumes={str(secrets / "redis.conf"): {"bind": "/usr/local/etc/redis/redis.conf", "mode": "ro"}})
        started.start("mq", LOCAL["rabbitmq"], "/var/lib/rabbitmq",
                      environment={"RABBITMQ_DEFAULT_USER": "shop", "RABBITMQ_DEFAULT_PASS": PASSWORD,
                                   "RABBITMQ_DEFAULT_VHOST": "shop"})
        started.start("kafka", LOCAL["kafka"], "/var/lib/kafka/data", environment={
            "KAFKA_NODE_ID": "1", "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
            "KAFKA_HEAP_OPTS": "-Xmx384m -Xms384m",
            "CLUSTER_ID": "h4ImagesTestCluster001"})
        # No KAFKA_* settings at all (the heap is not one): the image's single-node default.
        started.start("kafkadefault", LOCAL["kafka"], environment={"KAFKA_HEAP_OPTS": "-Xmx256m -Xms256m"})
        yield started
    finally:
        started.close()


def psql(stack: Stack, conninfo: str, sql: str, password: str = PASSWORD) -> tuple[int, str]:
    return stack.oneshot(LOCAL["postgres"], ["psql", conninfo, "-tA", "-c", sql], {"PGPASSWORD": password})


def pg_ready(stack: Stack, name: str) -> bool:
    return stack.exec(name, ["pg_isready", "-h", "127.0.0.1"])[0] == 0


def test_postgres_takes_user_password_and_database_from_the_environment(stack: Stack) -> None:
    wait_for(lambda: pg_ready(stack, "pg"), 90, "postgres accepting connections")
    code, out = psql(stack, "host=pg user=shop dbname=shop", "SELECT current_user, current_database()")
    assert code == 0 and out.strip() == "shop|shop", out
    code, out = psql(stack, "host=pg user=shop dbname=shop", "SELECT 1", password="wrong")
    assert code != 0 and "password authentication failed" in out, out
    hba = stack.exec("pg", ["bash", "-c", 'grep -v "^#" "$PGDATA/pg_hba.conf" | grep "^host all all all"'])[1]
    assert "scram-sha-256" in hba
    assert stack.exec("pg", ["id", "-un"])[1].strip() == "root"  # exec is root; the server is not:
    assert stack.exec("pg", ["ps", "-o", "user=", "-p", "1"])[1].strip() == "postgres"
    config = stack.containers["pg"].image.attrs["Config"]
    assert config["StopSignal"] == "SIGINT" and "5432/tcp" in config["ExposedPorts"]
    assert config["Env"].count("PGDATA=/var/lib/postgresql/data") == 1


def test_postgres_password_file_and_initdb_scripts(stack: Stack) -> None:
    wait_for(lambda: pg_ready(stack, "pgfile"), 90, "postgres (password file) accepting connections")
    code, out = psql(stack, "host=pgfile user=owner dbname=app", "SELECT note FROM seeded ORDER BY note")
    assert code == 0 and out.split("\n")[:2] == ["from a script", "from initdb.d"], out


def test_postgres_keeps_its_data_across_a_restart(stack: Stack) -> None:
    wait_for(lambda: pg_ready(stack, "pg"), 90, "postgres accepting connections")
    code, out = psql(stack, "host=pg user=shop dbname=shop", "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('row')")
    assert code == 0, out
    stack.containers["pg"].restart(timeout=30)
    wait_for(lambda: pg_ready(stack, "pg"), 90, "postgres back after a restart")
    assert "PostgreSQL init process complete" not in stack.containers["pg"].logs(since=int(time.time()) - 5).decode()
    code, out = psql(stack, "host=pg user=shop dbname=shop", "SELECT v FROM kept")
    assert code == 0 and out.strip() == "row", out


def mariadb_healthy(stack: Stack) -> bool:
    return stack.exec("db", ["healthcheck.sh", "--connect", "--innodb_initialized"])[0] == 0


def mariadb(stack: Stack, user: str, sql: str, password: str = PASSWORD) -> tuple[int, str]:
    return stack.oneshot(LOCAL["mariadb"], ["mariadb", "-h", "db", "-u", user, "-N", "-B", "-e", sql],
                         {"MYSQL_PWD": password})


def test_mariadb_takes_root_user_password_and_database_from_the_environment(stack: Stack) -> None:
    wait_for(lambda: mariadb_healthy(stack), 120, "healthcheck.sh --connect --innodb_initialized")
    code, out = mariadb(stack, "shop", "SELECT CURRENT_USER(), DATABASE() FROM DUAL; USE shop; SELECT DATABASE()")
    assert code == 0 and out.split() == ["shop@%", "NULL", "shop"], out
    code, out = mariadb(stack, "root", "SELECT COUNT(*) FROM mysql.user WHERE user = 'root' AND host = '%'")
    assert code == 0 and out.strip() == "1", out  # root's password came from MARIADB_ROOT_PASSWORD_FILE
    code, out = mariadb(stack, "shop", "SELECT 1", password="wrong")
    assert code != 0 and "Access denied" in out, out
    code, out = stack.exec("db", ["healthcheck.sh", "--galera_online"])
    assert code != 0 and "not supported" in out
    assert stack.exec("db", ["ps", "-o", "user=", "-p", "1"])[1].strip() == "mysql"


def test_mariadb_keeps_its_data_across_a_restart(stack: Stack) -> None:
    wait_for(lambda: mariadb_healthy(stack), 120, "mariadb healthy")
    code, out = mariadb(stack, "shop", "CREATE TABLE shop.kept (v TEXT); INSERT INTO shop.kept VALUES ('row')")
    assert code == 0, out
    stack.containers["db"].restart(timeout=30)
    wait_for(lambda: mariadb_healthy(stack), 120, "mariadb healthy after a restart")
    code, out = mariadb(stack, "shop", "SELECT v FROM shop.kept")
    assert code == 0 and out.strip() == "row", out


def redis_cli(stack: Stack, *args: str, auth: bool = True) -> tuple[int, str]:
    env = {"REDISCLI_AUTH": REDIS_PASSWORD} if auth else {}
    return stack.oneshot(LOCAL["redis"], ["redis-cli", "-h", "redis", *args], env)


def test_redis_reads_its_config_file_and_refuses_unauthenticated_commands(stack: Stack) -> None:
    wait_for(lambda: redis_cli(stack, "ping")[1].strip() == "PONG", 60, "redis answering")
    code, out = redis_cli(stack, "ping", auth=False)
    assert "NOAUTH" in out, out
    code, out = redis_cli(stack, "config", "get", "dir")
    assert out.split() == ["dir", "/data"], out
    assert stack.exec("redis", ["ps", "-o", "user=", "-p", "1"])[1].strip() == "redis"


def test_redis_keeps_its_data_across_a_restart(stack: Stack) -> None:
    wait_for(lambda: redis_cli(stack, "ping")[1].strip() == "PONG", 60, "redis answering")
    assert redis_cli(stack, "set", "kept", "value")[1].strip() == "OK"
    stack.containers["redis"].restart(timeout=30)  # SIGTERM: redis saves its snapshot in /data
    wait_for(lambda: redis_cli(stack, "ping")[1].strip() == "PONG", 60, "redis back after a restart")
    assert redis_cli(stack, "get", "kept")[1].strip() == "value"


def rabbit_api(stack: Stack, path: str, auth: bool = True, method: str = "GET", body: str | None = None) -> str:
    """The management API's HTTP status for a request from a client container."""
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, f"http://mq:15672/api{path}"]
    if auth:
        command[1:1] = ["-u", f"shop:{PASSWORD}"]
    if body is not None:
        command[1:1] = ["-H", "content-type: application/json", "-d", body]
    return stack.oneshot(CURL, command)[1]


def rabbit_running(stack: Stack) -> bool:
    return stack.exec("mq", ["rabbitmq-diagnostics", "-q", "check_port_connectivity"])[0] == 0


def test_rabbitmq_creates_the_default_user_on_its_vhost(stack: Stack) -> None:
    wait_for(lambda: rabbit_running(stack), 120, "rabbitmq listening")
    assert rabbit_api(stack, "/whoami").strip() == "200"
    assert rabbit_api(stack, "/whoami", auth=False).strip() == "401"
    code, out = stack.exec("mq", ["rabbitmqctl", "-q", "list_permissions", "-p", "shop"])
    assert code == 0 and "shop\t.*\t.*\t.*" in out, out
    code, out = stack.exec("mq", ["rabbitmqctl", "-q", "list_users"])
    assert "guest" not in out, out
    code, out = stack.exec("mq", ["rabbitmq-plugins", "-q", "list", "-e", "rabbitmq_management"])
    assert code == 0 and "rabbitmq_management" in out, out


def test_rabbitmq_keeps_its_data_across_a_restart(stack: Stack) -> None:
    wait_for(lambda: rabbit_running(stack), 120, "rabbitmq listening")
    assert rabbit_api(stack, "/queues/shop/kept", method="PUT", body='{"durable": true}').strip() == "201"
    stack.containers["mq"].restart(timeout=60)
    wait_for(lambda: rabbit_running(stack), 120, "rabbitmq back after a restart")
    wait_for(lambda: rabbit_api(stack, "/queues/shop/kept").strip() == "200", 60, "the durable queue listed again")


def kafka_started(stack: Stack, since: float, name: str = "kafka") -> bool:
    """The broker logged its start after `since` (epoch seconds): cheaper than a JVM tool per poll."""
    logs = stack.containers[name].logs(since=int(since)) if since else stack.containers[name].logs()
    return "Kafka Server started" in logs.decode(errors="replace")


def kafka_consume(stack: Stack, topic: str) -> str:
    return stack.exec("kafka", ["/opt/kafka/bin/kafka-console-consumer.sh", "--bootstrap-server", "kafka:9092",
                                "--topic", topic, "--from-beginning", "--max-messages", "1", "--timeout-ms", "60000"])[1]


def test_kafka_from_environment_creates_a_topic_and_carries_a_message(stack: Stack) -> None:
    wait_for(lambda: kafka_started(stack, 0), 120, "kafka started")
    code, out = stack.exec("kafka", ["/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "kafka:9092",
                                     "--create", "--topic", "orders", "--partitions", "1"])
    assert code == 0 and "Created topic orders" in out, out
    code, out = stack.exec("kafka", ["bash", "-c", "echo hello-from-h4 | /opt/kafka/bin/kafka-console-producer.sh "
                                     "--bootstrap-server kafka:9092 --topic orders"])
    assert code == 0, out
    assert "hello-from-h4" in kafka_consume(stack, "orders")
    code, out = stack.exec("kafka", ["cat", "/opt/kafka/config/server.properties"])
    assert "advertised.listeners=PLAINTEXT://kafka:9092" in out and "log.dirs=/var/lib/kafka/data" in out, out

    restarted = time.time() - 1
    stack.containers["kafka"].restart(timeout=30)
    wait_for(lambda: kafka_started(stack, restarted), 120, "kafka started again after a restart")
    assert stack.exec("kafka", ["/opt/kafka/bin/kafka-broker-api-versions.sh", "--bootstrap-server", "kafka:9092"])[0] == 0
    assert "hello-from-h4" in kafka_consume(stack, "orders")  # the message was on the volume


def test_kafka_without_settings_is_a_single_node_kraft_broker(stack: Stack) -> None:
    wait_for(lambda: kafka_started(stack, 0, "kafkadefault"), 120, "kafka (default settings) started")
    code, out = stack.exec("kafkadefault", ["cat", "/opt/kafka/config/server.properties"])
    assert code == 0 and "process.roles=broker,controller" in out and "controller.quorum.voters=1@localhost:9093" in out
    code, out = stack.exec("kafkadefault", ["/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "localhost:9092",
                                            "--list"])
    assert code == 0, out
    assert stack.exec("kafkadefault", ["id", "-un"])[1].strip() == "appuser"


def test_temurin_stand_in_runs_java_8(stack: Stack) -> None:
    code, out = stack.oneshot(LOCAL["eclipse-temurin"], ["bash", "-c", 'echo "$JAVA_HOME"; "$JAVA_HOME/bin/java" -version; '
                                                         "command -v java"])
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "/opt/java/openjdk" and 'version "1.8.0_' in out and lines[-1] == "/opt/java/openjdk/bin/java", out


def test_node_stand_in_runs_node_20(stack: Stack) -> None:
    code, out = stack.oneshot(LOCAL["node"], ["--version"])
    assert code == 0 and out.startswith("v20."), out
    code, out = stack.oneshot(LOCAL["node"], ["-e", "console.log(require('os').userInfo().uid)"])
    assert code == 0 and out.strip() == "0", out  # as the official image: root unless --user node
    assert stack.oneshot(LOCAL["node"], ["id", "-u", "node"])[1].strip() == "1000"


def test_app_images_run_on_the_stand_ins(stack: Stack) -> None:
    """catalog (on the Java 8 stand-in) reads postgres and redis; front (on the node stand-in) calls catalog."""
    wait_for(lambda: pg_ready(stack, "pg"), 90, "postgres accepting connections")
    stack.start("catalog", LOCAL["catalog"], environment={
        "DB_URL": "jdbc:postgresql://pg:5432/shop", "DB_USER": "shop", "DB_PASSWORD": PASSWORD,
        "REDIS_HOST": "redis", "REDIS_PASSWORD": REDIS_PASSWORD})
    stack.start("front", LOCAL["front"], environment={"CATALOG_URLS": "http://catalog:8081"})

    def products(url: str) -> list[Any] | None:
        code, out = stack.oneshot(CURL, ["curl", "-sf", url])
        return json.loads(out) if code == 0 else None

    wait_for(lambda: products("http://catalog:8081/products") is not None, 120, "catalog serving /products")
    assert len(products("http://catalog:8081/products") or []) >= 3
    wait_for(lambda: products("http://front:3000/api/products") is not None, 60, "front serving /api/products")
    assert stack.exec("catalog", ["id", "-u"])[1].strip() == "65534"
