"""The rabbitmq role's filters (roles/rabbitmq/filter_plugins/rabbitmq_definitions.py): what differs between the
wanted vhosts and users and a broker's `rabbitmqctl export_definitions`. The bare e2e runs them against a real
broker (rerun with 0 changed, rotated passwords applied); these pin the cases it does not reach.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parent.parent


def load() -> ModuleType:
    path = ROOT / "roles" / "rabbitmq" / "filter_plugins" / "rabbitmq_definitions.py"
    spec = importlib.util.spec_from_file_location("rabbitmq_definitions", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


F = load()


def hashed(password: str, salt: bytes = b"\x01\x02\x03\x04", algo: Any = hashlib.sha256) -> str:
    return base64.b64encode(salt + algo(salt + password.encode()).digest()).decode()


def test_the_documented_hash_matches_its_password() -> None:
    # RabbitMQ's documentation (Passwords, "Computing Password Hash"): salt 908DC60A, password test12.
    stored = "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    assert F.password_matches("test12", stored)
    assert not F.password_matches("test13", stored)
    assert F.password_matches("test12", stored, "rabbit_password_hashing_sha256")


@pytest.mark.parametrize("stored", ["", "not base64!", base64.b64encode(b"abc").decode(), base64.b64encode(b"abcd").decode()])
def test_a_missing_or_malformed_hash_matches_no_password(stored: str) -> None:
    assert not F.password_matches("x", stored)


def test_each_rabbitmq_hashing_module_and_an_unknown_one() -> None:
    odd = "p/@:%#'$ xé"
    assert F.password_matches(odd, hashed(odd, algo=hashlib.sha512), "rabbit_password_hashing_sha512")
    assert F.password_matches(odd, hashed(odd, algo=hashlib.md5), "rabbit_password_hashing_md5")
    with pytest.raises(AnsibleFilterError, match="unknown hashing algorithm 'bcrypt'"):
        F.password_matches(odd, hashed(odd), "bcrypt")


DEFS = {
    "vhosts": [{"name": "/"}, {"name": "shop"}],
    "users": [
        {"name": "shop", "password_hash": hashed("s3cret"), "hashing_algorithm": "rabbit_password_hashing_sha256",
         "tags": ["management"]},
        {"name": "old", "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "a,b"},
    ],
    "permissions": [{"user": "shop", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"}],
}
SHOP = {"name": "shop", "password": "s3cret", "tags": ["management"],
        "permissions": [{"vhost": "shop", "configure_priv": ".*", "write_priv": ".*", "read_priv": ".*"}]}


def test_a_broker_that_matches_needs_nothing() -> None:
    assert F.vhosts_to_change([{"name": "shop"}], DEFS) == []
    assert F.passwords_to_change([SHOP], DEFS) == []
    assert F.users_to_sync([SHOP, {"name": "old", "tags": ["b", "a"]}], DEFS) == []


def test_what_differs_is_handed_on_and_passwords_never() -> None:
    assert F.vhosts_to_change([{"name": "new"}, {"name": "shop", "state": "absent"}, {"name": "gone", "state": "absent"}],
                              DEFS) == [{"name": "new"}, {"name": "shop", "state": "absent"}]
    rotated = {**SHOP, "password": "rotated"}
    assert F.passwords_to_change([rotated, {"name": "new", "password": "x"}], DEFS) == [rotated]
    # an empty stored hash (a user made without a password) differs from any wanted password
    assert F.passwords_to_change([{"name": "old", "password": "x"}], DEFS) == [{"name": "old", "password": "x"}]
    wanted = [
        {**SHOP, "tags": []},                                   # tags differ
        {**SHOP, "name": "shop", "permissions": []},            # a vhost's permissions to clear
        {**SHOP, "permissions": [{"vhost": "shop", "read_priv": ".*"}]},  # left-out privileges are ^$
        {"name": "new", "password": "x"},                       # to create
        {"name": "old", "state": "absent"},                     # to delete
        {"name": "never", "state": "absent"},                   # absent already
    ]
    synced = F.users_to_sync(wanted, DEFS)
    assert [u["name"] for u in synced] == ["shop", "shop", "shop", "new", "old"]
    assert all("password" not in u for u in synced)
