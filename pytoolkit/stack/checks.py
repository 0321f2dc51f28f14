"""Checks of a valid stack against a mode and an inventory: what the schema alone cannot know."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import yaml

from .. import paths
from ..errors import UsageError
from ..inventory import MODES, Inventory
from .model import Stack
from .wiring import address, url_host_problem

# Groups whose hosts appear in the apps' URLs, per mode (k8s uses Service names).
URL_GROUPS: dict[str, tuple[str, ...]] = {"bare": ("rdbms", "nosql", "queue", "apps"),
                                          "docker": ("rdbms", "nosql", "queue", "apps"), "k8s": ()}
# Inventory variables the checks read (the playbooks' preflight asks Ansible for exactly these).
INVENTORY_VARIABLES = (
    "toolkit_address", "ansible_host", "nodejs_install_method",
    # Where packages and keys come from (check_sources).
    "java_install_method", "java_repo_url", "java_repo_key_url", "java_repo_key_checksum", "java_tarball_url",
    "java_tarball_checksum", "toolkit_kafka_java_version", "nodejs_nodesource_key_url",
    "nodejs_nodesource_key_checksum", "nodejs_tarball_version", "nodejs_tarball_checksum", "postgresql_repo",
    "postgresql_pgdg_key_url", "postgresql_pgdg_key_checksum", "mariadb_repo", "mariadb_repo_key_url",
    "mariadb_repo_key_checksum", "rabbitmq_repo", "rabbitmq_repo_key_url", "rabbitmq_repo_key_checksum",
    "docker_engine_install_method", "docker_engine_repo_key_fingerprint",
)
NODEJS_INSTALL_METHOD_DEFAULT = "nodesource"  # roles/nodejs/defaults/main.yml
# The roles' defaults that check_sources compares (each role's defaults/main.yml).
JAVA_REPO_KEY_URL_DEFAULT = "https://packages.adoptium.net/artifactory/api/gpg/key/public"  # roles/java
KAFKA_JAVA_VERSION_DEFAULT = 21  # playbooks/bootstrap_bare.yml: toolkit_kafka_java_version
NODEJS_NODESOURCE_KEY_URL_DEFAULT = "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key"  # roles/nodejs
POSTGRESQL_PGDG_KEY_URL_DEFAULT = "https://www.postgresql.org/media/keys/ACCC4CF8.asc"  # roles/postgresql
MARIADB_REPO_KEY_URL_DEFAULT = "https://mariadb.org/mariadb_release_signing_key.pgp"  # roles/mariadb
RABBITMQ_REPO_KEY_URL_DEFAULT = (  # roles/rabbitmq
    "https://keys.openpgp.org/vks/v1/by-fingerprint/0A9AF2115F4687BD29803A206B73A36E6026DFCA")
DOCKER_ENGINE_INSTALL_METHOD_DEFAULT = "repo"  # roles/docker_engine
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")


def check_mode(model: Stack, mode: str, inv: Inventory | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
    """Refuse a stack that `mode` cannot run, or, with `inv`, that this inventory cannot carry.

    Without an inventory: docker and k8s need an image on every app. With one: bare refuses two Node.js
    versions where an apps host installs the distribution's single Node.js (nodejs_install_method
    package); bare and docker refuse a host of rdbms, nosql, queue or apps whose URL host (toolkit_address,
    else ansible_host, else its name) cannot be a URL host. Values still holding Jinja are left to the
    playbooks' preflight, which sees them evaluated. With an inventory, also check_sources. `extra`: the run's extra vars (-e), which beat every inventory value. Raises UsageError
    naming the file and key.
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
    check_sources(model, mode, inv, extra)


def _check_node_versions(model: Stack, inv: Inventory) -> None:
    nodes = [(i, app) for i, app in enumerate(model.apps) if app.kind == "node"]
    versions = {app.runtime_version for _, app in nodes}
    if len(versions) < 2:
        return
    for host in sorted(inv.groups.get("apps", set())):
        method = inv.value(host, "nodejs_install_method", NODEJS_INSTALL_METHOD_DEFAULT)
        if method in ("package", "nodesource"):
            (i, a), (j, b) = [next((i, app) for i, app in nodes if app.runtime_version == v) for v in sorted(versions)[:2]]
            raise UsageError(
                f"{model.source}: apps '{a.name}' and '{b.name}' ask for Node.js {a.node_version} and {b.node_version} "
                f"('apps[{i}].node_version', 'apps[{j}].node_version'), but inventory {inv.path} sets "
                f"nodejs_install_method '{method}' for host '{host}', which gives one Node.js per host (both name "
                "the package nodejs). Use one node_version, or nodejs_install_method tarball."
            )


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _value(inv: Inventory, extra: Mapping[str, Any] | None, host: str, name: str, default: Any) -> Any:
    """`name` for `host`: -e beats the inventory, which beats the role's default."""
    if extra and name in extra:
        return extra[name]
    return inv.value(host, name, default)


