"""Checks of a valid stack against a mode and an inventory: what the schema alone cannot know."""

from __future__ import annotations

from ..errors import UsageError
from ..inventory import MODES, Inventory
from .model import Stack
from .wiring import address, url_host_problem

# Groups whose hosts appear in the apps' URLs, per mode (k8s uses Service names).
URL_GROUPS: dict[str, tuple[str, ...]] = {"bare": ("rdbms", "nosql", "queue", "apps"),
                                          "docker": ("rdbms", "nosql", "queue", "apps"), "k8s": ()}
# Inventory variables the checks read (the playbooks' preflight asks Ansible for exactly these).
INVENTORY_VARIABLES = ("toolkit_address", "ansible_host", "nodejs_install_method")
NODEJS_INSTALL_METHOD_DEFAULT = "nodesource"  # roles/nodejs/defaults/main.yml


def check_mode(model: Stack, mode: str, inv: Inventory | None = None) -> None:
    """Refuse a stack that `mode` cannot run, or, with `inv`, that this inventory cannot carry.

    Without an inventory: docker and k8s need an image on every app. With one: bare refuses two Node.js
    versions where an apps host installs the distribution's single Node.js (nodejs_install_method
    package); bare and docker refuse a host of rdbms, nosql, queue or apps whose URL host (toolkit_address,
    else ansible_host, else its name) cannot be a URL host. Values still holding Jinja are left to the
    playbooks' preflight, which sees them evaluated. Raises UsageError naming the file and key.
    """
    if mode not in MODES:
        raise UsageError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}.")
    if mode in ("docker", "k8s"):
        for index, app in enumerate(model.apps):
            if app.image is None:
                raise UsageError(f"{model.source}: 'apps[{index}].image' is missing; --mode {mode} runs every app "
                                 f"as a container, so app '{app.name}' needs an image.")
    if inv is None:
        return
    if mode == "bare":
        _check_node_versions(model, inv)
    for group in URL_GROUPS[mode]:
        for host in sorted(inv.groups.get(group, set())):
            values = {k: inv.value(host, k) for k in ("toolkit_address", "ansible_host")}
            url_host = address(host, values)
            if "{{" in url_host or "{%" in url_host:
                continue
            why = url_host_problem(url_host)
            if why:
                raise UsageError(
                    f"inventory {inv.path}: host '{host}' (group '{group}') would appear in the apps' URLs as "
                    f"'{url_host}', which is not a valid URL host ({why}); set toolkit_address or ansible_host "
                    "for it to an IP address or a DNS name."
                )


def _check_node_versions(model: Stack, inv: Inventory) -> None:
    nodes = [(i, app) for i, app in enumerate(model.apps) if app.kind == "node"]
    versions = {app.runtime_version for _, app in nodes}
    if len(versions) < 2:
        return
    for host in sorted(inv.groups.get("apps", set())):
        method = inv.value(host, "nodejs_install_method", NODEJS_INSTALL_METHOD_DEFAULT)
        if method == "package":
            (i, a), (j, b) = [next((i, app) for i, app in nodes if app.runtime_version == v) for v in sorted(versions)[:2]]
            raise UsageError(
                f"{model.source}: apps '{a.name}' and '{b.name}' ask for Node.js {a.node_version} and {b.node_version} "
                f"('apps[{i}].node_version', 'apps[{j}].node_version'), but inventory {inv.path} sets "
                f"nodejs_install_method 'package' for host '{host}', and the distribution ships one Node.js. Use one "
                "node_version, or nodejs_install_method nodesource or tarball."
            )
