"""The stack file: which RDBMS, NoSQL store, queue and apps make up the stack.

Validated here, before any host is touched, so a typo is a message naming the
file and the key rather than a failed task halfway through a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import yamlfile
from .errors import UsageError

JAVA_VERSIONS = (8, 11, 17, 21)
_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$")
_MEMORY = re.compile(r"^[0-9]+(Ki|Mi|Gi)$")


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = False
    choices: tuple[Any, ...] = ()
    pattern: re.Pattern[str] | None = None
    expect: str = ""  # what a human should write, for messages


RDBMS = {
    "engine": Field(str, True, ("postgresql", "mariadb")),
    "database": Field(str, True, pattern=re.compile(r"^[a-z_][a-z0-9_]*$"), expect="a lowercase SQL identifier"),
    "user": Field(str, True, pattern=re.compile(r"^[a-z_][a-z0-9_]*$"), expect="a lowercase SQL identifier"),
    "version": Field((str, int)),
}
NOSQL = {
    "engine": Field(str, True, ("redis",)),
    "maxmemory": Field(str, pattern=re.compile(r"^[0-9]+(kb|mb|gb)$"), expect="a size such as 128mb"),
}
QUEUE = {
    "engine": Field(str, True, ("rabbitmq", "kafka")),
    "vhost": Field(str),
    "user": Field(str),
}
APP = {
    "name": Field(str, True, pattern=_NAME, expect="a DNS label: lowercase letters, digits and '-'"),
    "kind": Field(str, True, ("java", "node")),
    "artifact": Field(str, True),
    "port": Field(int, True),
    "image": Field(str),
    "java_version": Field(int, choices=JAVA_VERSIONS),
    "node_version": Field(int),
    "replicas": Field(int),
    "resources": Field(dict),
    "env": Field(dict),
    "health_path": Field(str, pattern=re.compile(r"^/"), expect="a path starting with '/'"),
}
RESOURCES = {
    "cpu": Field(str, pattern=_CPU, expect="cores such as 500m or 1"),
    "memory": Field(str, pattern=_MEMORY, expect="a size such as 256Mi"),
}
TOP = {
    "name": Field(str, True),
    "rdbms": Field(dict, True),
    "nosql": Field(dict, True),
    "queue": Field(dict, True),
    "apps": Field(list, True),
}


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", dict: "a mapping", list: "a list"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check(path: Path, where: str, data: Any, spec: dict[str, Field]) -> None:
    if not isinstance(data, dict):
        raise UsageError(f"stack file {path}: '{where}' must be a mapping, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise UsageError(
            f"stack file {path}: unknown key '{where}.{unknown[0]}'. Allowed keys: {', '.join(sorted(spec))}."
        )
    for key, field in spec.items():
        label = f"{where}.{key}" if where else key
        if key not in data or data[key] is None:
            if field.required:
                raise UsageError(f"stack file {path}: required key '{label}' is missing.")
            continue
        value = data[key]
        # bool is an int in Python; YAML 'yes' must not pass as a port or a version.
        if isinstance(value, bool) or not isinstance(value, field.kind):
            raise UsageError(
                f"stack file {path}: '{label}' must be {_type_name(field.kind)}, got {value!r}."
            )
        if field.choices and value not in field.choices:
            allowed = ", ".join(str(c) for c in field.choices)
            raise UsageError(f"stack file {path}: '{label}' is {value!r}; supported: {allowed}.")
        if field.pattern and not field.pattern.match(str(value)):
            raise UsageError(f"stack file {path}: '{label}' is {value!r}; expected {field.expect}.")


def validate(data: Any, path: Path) -> dict[str, Any]:
    """Check a loaded stack document and return it with defaults filled in."""
    if not isinstance(data, dict):
        raise UsageError(f"stack file {path} must be a YAML mapping with keys {', '.join(TOP)}.")
    _check(path, "", data, TOP)
    _check(path, "rdbms", data["rdbms"], RDBMS)
    _check(path, "nosql", data["nosql"], NOSQL)
    _check(path, "queue", data["queue"], QUEUE)
    if not data["apps"]:
        raise UsageError(f"stack file {path}: 'apps' is empty; list at least one app.")
    names: set[str] = set()
    ports: set[int] = set()
    apps = []
    for index, app in enumerate(data["apps"]):
        where = f"apps[{index}]"
        _check(path, where, app, APP)
        name = app["name"]
        if name in names:
            raise UsageError(f"stack file {path}: app name '{name}' is used twice.")
        if not 1 <= app["port"] <= 65535:
            raise UsageError(f"stack file {path}: '{where}.port' is {app['port']}; expected 1-65535.")
        if app["port"] in ports:
            raise UsageError(f"stack file {path}: port {app['port']} of '{name}' is used by another app.")
        if app["kind"] == "java" and "node_version" in app:
            raise UsageError(f"stack file {path}: '{where}.node_version' is set on a java app.")
        if app["kind"] == "node" and "java_version" in app:
            raise UsageError(f"stack file {path}: '{where}.java_version' is set on a node app.")
        _check(path, f"{where}.resources", app.get("resources") or {}, RESOURCES)
        for key, value in (app.get("env") or {}).items():
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise UsageError(f"stack file {path}: '{where}.env.{key}' must be a string or number.")
        names.add(name)
        ports.add(app["port"])
        filled = {"replicas": 1, "env": {}, "resources": {}, "health_path": "/health", **app}
        if app["kind"] == "java":
            filled.setdefault("java_version", 8)
        else:
            filled.setdefault("node_version", 20)
        apps.append(filled)
    return {**data, "apps": apps}


def load(path: Path) -> dict[str, Any]:
    return validate(yamlfile.load(path, "stack file"), path)
