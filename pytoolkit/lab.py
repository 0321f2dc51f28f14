"""The built-in lab: its configuration, and the checks made before its playbooks run.

Creating and removing containers is the lab playbooks' job (roles/lab); this
module only decides what the lab should look like and whether the controller
can host it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import yaml

from . import paths, yamlfile
from .errors import UsageError

# One machine may run several labs side by side (tests, helpers): TOOLKIT_LAB_NAME names the lab (prefix
# of its containers, networks and volumes) and TOOLKIT_LAB_PORT_OFFSET shifts its loopback ports.
NAME = os.environ.get("TOOLKIT_LAB_NAME", "toolkit-lab")
_PORT_OFFSET = int(os.environ.get("TOOLKIT_LAB_PORT_OFFSET", "0") or 0)
IMAGE_REPO = "toolkit-lab/debian"
DISTRIBUTIONS = ("bookworm", "trixie")
PROFILES = ("server", "k8s")
CONNECTIONS = ("ssh", "docker")
GROUPS = ("rdbms", "nosql", "queue", "apps", "control_plane", "workers")
DEFAULT_NODES = 3
# The lab's services as the nodes reach them, and as the controller reaches them on loopback
# (roles/lab/defaults/main.yml).
FILES_URL = "http://files:8080"
REGISTRY_ADDRESS = "registry:5000"
FILES_HOST_PORT = 18080 + _PORT_OFFSET
REGISTRY_HOST_PORT = 15000 + _PORT_OFFSET
REGISTRY_HOST_ADDRESS = f"127.0.0.1:{REGISTRY_HOST_PORT}"
_NODE_KEYS = {"name", "distribution", "profile", "groups", "networks"}
_TOP_KEYS = {"nodes", "connection"}
_NETWORK = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def config_path() -> Path:
    return paths.lab_dir() / "lab.yml"


def inventory_path() -> Path:
    return paths.lab_dir() / "inventory"


def bundle_vars_path() -> Path:
    """Role variables pointing the lab's nodes at a served Kubernetes bundle (`toolkit bundle serve --lab`)."""
    return inventory_path() / "group_vars" / "all" / "bundle.yml"


def files_dir() -> Path:
    """Served by the lab file server at http://files:8080/ inside the lab network."""
    return paths.lab_dir() / "files"


def default_node(index: int, total: int) -> dict[str, Any]:
    """node1 carries the data services and the control plane; the others run the apps as workers."""
    if total == 1:
        groups = list(GROUPS[:4]) + ["control_plane"]
    elif index == 1:
        groups = ["rdbms", "nosql", "queue", "control_plane"]
    else:
        groups = ["apps", "workers"]
    return {"name": f"node{index}", "distribution": "trixie", "profile": "server", "groups": groups}


def load_config() -> dict[str, Any] | None:
    path = config_path()
    if not path.exists():
        return None
    data = yamlfile.load(path, "lab config")
    validate(data, path)
    return dict(data)


def ssh_dir() -> Path:
    """The lab's ssh key (id_ed25519, 0600) and known_hosts, written by `lab up`."""
    return paths.lab_dir() / "ssh"


def network_name(short: str) -> str:
    """Docker network of a lab network short name from lab.yml: `lab` is the lab's own, N is NAME-N."""
    return NAME if short == "lab" else f"{NAME}-{short}"


