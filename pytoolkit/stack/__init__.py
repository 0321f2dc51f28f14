"""The stack: which RDBMS, NoSQL store, queue and apps make up the stack, and how they are wired.

One typed model (`model.Stack`, pydantic) is the single source of the stack file's schema, defaults and
normalisation. The CLI validates with it before any host is touched; the playbooks call the same code
through playbooks/filter_plugins/toolkit_stack.py. Every mode renders apps' environments with
`app_environment`. See docs/stack.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .. import yamlfile
from ..errors import UsageError
from .checks import INVENTORY_VARIABLES, URL_GROUPS, check_mode
from .errors import describe
from .image import ImageRef
from .image import parse as parse_image
from .model import DEFAULT_IMAGES, JAVA_VERSIONS, KEYWORDS, RESERVED_ENV, App, Nosql, Queue, Rdbms, Resources, Stack
from .wiring import SECRETS, Endpoint, address, app_environment, host_port, url_host, url_host_problem

__all__ = [
    "App", "DEFAULT_IMAGES", "Endpoint", "INVENTORY_VARIABLES", "ImageRef", "JAVA_VERSIONS", "KEYWORDS", "Nosql",
    "Queue", "RESERVED_ENV", "Rdbms", "Resources", "SECRETS", "Stack", "URL_GROUPS", "address", "app_environment",
    "check_mode", "dump", "host_port", "load", "normalise", "parse_image", "source_label", "to_yaml", "url_host",
    "url_host_problem", "validate",
]

_SERVICES = ("rdbms", "nosql", "queue")


def source_label(source: Path | str) -> str:
    """How messages name a stack's origin: a Path is "stack file <path>", a string is used as is."""
    return f"stack file {source}" if isinstance(source, Path) else source


def _plain(value: Any) -> Any:
    """Plain Python containers and scalars (Ansible hands over its own str/dict/list subclasses)."""
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def validate(data: Any, source: Path | str) -> Stack:
    """Validate a loaded stack document (raw or already normalised) and return the model.

    `source` names it in messages: the file's Path, or a phrase such as "stack (variable toolkit_stack)".
    Raises UsageError with one sentence naming the source, the key and what is expected.
    """
    label = source_label(source)
    if not isinstance(data, Mapping):
        raise UsageError(f"{label} must be a YAML mapping with keys name, rdbms, nosql, queue, apps.")
    try:
        model = Stack.model_validate(_plain(data))
    except ValidationError as exc:
        raise UsageError(describe(exc, label, Stack)) from None
    model._source = label
    return model


def load(path: Path) -> Stack:
    """Load and validate the stack file at `path`. Raises UsageError (missing file, bad YAML, bad content)."""
    return validate(yamlfile.load(path, "stack file"), path)


def dump(model: Stack) -> dict[str, Any]:
    """The normalised document: defaults filled, derived keys set, optional keys without a value left out.

    `validate(dump(m), ...)` gives a model whose dump equals `dump(m)` (normalisation is idempotent).
    """
    data = model.model_dump(mode="python", exclude_none=True)
    for service in _SERVICES:  # engine first, then the service's own keys, then the container keys
        body = data[service]
        shared = {k: body.pop(k) for k in ("image", "storage", "storage_bytes")}
        data[service] = {"engine": body.pop("engine"), **body, **shared}
    return data


def normalise(data: Any, source: Path | str) -> dict[str, Any]:
    """validate() then dump(): a raw or normalised stack document in, the normalised document out."""
    return dump(validate(data, source))


def to_yaml(model: Stack) -> str:
    """The normalised document as YAML, for the run directory's vars file (`toolkit_stack_file`)."""
    head = (f"---\n# The normalised stack, written by toolkit from {model.source}.\n"
            "# Valid input itself: the playbooks pass it through the same model (toolkit_stack_model).\n")
    return head + yaml.safe_dump(dump(model), sort_keys=False, default_flow_style=False, width=120)
