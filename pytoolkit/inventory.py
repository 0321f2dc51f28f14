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


def check_mode(inv: Inventory, mode: str, tags: list[str] | None = None, secrets: bool = True) -> None:
    """Refuse an inventory that cannot carry `mode`, naming what to add.

    `tags`: the run's --tags (None: all); runs of only TAGS_WITHOUT_SECRETS need no secret. `secrets`:
    False skips the secrets check (the playbooks' own preflight, whose tasks name an undefined secret
    themselves). Raises UsageError.
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