def validate(data: Any, path: Path) -> None:
    """Refuse a lab config (lab.yml) that the lab playbooks could not build, naming the key.

    Raises UsageError. `data` is the loaded YAML document.
    """
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        raise UsageError(f"lab config {path} must be a mapping with a non-empty 'nodes' list.")
    unknown_top = sorted(set(data) - _TOP_KEYS)
    if unknown_top:
        raise UsageError(f"lab config {path} has unknown key '{unknown_top[0]}'; allowed: {', '.join(sorted(_TOP_KEYS))}.")
    if data.get("connection", "ssh") not in CONNECTIONS:
        raise UsageError(f"lab config {path}: connection must be one of {', '.join(CONNECTIONS)}.")
    seen = set()
    for i, node in enumerate(data["nodes"]):
        where = f"lab config {path}: nodes[{i}]"
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            raise UsageError(f"{where} must be a mapping with a 'name'.")
        unknown = sorted(set(node) - _NODE_KEYS)
        if unknown:
            raise UsageError(f"{where} has unknown key '{unknown[0]}'; allowed: {', '.join(sorted(_NODE_KEYS))}.")
        if node["name"] in seen:
            raise UsageError(f"{where}: node name '{node['name']}' is used twice.")
        seen.add(node["name"])
        if node.get("distribution", "trixie") not in DISTRIBUTIONS:
            raise UsageError(f"{where}: distribution must be one of {', '.join(DISTRIBUTIONS)}.")
        if node.get("profile", "server") not in PROFILES:
            raise UsageError(f"{where}: profile must be one of {', '.join(PROFILES)}.")
        bad = [g for g in node.get("groups", []) if g not in GROUPS]
        if bad:
            raise UsageError(f"{where}: unknown group '{bad[0]}'; groups: {', '.join(GROUPS)}.")
        networks = node.get("networks", ["lab"])
        if not isinstance(networks, list) or not networks or not all(
                isinstance(n, str) and _NETWORK.match(n) for n in networks):
            raise UsageError(f"{where}: networks must be a non-empty list of lab network names "
                             "(lowercase letters, digits, '-'), such as [lab].")


def plan(nodes: int | None, profile: str | None = None) -> dict[str, Any]:
    """The lab to bring up: the saved config, resized to `nodes` when given.

    Nodes that already exist keep their settings; new ones get defaults.
    """
    config = load_config() or {"nodes": []}
    current = {n["name"]: n for n in config["nodes"]}
    count = nodes if nodes is not None else (len(current) or DEFAULT_NODES)
    if count < 1:
        raise UsageError("--nodes must be at least 1.")
    wanted = []
    for i in range(1, count + 1):
        node = current.get(f"node{i}") or default_node(i, count)
        if profile:
            node = {**node, "profile": profile}
        wanted.append(node)
    # Keep hand-added nodes with other names only when the count was not given.
    if nodes is None:
        wanted += [n for name, n in current.items() if not name.startswith("node")]
    return {**{k: v for k, v in config.items() if k != "nodes"}, "nodes": wanted}


def save_config(config: dict[str, Any]) -> None:
    path = config_path()
    if not path.parent.exists():
        path.parent.mkdir(parents=True)
        path.parent.chmod(0o700)  # it will hold the lab's ssh key and secrets
    header = "# The lab's nodes. Edit distribution/profile/groups per node, then run `toolkit lab up`.\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))


def extravars(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "lab_name": NAME,
        "lab_image_repo": IMAGE_REPO,
        "lab_state_dir": str(paths.lab_dir()),
        "lab_cache_dir": str(paths.cache_dir()),
        "lab_nodes": config["nodes"],
        "lab_connection": config.get("connection", "ssh"),
        "lab_file_server_host_port": FILES_HOST_PORT,
        "lab_registry_host_port": REGISTRY_HOST_PORT,
    }


def docker_client(purpose: str = "the lab") -> Any:
    """A client for the controller's Docker engine, or a UsageError saying how to start one."""
    import docker  # imported late: `toolkit --help` should not need the SDK's import time

    try:
        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable engine"
        raise UsageError(
            f"{purpose} needs a running Docker engine and none answered ({type(exc).__name__}). "
            "Install and start one: `apt-get install -y docker.io` then `systemctl start docker` "
            "(or, without systemd, `setsid dockerd >/var/log/dockerd.log 2>&1 &`); check with `docker info`."
        ) from None


def require_private_dir() -> None:
    """Refuse a lab directory other users can enter: it holds the lab's ssh key and secrets.

    Raises UsageError naming the directory, its mode and the fix.
    """
    directory = paths.lab_dir()
    if not directory.exists():
        return
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise UsageError(f"lab directory {directory} belongs to another user (uid {info.st_uid}); "
                         "it holds the lab's ssh key and secrets. Set TOOLKIT_HOME to a directory of your own.")
    if info.st_mode & 0o077:
        raise UsageError(f"lab directory {directory} is open to other users (mode {stat.filemode(info.st_mode)}); "
                         f"it holds the lab's ssh key and secrets. Make it private: chmod 700 {directory}")


