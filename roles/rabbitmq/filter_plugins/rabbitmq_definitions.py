"""Filters that compare the wanted vhosts and users with a broker's definitions.

The definitions are the JSON document `rabbitmqctl export_definitions - --format json` prints: ``vhosts``
(``[{"name": ...}]``), ``users`` (``[{"name", "password_hash", "hashing_algorithm", "tags"}]``, tags a list
or, before RabbitMQ 3.10, a comma-separated string) and ``permissions`` (``[{"user", "vhost", "configure",
"write", "read"}]``). One such call replaces one rabbitmqctl call (an Erlang VM start, about 2 s) per
vhost, user and check, so a broker that already matches costs one call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any, Callable

from ansible.errors import AnsibleFilterError

# RabbitMQ's password hashing modules: hash = base64(salt ++ H(salt ++ password)), a 4-byte salt.
_HASHES: dict[str, Callable[[bytes], Any]] = {
    "rabbit_password_hashing_sha256": hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
    "rabbit_password_hashing_md5": hashlib.md5,
}
_SALT_BYTES = 4
# community.rabbitmq.rabbitmq_user's default for a permission left out.
_NO_PRIV = "^$"


def password_matches(password: str, password_hash: str, algorithm: str = "rabbit_password_hashing_sha256") -> bool:
    """Whether `password` is the one RabbitMQ stored as `password_hash`.

    Args:
        password: the clear-text password (str, UTF-8 encoded as rabbitmqctl does).
        password_hash: the base64 ``password_hash`` of the user's definition; empty for a user without one.
        algorithm: the definition's ``hashing_algorithm``.
    Returns:
        True when the salted hash of `password` equals the stored one; False for an empty or malformed hash.
    Raises:
        AnsibleFilterError: for a hashing algorithm RabbitMQ does not ship.
    """
    if algorithm not in _HASHES:
        raise AnsibleFilterError(f"rabbitmq_passwords_to_change: unknown hashing algorithm {algorithm!r} "
                                 f"(known: {', '.join(sorted(_HASHES))})")
    try:
        raw = base64.b64decode(password_hash or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    salt, stored = raw[:_SALT_BYTES], raw[_SALT_BYTES:]
    if len(salt) < _SALT_BYTES or not stored:
        return False
    computed = _HASHES[algorithm](salt + str(password).encode()).digest()
    return hmac.compare_digest(computed, stored)


def _existing_users(definitions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in definitions.get("users", [])}


def _tags(value: Any) -> set[str]:
    if isinstance(value, str):
        return {t for t in value.split(",") if t}
    return {str(t) for t in value or []}


def _permissions_wanted(user: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {p["vhost"]: (p.get("configure_priv", _NO_PRIV), p.get("write_priv", _NO_PRIV), p.get("read_priv", _NO_PRIV))
            for p in user.get("permissions") or []}


def _permissions_existing(definitions: dict[str, Any], name: str) -> dict[str, tuple[str, str, str]]:
    return {p["vhost"]: (p["configure"], p["write"], p["read"])
            for p in definitions.get("permissions", []) if p.get("user") == name}


def vhosts_to_change(vhosts: list[dict[str, Any]], definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of `rabbitmq_vhosts` (``[{name, state}]``) whose state the broker does not have yet."""
    existing = {v["name"] for v in definitions.get("vhosts", [])}
    return [v for v in vhosts if (v.get("state", "present") == "present") != (v["name"] in existing)]


def passwords_to_change(users: list[dict[str, Any]], definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """The wanted users (``[{name, password, ...}]``) that exist with another password.

    Raises:
        AnsibleFilterError: a user's definition names an unknown hashing algorithm.
    """
    existing = _existing_users(definitions)
    return [u for u in users if u["name"] in existing and not password_matches(
        u["password"], existing[u["name"]].get("password_hash", ""),
        existing[u["name"]].get("hashing_algorithm", "rabbit_password_hashing_sha256"))]


def users_to_sync(users: list[dict[str, Any]], definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of `rabbitmq_users` that rabbitmq_user must handle, without their passwords.

    That is a user to delete that exists, a user to create that does not, and an existing user whose tags
    or per-vhost permissions (vhosts left out have none) differ from the wanted ones.
    """
    existing = _existing_users(definitions)
    todo = []
    for user in users:
        name, present = user["name"], user.get("state", "present") == "present"
        if name not in existing:
            drift = present
        elif not present:
            drift = True
        else:
            drift = (_tags(user.get("tags")) != _tags(existing[name].get("tags"))
                     or _permissions_wanted(user) != _permissions_existing(definitions, name))
        if drift:
            todo.append({k: v for k, v in user.items() if k != "password"})
    return todo


class FilterModule:
    """rabbitmq_vhosts_to_change, rabbitmq_passwords_to_change, rabbitmq_users_to_sync."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "rabbitmq_vhosts_to_change": vhosts_to_change,
            "rabbitmq_passwords_to_change": passwords_to_change,
            "rabbitmq_users_to_sync": users_to_sync,
        }