def _unset(value: Any) -> bool:
    return value is None or str(value).strip() == ""


@lru_cache(maxsize=1)
def java_distro_versions() -> dict[str, frozenset[int]]:
    """The Java versions each Debian release ships, as the java role knows them (its vars/Debian.yml,
    `_java_distro_versions`: what java_install_method auto decides by). Empty when the role is absent."""
    path = paths.content_dir() / "roles" / "java" / "vars" / "Debian.yml"
    try:
        table = (yaml.safe_load(path.read_text()) or {}).get("_java_distro_versions") or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {str(release): frozenset(int(v) for v in versions) for release, versions in table.items()}


def _refuse_key(inv: Inventory, host: str, group: str, what: str, url: Any, url_var: str, checksum_var: str,
                alternatives: str) -> None:
    raise UsageError(
        f"inventory {inv.path}: host '{host}' (group '{group}') installs {what}, whose signing key {url} "
        f"({url_var}) has no pinned checksum: set {checksum_var} to sha256:HEX of that key (checked before apt "
        f"trusts it), {alternatives}. Nothing was installed.")


def _check_java(inv: Inventory, extra: Mapping[str, Any] | None, host: str, group: str, version: int,
                why: str) -> None:
    """Refuse a Java install whose source is certain and unpinned (repo key or tarball without checksum)."""
    method = _value(inv, extra, host, "java_install_method", "auto")
    if _templated(method):
        return
    shipped = java_distro_versions()
    said = f"java_install_method {method}"
    if method == "auto":
        if not shipped or any(version in versions for versions in shipped.values()):
            return  # the host's release decides; the role's own preflight checks that case on the host
        method, said = "repo", f"java_install_method auto: no Debian release ships Java {version}"
    if method == "repo":
        url = _value(inv, extra, host, "java_repo_key_url", JAVA_REPO_KEY_URL_DEFAULT)
        checksum = _value(inv, extra, host, "java_repo_key_checksum", "")
        if _templated(url) or _templated(checksum) or _unset(url) or not _unset(checksum):
            return
        _refuse_key(inv, host, group, f"Java {version} ({why}) from the repository java_repo_url ({said})", url,
                    "java_repo_key_url", "java_repo_key_checksum",
                    "or set java_repo_key_url to \"\" and java_repo_signed_by to a keyring already on the host, or use "
                    "java_install_method tarball (with java_tarball_url and java_tarball_checksum)")
    elif method == "tarball":
        for name in ("java_tarball_url", "java_tarball_checksum"):
            if _unset(_value(inv, extra, host, name, "")):
                raise UsageError(
                    f"inventory {inv.path}: host '{host}' (group '{group}') installs Java {version} ({why}) with "
                    f"java_install_method tarball, but {name} is not set: set java_tarball_url and java_tarball_checksum "
                    "(sha256:HEX). Nothing was installed.")


def check_sources(model: Stack, mode: str, inv: Inventory, extra: Mapping[str, Any] | None = None) -> None:
    """Refuse, before any host is touched, a package source whose key or file has nothing to check it by.

    The roles default to the real vendors' repositories (Adoptium for Java versions Debian does not ship,
    NodeSource, and on request PGDG, MariaDB, Team RabbitMQ, Docker); a signing key is trusted only when
    it matches a pinned checksum (or, for Docker's, a pinned fingerprint). An unset pin would otherwise
    fail on the host, after common and the data services were installed. Cases the host's release decides
    (java_install_method auto with a version some release ships) and values still holding Jinja are left to
    the roles' own preflight. Raises UsageError naming the inventory, the host and the variable to set.
    """
    if mode in ("bare",):
        apps = sorted(inv.groups.get("apps", set()))
        javas = sorted({int(a.java_version) for a in model.apps if a.kind == "java" and a.java_version is not None})
        nodes = sorted({int(a.node_version) for a in model.apps if a.kind == "node" and a.node_version is not None})
        for host in apps:
            for version in javas:
                _check_java(inv, extra, host, "apps", version, "for the stack's Java apps")
            for version in nodes[:1]:
                _check_nodejs(inv, extra, host, version)
        if model.queue.engine == "kafka":
            for host in sorted(inv.groups.get("queue", set())):
                version = _value(inv, extra, host, "toolkit_kafka_java_version", KAFKA_JAVA_VERSION_DEFAULT)
                if not _templated(version) and str(version).isdigit():
                    _check_java(inv, extra, host, "queue", int(version), "for Kafka, toolkit_kafka_java_version")
        _check_repo_keys(model, inv, extra)
    if mode == "docker":
        for group in ("rdbms", "nosql", "queue", "apps"):
            for host in sorted(inv.groups.get(group, set())):
                method = _value(inv, extra, host, "docker_engine_install_method", DOCKER_ENGINE_INSTALL_METHOD_DEFAULT)
                fingerprint = _value(inv, extra, host, "docker_engine_repo_key_fingerprint", None)
                if method != "repo" or fingerprint is None or _templated(fingerprint):
                    continue  # None: the role's pinned default (Docker's release key)
                if not _FINGERPRINT.match(str(fingerprint).replace(" ", "")):
                    raise UsageError(
                        f"inventory {inv.path}: host '{host}' (group '{group}') installs Docker from Docker's "
                        f"repository (docker_engine_install_method repo), but docker_engine_repo_key_fingerprint is "
                        f"'{fingerprint}', not a key fingerprint (40 hexadecimal digits): set it to the fingerprint "
                        "Docker publishes for its release key (the role's default), or use "
                        "docker_engine_install_method package. Nothing was installed.")


