"""The wiring, once: the environment each app is given, whatever the mode renders it into.

A renderer (bare: a systemd environment file; docker: a container's environment; k8s: a Secret and a
ConfigMap) calls `app_environment` with the endpoints it knows (bare: every host's address and the
role's port variable; docker: container names; k8s: Service DNS names) and the inventory's secrets.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .model import KEYWORDS, Stack, env_var_name

Endpoint = tuple[str, int]
SECRETS = ("rdbms_password", "nosql_password", "queue_password")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_JDBC = {"postgresql": "postgresql", "mariadb": "mariadb"}


def _unbracketed(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def url_host(host: str) -> str:
    """`host` as it is written in a URL or a host:port list: IPv6 literals in brackets, the rest as is."""
    bare = _unbracketed(host)
    try:
        found = ipaddress.ip_address(bare)
    except ValueError:
        return host
    return f"[{bare}]" if found.version == 6 else bare


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 literal bracketed: ('::1', 80) → '[::1]:80'."""
    return f"{url_host(host)}:{port}"


def url_host_problem(host: str) -> str | None:
    """Why `host` cannot be the host of a URL (Java's URI parser, JDBC, AMQP clients), or None when it can.

    Accepted: IPv4 and IPv6 literals (bracketed or not, without a zone) and DNS names whose labels are
    letters, digits and inner '-'.
    """
    bare = _unbracketed(host)
    try:
        found = ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        if isinstance(found, ipaddress.IPv6Address) and found.scope_id:
            return "an IPv6 address with a zone cannot be written in a URL"
        return None
    if not host:
        return "it is empty"
    if len(host) > 253:
        return "it is longer than 253 characters"
    labels = host.split(".")
    for label in labels:
        if not _LABEL.match(label):
            if "_" in label:
                return "'_' is not allowed in a host name"
            return f"'{label}' is not a DNS label (letters, digits and inner '-', at most 63)"
    if labels[-1].isdigit():
        return "it is all digits but not an IPv4 address"
    return None


def address(name: str, variables: Mapping[str, Any]) -> str:
    """How other hosts reach inventory host `name`: its toolkit_address, else its ansible_host, else the name."""
    for key in ("toolkit_address", "ansible_host"):
        value = variables.get(key)
        if value is not None and str(value) != "":
            return str(value)
    return name


def _endpoints(app: str, used: str, endpoints: Mapping[str, Sequence[Endpoint]]) -> list[Endpoint]:
    found = endpoints.get(used)
    if not found:
        raise ValueError(f"app '{app}' uses '{used}', but no endpoint of '{used}' was given to the wiring.")
    result: list[Endpoint] = []
    for host, port in found:
        host = str(host)
        why = url_host_problem(host)
        if why:
            raise ValueError(f"endpoint '{host}' of '{used}' cannot be a URL host: {why}.")
        if isinstance(port, bool) or not 1 <= int(port) <= 65535:
            raise ValueError(f"endpoint '{host}' of '{used}' has port {port!r}; expected 1-65535.")
        result.append((host, int(port)))
    return result


def _secret(app: str, key: str, secrets: Mapping[str, Any]) -> str:
    value = secrets.get(key)
    if value is None:
        raise ValueError(f"app '{app}' needs the secret '{key}', which was not given to the wiring.")
    return str(value)


def app_environment(model: Stack, app_name: str, endpoints: Mapping[str, Sequence[Endpoint]],
                    secrets: Mapping[str, Any]) -> dict[str, str]:
    """The environment of app `app_name`: what it needs to reach what it uses, then its own `env`.

    `endpoints` maps each used thing ('rdbms', 'nosql', 'queue', app names) to its instances as
    (host, port); only what the app uses is read. `secrets` holds rdbms_password, nosql_password and
    queue_password; only those of services the app uses are read, and the result holds no other.
    Values are raw strings (never URL-encoded, never inside a URL with credentials), so any character
    in a secret survives. Keys (docs/stack.md, 'Wiring'): PORT, SERVICE_NAME; DB_URL, DB_USER,
    DB_PASSWORD; REDIS_HOST, REDIS_PORT, REDIS_PASSWORD; QUEUE_KIND, AMQP_ADDRESSES, AMQP_USER,
    AMQP_PASSWORD, AMQP_VHOST or KAFKA_BOOTSTRAP; <APP>_URLS. Raises KeyError for an unknown app and
    ValueError for a missing or malformed endpoint or a missing secret.
    """
    app = model.app(app_name)
    env = {"PORT": str(app.port), "SERVICE_NAME": app.name}
    for used in app.uses:
        found = _endpoints(app.name, used, endpoints)
        if used == "rdbms":
            rdbms = model.rdbms
            hosts = ",".join(host_port(h, p) for h, p in found)
            env["DB_URL"] = f"jdbc:{_JDBC[rdbms.engine]}://{hosts}/{rdbms.database}"
            env["DB_USER"] = rdbms.user
            env["DB_PASSWORD"] = _secret(app.name, "rdbms_password", secrets)
        elif used == "nosql":
            host, port = found[0]  # one Redis server: no client-side failover for a plain Redis
            env["REDIS_HOST"] = _unbracketed(host)
            env["REDIS_PORT"] = str(port)
            env["REDIS_PASSWORD"] = _secret(app.name, "nosql_password", secrets)
        elif used == "queue":
            queue = model.queue
            env["QUEUE_KIND"] = queue.engine
            addresses = ",".join(host_port(h, p) for h, p in found)
            if queue.engine == "rabbitmq":
                env["AMQP_ADDRESSES"] = addresses
                env["AMQP_USER"] = queue.user
                env["AMQP_PASSWORD"] = _secret(app.name, "queue_password", secrets)
                env["AMQP_VHOST"] = queue.vhost
            else:
                env["KAFKA_BOOTSTRAP"] = addresses
        else:
            assert used not in KEYWORDS
            env[f"{env_var_name(used)}_URLS"] = ",".join(f"http://{host_port(h, p)}" for h, p in found)
    env.update(app.env)  # the model refuses an `env` key that the wiring sets
    return env
