"""Strict YAML loading: duplicate keys and parse errors become UsageErrors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


def _construct_vault(loader: _StrictLoader, node: yaml.Node) -> str:
    # Ansible-vault inline values: present, but opaque to the validator.
    return "<vaulted>"


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("!vault", _construct_vault)
_StrictLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def load(path: Path, what: str) -> Any:
    """Load one YAML document. `what` names the file's role in messages ("inventory", "stack file")."""
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist.")
    if not path.is_file():
        raise UsageError(f"{what} {path} is not a file.")
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.startswith("$ANSIBLE_VAULT"):
        return "<vaulted>"
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(f"{what} {path} is not valid YAML:{where}: {exc.problem or exc}.") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{what} {path} is not valid YAML: {exc}.") from None
