"""Inventory checks made before any host is touched.

The inventory is Ansible's own YAML format. These checks cover what Ansible
would only notice mid-run (or never): the groups a mode needs, duplicate host
names, and the secrets a mode needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable, Mapping
from typing import Any

from . import yamlfile
from .errors import UsageError

MODES = ("bare", "docker", "k8s")

# Groups each mode places the stack on. Documented in docs/inventory.md.
REQUIRED_GROUPS: dict[str, tuple[str, ...]] = {
    "bare": ("rdbms", "nosql", "queue", "apps"),
    "docker": ("rdbms", "nosql", "queue", "apps"),
    "k8s": ("control_plane",),
}
SECRETS: dict[str, tuple[str, ...]] = {
    "bare": ("toolkit_rdbms_password", "toolkit_nosql_password", "toolkit_queue_password"),
    "docker": ("toolkit_rdbms_password", "toolkit_nosql_password", "toolkit_queue_password"),
    "k8s": (),
}
# Tags that never touch the stack's services, so they need no secrets.
TAGS_WITHOUT_SECRETS = frozenset({"preflight", "common"})
_GROUP_KEYS = {"hosts", "children", "vars"}
_HOST = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+$")
# The name a Kubernetes node registers: a lower-case RFC 1123 subdomain (labels of a-z, 0-9 and '-',
# joined by '.'), at most 63 characters so it also fits the kubernetes.io/hostname label kubelet sets.
_NODE_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Defaults of the role variables the k8s checks compare (roles/kubeadm_control_plane, roles/containerd).
K8S_IMAGE_REPOSITORY_DEFAULT = "registry.k8s.io"
K8S_CGROUP_DRIVER_DEFAULT = "systemd"
CONTAINERD_SYSTEMD_CGROUP_DEFAULT = True
# Inventory variables these checks read (the playbooks' preflight asks Ansible for exactly these).
INVENTORY_VARIABLES = (
    "k8s_control_plane_endpoint", "k8s_node_name", "k8s_image_repository", "kubeadm_control_plane_image_repository",
    "containerd_sandbox_image", "kubeadm_control_plane_cgroup_driver", "kubeadm_control_plane_kubelet_config",
    "containerd_systemd_cgroup",
)


@dataclass
class Inventory:
    """What the checks need of an inventory: groups, variable names, and the values of a few variables.

    Values are kept where they were written so `value()` can resolve them with Ansible's precedence.
    Values holding Jinja (`{{ ... }}`) are kept as written: only Ansible can evaluate them.
    """

    path: Path
    groups: dict[str, set[str]] = field(default_factory=dict)  # children flattened in
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # variables written on the host itself
    variables: set[str] = field(default_factory=set)  # every variable name defined anywhere
    depth: dict[str, int] = field(default_factory=dict)  # group -> depth below 'all' (all = 0)
    group_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # a group's inline `vars:`
    group_file_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # group_vars/<group>
    host_file_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # host_vars/<host>

    def value(self, host: str, name: str, default: Any = None) -> Any:
        """The value of variable `name` for `host`, resolved as Ansible does for inventory variables:
        inline group vars (by depth, then name) < group_vars/all < other group_vars files (by depth,
        then name) < inline host vars < host_vars files. Returns `default` when no layer defines it."""
        member_of = sorted({"all"} | {g for g, members in self.groups.items() if host in members},
                           key=lambda g: (0 if g == "all" else self.depth.get(g, 1), g))
        layers = [self.group_values.get(g, {}) for g in member_of]
        layers += [self.group_file_values.get(g, {}) for g in member_of]
        layers += [self.hosts.get(host, {}), self.host_file_values.get(host, {})]
        found = default
        for layer in layers:
            if name in layer:
                found = layer[name]
        return found


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
        if not found:
            raise UsageError(f"inventory directory {path} holds no .yml or .yaml file.")
        return found
    if not path.exists():
        raise UsageError(f"inventory {path} does not exist. Pass -i with a YAML inventory, or omit -i to use the lab.")
    return [path]


def _var_files(path: Path) -> list[tuple[str, str, Path]]:
    """(group_vars|host_vars, group or host name, file) for every variables file beside the inventory."""
    base = path if path.is_dir() else path.parent
    found: list[tuple[str, str, Path]] = []
    for sub in ("group_vars", "host_vars"):
        root = base / sub
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.suffix in (".yml", ".yaml", ""):
                    top = p.relative_to(root).parts[0]
                    owner = top if len(p.relative_to(root).parts) > 1 else Path(top).stem
                    found.append((sub, owner, p))
    return found


def _walk(inv: Inventory, file: Path, name: str, group: Any, trail: tuple[str, ...]) -> set[str]:
    if name in trail:
        raise UsageError(f"inventory {file}: group '{name}' contains itself ({' > '.join(trail + (name,))}).")
    if group is None:
        group = {}
    if not isinstance(group, dict):
        raise UsageError(f"inventory {file}: group '{name}' must be a mapping with hosts/children/vars.")
    unknown = sorted(set(group) - _GROUP_KEYS)
    if unknown:
        raise UsageError(
            f"inventory {file}: group '{name}' has unknown key '{unknown[0]}'; a group holds only hosts, children and vars."
        )
    members: set[str] = set()
    hosts = group.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise UsageError(f"inventory {file}: '{name}.hosts' must be a mapping of host names to their variables.")
    for host, hvars in hosts.items():
        host = str(host)
        if not _HOST.match(host):
            raise UsageError(f"inventory {file}: '{host}' in group '{name}' is not a valid host name.")
        hvars = hvars or {}
        if not isinstance(hvars, dict):
            raise UsageError(f"inventory {file}: variables of host '{host}' must be a mapping.")
        known = inv.hosts.setdefault(host, {})
        for key in ("ansible_host", "ansible_port"):
            if key in hvars and key in known and hvars[key] != known[key]:
                raise UsageError(
                    f"inventory {file}: host '{host}' is defined twice with different {key} "
                    f"({known[key]!r} and {hvars[key]!r}); host names must be unique."
                )
        known.update(hvars)
        inv.variables.update(hvars)
        members.add(host)
    gvars = group.get("vars") or {}
    if not isinstance(gvars, dict):
        raise UsageError(f"inventory {file}: '{name}.vars' must be a mapping.")
    inv.variables.update(gvars)
    inv.group_values.setdefault(name, {}).update(gvars)
    # Ansible's depth: 'all' is 0, a top-level group is a child of 'all'.
    depth = 0 if name == "all" else len(trail) + (0 if trail and trail[0] == "all" else 1)
    inv.depth[name] = max(depth, inv.depth.get(name, 0))
    children = group.get("children") or {}
    if not isinstance(children, dict):
        raise UsageError(f"inventory {file}: '{name}.children' must be a mapping of group names.")
    for child, body in children.items():
        members |= _walk(inv, file, str(child), body, trail + (name,))
    inv.groups.setdefault(name, set()).update(members)
    return members


def load(path: Path) -> Inventory:
    path = path.expanduser().resolve()
    inv = Inventory(path=path)
    for file in _files(path):
        data = yamlfile.load(file, "inventory")
        if data is None or data == {}:
            raise UsageError(f"inventory {file} is empty. See inventory/example.yml for the expected layout.")
        if not isinstance(data, dict):
            raise UsageError(
                f"inventory {file} is not an Ansible YAML inventory: expected a mapping of groups (e.g. 'all:'), "
                f"got {type(data).__name__}."
            )
        for name, group in data.items():
            _walk(inv, file, str(name), group, ())
    if not inv.hosts:
        raise UsageError(f"inventory {path} defines no hosts.")
    for kind, owner, file in _var_files(path):
        data = yamlfile.load(file, "inventory variables file")
        if isinstance(data, dict):
            inv.variables.update(data)
            values = inv.group_file_values if kind == "group_vars" else inv.host_file_values
            values.setdefault(owner, {}).update(data)
        elif data == "<vaulted>":
            # A fully vaulted vars file: its keys are unknown until decrypted; trust it.
            inv.variables.add(f"<vaulted:{file}>")
    return inv


def check_mode(inv: Inventory, mode: str, tags: list[str] | None = None, secrets: bool = True,
               extra: Mapping[str, Any] | None = None) -> None:
    """Refuse an inventory that cannot carry `mode`, naming what to add.

    `tags`: the run's --tags (None: all); runs of only TAGS_WITHOUT_SECRETS need no secret. `secrets`:
    False skips the secrets check (the playbooks' own preflight, whose tasks name an undefined secret
    themselves). `extra`: the run's extra vars (-e), which beat every inventory value. Raises UsageError.
    """
    if mode not in MODES:
        raise UsageError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}.")
    for group in REQUIRED_GROUPS[mode]:
        if not inv.groups.get(group):
            raise UsageError(
                f"inventory {inv.path}: --mode {mode} needs at least one host in group '{group}' "
                f"(groups needed: {', '.join(REQUIRED_GROUPS[mode])})."
            )
    if mode in ("bare", "docker") and len(inv.groups["rdbms"]) > 1:
        raise UsageError(
            f"inventory {inv.path}: group 'rdbms' has {len(inv.groups['rdbms'])} hosts; the stack runs one "
            "primary database server. Keep one host in 'rdbms'."
        )
    if mode == "k8s":
        planes = inv.groups["control_plane"]
        if len(planes) > 1:
            # The playbook bootstraps one control plane; joining more (behind k8s_control_plane_endpoint,
            # a load-balanced host:port) is not built yet. Refused here, and by the playbooks' preflight
            # through the same function, with the same words.
            raise UsageError(
                f"inventory {inv.path}: group 'control_plane' has {len(planes)} hosts; this version bootstraps one "
                "control plane (joining more behind k8s_control_plane_endpoint is not built yet). Keep one host "
                "there and put the others in 'workers'."
            )
        both = planes & inv.groups.get("workers", set())
        if both:
            raise UsageError(f"inventory {inv.path}: host '{sorted(both)[0]}' is in both 'control_plane' and 'workers'.")
        check_k8s_node_names(inv, extra)
        check_k8s_settings(inv, extra)
    if not secrets or (tags and set(tags) <= TAGS_WITHOUT_SECRETS):
        return
    if any(v.startswith("<vaulted:") for v in inv.variables):
        return
    missing = [s for s in SECRETS[mode] if s not in inv.variables]
    if missing:
        raise UsageError(
            f"inventory {inv.path}: --mode {mode} needs the secret '{missing[0]}' "
            f"(all of: {', '.join(SECRETS[mode])}). Define it in group_vars/all (ideally with ansible-vault)."
        )


def _k8s_value(inv: Inventory, extra: Mapping[str, Any] | None, host: str, name: str,
               default: Any = None) -> tuple[Any, str]:
    """The value of `name` for `host` (-e beats the inventory) and where it was given, for messages."""
    if extra and name in extra:
        return extra[name], f"{name} (given with -e)"
    missing = object()
    found = inv.value(host, name, missing)
    if found is missing:
        return default, f"{name} (default)" if default is not None else name
    return found, name


def _templated(value: Any) -> bool:
    """True for a value Ansible still has to evaluate (left to the playbooks' preflight, which sees it evaluated)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _flag(value: Any) -> bool | None:
    """A boolean as Ansible reads one (true/yes/on/1 ...), or None when it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "yes", "on", "1", "y", "t"):
            return True
        if word in ("false", "no", "off", "0", "n", "f"):
            return False
    return None


def k8s_hosts(inv: Inventory) -> list[str]:
    """The cluster's hosts: the control plane's, then the workers', each once and sorted."""
    planes = sorted(inv.groups.get("control_plane", set()))
    return planes + sorted(inv.groups.get("workers", set()) - set(planes))


def suggest_node_name(name: str) -> str:
    """A valid node name close to `name`: lower case, other characters as '-', trimmed to 63."""
    fixed = re.sub(r"[^a-z0-9.-]+", "-", name.lower())
    fixed = re.sub(r"\.{2,}", ".", fixed)
    fixed = ".".join(part.strip("-") for part in fixed.split(".") if part.strip("-"))
    return fixed[:63].rstrip(".-") or "node"


def check_k8s_node_names(inv: Inventory, extra: Mapping[str, Any] | None = None) -> None:
    """Refuse a cluster host whose Kubernetes node name kubeadm would change or refuse, or that two hosts share.

    A node registers as k8s_node_name when set, else as its inventory name; the name must be a lower-case
    RFC 1123 subdomain of at most 63 characters (kubeadm lowercases or refuses anything else, and every
    later step would look for a name that does not exist). Raises UsageError naming the host and the fix.
    """
    seen: dict[str, str] = {}
    for host in k8s_hosts(inv):
        value, where = _k8s_value(inv, extra, host, "k8s_node_name")
        if _templated(value):
            continue
        explicit = value is not None and str(value) != ""
        name = str(value) if explicit else host
        group = "control_plane" if host in inv.groups.get("control_plane", set()) else "workers"
        if not _NODE_NAME.match(name):
            if explicit:
                raise UsageError(
                    f"inventory {inv.path}: host '{host}' (group '{group}') sets {where} to '{name}', which is not a "
                    "valid Kubernetes node name (lower-case letters, digits, '-' and '.', starting and ending with a "
                    f"letter or digit, at most 63 characters). Use '{suggest_node_name(name)}' for instance.")
            raise UsageError(
                f"inventory {inv.path}: host '{host}' (group '{group}') would register with Kubernetes as node "
                f"'{host}', which is not a valid node name (lower-case letters, digits, '-' and '.', starting and "
                "ending with a letter or digit, at most 63 characters): kubeadm would lowercase or refuse it. Rename "
                f"the host, or keep its inventory name and set k8s_node_name: {suggest_node_name(host)} for it.")
        if name in seen:
            raise UsageError(
                f"inventory {inv.path}: hosts '{seen[name]}' and '{host}' would both register with Kubernetes as node "
                f"'{name}'; node names must be unique. Give one of them another k8s_node_name.")
        seen[name] = host


def check_k8s_settings(inv: Inventory, extra: Mapping[str, Any] | None = None) -> None:
    """Refuse settings of different roles that must agree for a cluster to work, naming both variables.

    - containerd's sandbox image (containerd_sandbox_image) must come from kubeadm's image repository
      (kubeadm_control_plane_image_repository); both follow k8s_image_repository by default.
    - kubelet's cgroup driver (kubeadm_control_plane_cgroup_driver, or cgroupDriver in
      kubeadm_control_plane_kubelet_config; kubeadm shares it with every node) must match containerd's
      containerd_systemd_cgroup on every node.
    Values still holding Jinja are left to the playbooks' preflight. Raises UsageError.
    """
    planes = sorted(inv.groups.get("control_plane", set()))
    if not planes:
        return
    plane = planes[0]
    repo, repo_var = _k8s_value(inv, extra, plane, "kubeadm_control_plane_image_repository")
    if repo in (None, ""):
        repo, repo_var = _k8s_value(inv, extra, plane, "k8s_image_repository")
        if repo in (None, ""):
            repo, repo_var = K8S_IMAGE_REPOSITORY_DEFAULT, "kubeadm_control_plane_image_repository (default)"
    kubelet, kubelet_var = _k8s_value(inv, extra, plane, "kubeadm_control_plane_kubelet_config", {})
    if isinstance(kubelet, Mapping) and "cgroupDriver" in kubelet:
        driver, driver_var = kubelet["cgroupDriver"], f"{kubelet_var}.cgroupDriver"
    else:
        driver, driver_var = _k8s_value(inv, extra, plane, "kubeadm_control_plane_cgroup_driver",
                                        K8S_CGROUP_DRIVER_DEFAULT)
    if not _templated(driver) and driver not in ("systemd", "cgroupfs"):
        raise UsageError(f"inventory {inv.path}: {driver_var} is '{driver}' (host '{plane}'); kubelet's cgroup "
                         "driver is systemd or cgroupfs.")
    for host in k8s_hosts(inv):
        sandbox, sandbox_var = _k8s_value(inv, extra, host, "containerd_sandbox_image")
        if sandbox in (None, ""):  # the role's default follows the host's k8s_image_repository
            follows, _ = _k8s_value(inv, extra, host, "k8s_image_repository")
            sandbox = f"{follows or K8S_IMAGE_REPOSITORY_DEFAULT}/pause"
            sandbox_var = "containerd_sandbox_image (default, from k8s_image_repository)"
        if not _templated(sandbox) and not _templated(repo):
            sandbox_repo = str(sandbox).rpartition("/")[0] or "docker.io/library"
            if sandbox_repo.rstrip("/") != str(repo).rstrip("/"):
                raise UsageError(
                    f"inventory {inv.path}: {sandbox_var} is '{sandbox}' on host '{host}', from {sandbox_repo}, but "
                    f"kubeadm pulls the control plane's images from {repo_var} '{repo}'. Pods' sandbox (pause) image "
                    "must come from the same repository: set k8s_image_repository alone (kubeadm and containerd both "
                    "follow it), or make kubeadm_control_plane_image_repository and containerd_sandbox_image agree.")
        systemd, systemd_var = _k8s_value(inv, extra, host, "containerd_systemd_cgroup",
                                          CONTAINERD_SYSTEMD_CGROUP_DEFAULT)
        uses_systemd = _flag(systemd)
        if uses_systemd is None or _templated(driver):
            continue
        if uses_systemd != (driver == "systemd"):
            fix = "true" if driver == "systemd" else "false"
            raise UsageError(
                f"inventory {inv.path}: {driver_var} is '{driver}' (kubelet on every node) but {systemd_var} is "
                f"{str(uses_systemd).lower()} on host '{host}' (containerd's runc SystemdCgroup): kubelet and the "
                f"container runtime must use the same cgroup driver. Set containerd_systemd_cgroup: {fix}, or "
                f"change {driver_var.split(' ')[0].split('.')[0]} to match.")


def from_ansible(path: str, groups: Mapping[str, Iterable[str]], hostvars: Mapping[str, Mapping[str, Any]],
                 names: Iterable[str]) -> Inventory:
    """An Inventory built from what a running play sees (for the playbooks' preflight action).

    `groups` and `hostvars` are Ansible's magic variables; only the variables in `names` are read, already
    resolved and templated by Ansible, and kept as the hosts' own values so `Inventory.value` returns them.
    """
    inv = Inventory(path=Path(path))
    for group, members in groups.items():
        if group != "ungrouped":
            inv.groups[str(group)] = {str(h) for h in members}
    wanted = list(names)
    for host in inv.groups.get("all", set()):
        found = hostvars.get(host) or {}
        own = {name: found[name] for name in wanted if name in found}
        inv.hosts[host] = own
        inv.variables.update(own)
    return inv
