"""pydantic's ValidationError, told as one sentence: the source, the key path, what is expected."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

_EXPECT = {
    "int_type": "an integer",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "bool_type": "true or false",
    "float_type": "a number",
}


def key_path(loc: Sequence[str | int]) -> str:
    """pydantic's location as a person writes it: ('apps', 2, 'resources', 'memory') → apps[2].resources.memory."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _join(base: str, key: str) -> str:
    if not key:
        return base
    if not base:
        return key
    return base + ("" if key.startswith("[") else ".") + key


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys a person may write at `loc` (derived keys left out: they are computed)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    derived = getattr(model, "derived", ())
    return [k for k in model.model_fields if k not in derived]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe(exc: ValidationError, source: str, root: type[BaseModel]) -> str:
    """One sentence for the first error of `exc`: "<source>: '<key>' <what is wrong and expected>."

    `source` names the document ("stack file /path/x.yml"); `root` is the model validated, used to
    list the allowed keys when an unknown one is met.
    """
    error = exc.errors(include_url=False)[0]
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    key = key_path(loc)
    if kind == "toolkit":
        sub = ctx.get("key")
        message = str(ctx["message"])
        text = message if sub is None else (f"'{_join(key, sub)}' {message}" if _join(key, sub) else message)
    elif kind == "missing":
        text = f"required key '{key}' is missing"
    elif kind == "extra_forbidden":
        text = f"unknown key '{key}'. Allowed keys: {', '.join(_allowed(root, loc[:-1]))}"
    elif kind == "literal_error":
        choices = re.sub(r"'([^']*)'", r"\1", str(ctx.get("expected", ""))).replace(" or ", ", ")
        text = f"'{key}' is {_shown(error['input'])}; supported: {choices}"
    elif kind in _EXPECT:
        text = f"'{key}' must be {_EXPECT[kind]}, got {_shown(error['input'])}"
    else:
        text = f"'{key}': {error['msg']}"
    text = text.rstrip()
    return f"{source}: {text}" + ("" if text.endswith(".") else ".")