def require_ssh_tools(config: dict[str, Any]) -> None:
    """Refuse when the controller lacks ssh-keygen (the lab's key) or, for ssh labs, the ssh client."""
    needed = ["ssh-keygen"] + (["ssh"] if config.get("connection", "ssh") == "ssh" else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise UsageError(f"the lab needs {' and '.join(missing)} on this machine (its nodes are reached over ssh "
                         "with a per-lab key): `apt-get install -y openssh-client`.")


def require_internal_networks(config: dict[str, Any], client: Any) -> None:
    """Refuse a node that would sit on a Docker network with a route off the machine.

    The lab creates its networks internal; a same-named network that exists, is not internal and
    was not created by this lab (an operator's override) would give the node a route out.
    """
    for node in config["nodes"]:
        for short in node.get("networks", ["lab"]):
            name = network_name(short)
            found = client.networks.list(names=[name])
            net = next((n for n in found if n.name == name), None)
            if net is None:
                continue
            attrs = net.attrs
            ours = (attrs.get("Labels") or {}).get("toolkit.lab") == NAME
            if not attrs.get("Internal") and not ours:
                raise UsageError(
                    f"lab node {node['name']} would join Docker network {name}, which is not internal and was not "
                    "created by the lab: the node would have a route off the lab. Remove that network "
                    f"(docker network rm {name}) or use another network name in {config_path()}.")


def require_controller(config: dict[str, Any]) -> None:
    """Refuse to start when the lab cannot be built here: no Docker engine, no debootstrap for a
    missing base image, no ssh tools, a lab directory others can read, or a network with a route out.

    Raises UsageError with the fix.
    """
    require_private_dir()
    require_ssh_tools(config)
    client = docker_client()
    require_internal_networks(config, client)
    missing = [
        d for d in {n.get("distribution", "trixie") for n in config["nodes"]} | {"trixie"}
        if not client.images.list(name=f"{IMAGE_REPO}:{d}")
    ]
    if missing and shutil.which("debootstrap") is None:
        raise UsageError(
            f"building the lab base image ({', '.join(missing)}) needs debootstrap: `apt-get install -y debootstrap`."
        )


def containers() -> list[dict[str, Any]]:
    """The lab's containers as they are now: name, kind, state, address."""
    client = docker_client()
    found = []
    for c in client.containers.list(all=True, filters={"label": f"toolkit.lab={NAME}"}):
        nets: dict[str, dict[str, Any]] = c.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
        primary: dict[str, Any] = nets.get(NAME) or next(iter(nets.values()), {})
        found.append(
            {
                "container": c.name,
                "kind": c.labels.get("toolkit.lab.kind", "?"),
                "node": c.labels.get("toolkit.lab.node", ""),
                "state": c.status,
                "address": primary.get("IPAddress", ""),
                "networks": sorted(nets),
                "distribution": c.labels.get("toolkit.lab.distribution", ""),
                "profile": c.labels.get("toolkit.lab.profile", ""),
            }
        )
    return sorted(found, key=lambda c: c["container"])


def is_up(config: dict[str, Any] | None) -> bool:
    if config is None or not (inventory_path() / "hosts.yml").exists():
        return False
    running = {c["node"] for c in containers() if c["kind"] == "node" and c["state"] == "running"}
    return all(n["name"] in running for n in config["nodes"])


def require_running_services() -> None:
    """Refuse unless the lab is up: its inventory written and its registry answering."""
    import urllib.request

    if not (inventory_path() / "hosts.yml").exists():
        raise UsageError("the lab is not up (no lab inventory): start it with `toolkit lab up --profile k8s`.")
    import urllib.error

    try:
        with urllib.request.urlopen(f"http://{REGISTRY_HOST_ADDRESS}/v2/", timeout=5):  # noqa: S310 - loopback
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 401:  # the lab registry asks for credentials (htpasswd): 401 is its answer
            raise UsageError(f"the lab's registry on {REGISTRY_HOST_ADDRESS} answers HTTP {exc.code}: "
                             "run `toolkit lab up`.") from None
    except OSError as exc:
        raise UsageError(f"the lab's registry does not answer on {REGISTRY_HOST_ADDRESS} ({exc}): "
                         "run `toolkit lab up`.") from None


def recreated_by(config: dict[str, Any]) -> list[str]:
    """The lab's existing nodes that bringing `config` up would recreate, losing what is on them.

    A node is recreated when its profile or distribution changes (its container options change).
    Returns descriptions such as "node1 (server -> k8s)"; empty when nothing is recreated.
    """
    existing = {c["node"]: c for c in containers() if c["kind"] == "node"}
    lost = []
    for node in config["nodes"]:
        now = existing.get(node["name"])
        if now is None:
            continue
        for key, default in (("profile", "server"), ("distribution", "trixie")):
            if now[key] and now[key] != node.get(key, default):
                lost.append(f"{node['name']} ({key} {now[key]} -> {node.get(key, default)})")
                break
    return lost


def profiles() -> dict[str, str]:
    """Profile of each lab node container that exists now: {node name: profile}."""
    return {c["node"]: c["profile"] for c in containers() if c["kind"] == "node"}


def default_bundle() -> Path:
    """Where lab/build-k8s-bundle caches the bundle of the Kubernetes version the roles default to."""
    defaults = yamlfile.load(paths.content_dir() / "roles" / "kube_packages" / "defaults" / "main.yml",
                             "kube_packages defaults")
    return paths.cache_dir() / "bundles" / f"k8s-{defaults['kube_packages_version']}"


def apps_build_script() -> Path | None:
    """apps/build.sh of a checkout (an installed wheel has no example apps' sources)."""
    script = paths.content_dir() / "apps" / "build.sh"
    return script if script.is_file() else None


def published_artifacts() -> set[str]:
    """Names the lab file server's SHA256SUMS lists (empty when there is none yet)."""
    sums_file = files_dir() / "SHA256SUMS"
    if not sums_file.exists():
        return set()
    return {line.split()[-1].lstrip("*") for line in sums_file.read_text().splitlines() if line.strip()}


def missing_artifacts(names: list[str]) -> list[str]:
    """Which of the artifacts `names` the lab's file server lacks, or lacks in its SHA256SUMS."""
    listed = published_artifacts()
    return [n for n in names if not (files_dir() / n).is_file() or n not in listed]


REGISTRY_USER = "toolkit"


def registry_secret_paths() -> tuple[Path, Path]:
    """The lab registry's credentials (USER:PASSWORD, 0600) and its htpasswd file (bcrypt, 0600)."""
    secrets = paths.lab_dir() / "secrets"
    return secrets / "registry", secrets / "registry.htpasswd"


def ensure_registry_credentials() -> tuple[str, str]:
    """The lab registry's user and password: created once (random), kept in the lab's secrets.

    Also keeps the registry's htpasswd line in step with them; it is rewritten only when the password
    changed (a bcrypt hash has a random salt, and an unchanged file must not restart the registry).
    A password an operator wrote into the credentials file is used as it is (rotation).
    Returns (user, password).
    """
    import secrets as token

    import bcrypt

    credentials, htpasswd = registry_secret_paths()
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.parent.chmod(0o700)
    if not credentials.exists():
        credentials.touch(mode=0o600)
        credentials.write_text(f"{REGISTRY_USER}:{token.token_urlsafe(24)}\n")
    user, _, password = credentials.read_text().strip().partition(":")
    current = htpasswd.read_text().strip() if htpasswd.exists() else ""
    stored_user, _, stored_hash = current.partition(":")
    if stored_user != user or not stored_hash or not bcrypt.checkpw(password.encode(), stored_hash.encode()):
        if not htpasswd.exists():
            htpasswd.touch(mode=0o600)
        line = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
        htpasswd.write_text(f"{user}:{line}\n")
    return user, password