def _check_nodejs(inv: Inventory, extra: Mapping[str, Any] | None, host: str, version: int) -> None:
    method = _value(inv, extra, host, "nodejs_install_method", NODEJS_INSTALL_METHOD_DEFAULT)
    if method == "nodesource":
        url = _value(inv, extra, host, "nodejs_nodesource_key_url", NODEJS_NODESOURCE_KEY_URL_DEFAULT)
        checksum = _value(inv, extra, host, "nodejs_nodesource_key_checksum", "")
        if _templated(checksum) or not _unset(checksum):
            return
        said = "(nodejs_install_method nodesource, the default)" if _value(
            inv, extra, host, "nodejs_install_method", None) is None else "(nodejs_install_method nodesource)"
        _refuse_key(inv, host, "apps", f"Node.js {version} from NodeSource {said}", url, "nodejs_nodesource_key_url",
                    "nodejs_nodesource_key_checksum",
                    "or use nodejs_install_method package (the distribution's Node.js) or tarball (with "
                    "nodejs_tarball_version and nodejs_tarball_checksum)")
    elif method == "tarball":
        for name in ("nodejs_tarball_version", "nodejs_tarball_checksum"):
            if _unset(_value(inv, extra, host, name, "")):
                raise UsageError(
                    f"inventory {inv.path}: host '{host}' (group 'apps') installs Node.js {version} with "
                    f"nodejs_install_method tarball, but {name} is not set: set nodejs_tarball_version (X.Y.Z) and "
                    "nodejs_tarball_checksum (sha256:HEX of the tarball). Nothing was installed.")


def _check_repo_keys(model: Stack, inv: Inventory, extra: Mapping[str, Any] | None) -> None:
    """The data services' vendor repositories (not the defaults: each role installs the distribution's
    packages unless told otherwise) need their key's checksum."""
    cases = []
    if model.rdbms.engine == "postgresql":
        cases.append(("rdbms", "postgresql_repo", "pgdg", "PostgreSQL from PGDG", "postgresql_pgdg_key_url",
                      POSTGRESQL_PGDG_KEY_URL_DEFAULT, "postgresql_pgdg_key_checksum"))
    else:
        cases.append(("rdbms", "mariadb_repo", "mariadb", "MariaDB from the MariaDB Foundation's repository",
                      "mariadb_repo_key_url", MARIADB_REPO_KEY_URL_DEFAULT, "mariadb_repo_key_checksum"))
    if model.queue.engine == "rabbitmq":
        cases.append(("queue", "rabbitmq_repo", "rabbitmq", "RabbitMQ from Team RabbitMQ's repositories",
                      "rabbitmq_repo_key_url", RABBITMQ_REPO_KEY_URL_DEFAULT, "rabbitmq_repo_key_checksum"))
    for group, switch, vendor, what, url_var, url_default, checksum_var in cases:
        for host in sorted(inv.groups.get(group, set())):
            if _value(inv, extra, host, switch, "distribution") != vendor:
                continue
            checksum = _value(inv, extra, host, checksum_var, "")
            if _templated(checksum) or not _unset(checksum):
                continue
            _refuse_key(inv, host, group, f"{what} ({switch} {vendor})", _value(inv, extra, host, url_var, url_default),
                        url_var, checksum_var, f"or set {switch} distribution")

