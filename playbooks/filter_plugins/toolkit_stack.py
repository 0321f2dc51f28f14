"""Filters over the toolkit's stack model: the CLI's own Python code (pytoolkit.stack), called from Ansible.

Loaded automatically for the playbooks in this directory's parent. pytoolkit is imported from Ansible's
Python (the installed toolkit, whose playbooks live under pytoolkit/content/), else from the checkout
this directory belongs to (playbooks/filter_plugins/ is two levels below the repository root). The
toolkit needs pydantic>=2.6 in that Python.

Filters (docs/stack.md):
  stack | toolkit_stack_model(source)                        raw or normalised stack -> normalised stack
  stack | toolkit_app_environment(app, endpoints, secrets)   the app's environment (the wiring)
  hosts | toolkit_endpoints(hostvars, port)                  [[address, port], ...] for the wiring
  ref | toolkit_image_ref                                    {full, registry, repository, tag, digest}
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from ansible.errors import AnsibleFilterError


def _find_toolkit() -> None:
    """Make pytoolkit importable: installed (the wheel ships the playbooks under pytoolkit/content/), else
    from the checkout that holds this file (playbooks/<plugins>/ is two levels below its root)."""
    try:
        import pytoolkit.stack  # noqa: F401
    except ImportError as exc:
        checkout = Path(__file__).resolve().parents[2]
        if exc.name not in ("pytoolkit", "pytoolkit.stack") or not (checkout / "pytoolkit" / "stack").is_dir():
            return  # another module is missing (pydantic?): reported when the toolkit is used
        for name in [m for m in sys.modules if m == "pytoolkit" or m.startswith("pytoolkit.")]:
            del sys.modules[name]  # e.g. a namespace package left by an install without the code
        sys.path.insert(0, str(checkout))


_find_toolkit()

_IMPORT_ERROR: ImportError | None = None
try:
    from pytoolkit import stack as _stack
    from pytoolkit.errors import UsageError
except ImportError as exc:  # e.g. pydantic missing from Ansible's Python: say so when a filter is used
    _IMPORT_ERROR = exc


def _need_toolkit() -> None:
    if _IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            f"the toolkit's stack filters cannot import pytoolkit ({_IMPORT_ERROR}); install the toolkit "
            f"(or pydantic>=2.6 for a checkout) into the Python that runs Ansible: {sys.executable}"
        )


def toolkit_stack_model(data: Any, source: str = "stack (variable toolkit_stack)") -> dict[str, Any]:
    """Validate a raw or normalised stack document and return the normalised one (pytoolkit.stack.normalise).

    `source` names the document in messages, as the CLI does: "stack file /path/stack.yml". A bad
    document raises AnsibleFilterError with the CLI's message.
    """
    _need_toolkit()
    try:
        return _stack.normalise(data, source)
    except UsageError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _endpoint_list(value: Any, thing: str) -> list[tuple[str, int]]:
    result: list[tuple[str, int]] = []
    for item in value or []:
        if isinstance(item, dict):
            host, port = item.get("host"), item.get("port")
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            host, port = item
        else:
            raise AnsibleFilterError(f"endpoint {item!r} of '{thing}' is neither [host, port] nor {{host, port}}.")
        try:
            result.append((str(host), int(port)))
        except (TypeError, ValueError):
            raise AnsibleFilterError(f"endpoint {item!r} of '{thing}' has no integer port.") from None
    return result


def toolkit_app_environment(data: Any, app_name: str, endpoints: dict[str, Any],
                            secrets: dict[str, Any]) -> dict[str, str]:
    """The environment of one app (pytoolkit.stack.app_environment) from a raw or normalised stack.

    `endpoints`: {'rdbms': [[host, port], ...], 'catalog': [...], ...} ([host, port] pairs or {host, port}
    mappings); `secrets`: {'rdbms_password', 'nosql_password', 'queue_password'}. Raises AnsibleFilterError.
    """
    _need_toolkit()
    try:
        model = _stack.validate(data, "stack (toolkit_app_environment)")
        pairs = {str(k): _endpoint_list(v, str(k)) for k, v in (endpoints or {}).items()}
        plain = {str(k): (None if v is None else str(v)) for k, v in (secrets or {}).items()}
        return _stack.app_environment(model, str(app_name), pairs, plain)
    except (UsageError, ValueError) as exc:
        raise AnsibleFilterError(str(exc)) from None
    except KeyError:
        raise AnsibleFilterError(f"the stack has no app '{app_name}'.") from None


def toolkit_endpoints(hosts: Any, hostvars: Any, port: Any) -> list[list[Any]]:
    """[[address, port], ...] for inventory `hosts`: each host's toolkit_address, else ansible_host, else
    its name (pytoolkit.stack.address), with `port`. Raises AnsibleFilterError for an address that
    cannot be a URL host."""
    _need_toolkit()
    result: list[list[Any]] = []
    for host in hosts or []:
        found = hostvars[host] if host in hostvars else {}
        values = {k: found[k] for k in ("toolkit_address", "ansible_host") if k in found}
        address = _stack.address(str(host), values)
        why = _stack.url_host_problem(address)
        if why:
            raise AnsibleFilterError(f"host '{host}' would appear in URLs as '{address}' ({why}); set "
                                     "toolkit_address or ansible_host for it to an IP address or a DNS name.")
        result.append([address, int(port)])
    return result


def toolkit_image_ref(ref: Any) -> dict[str, Any]:
    """A parsed, normalised image reference: {full, registry, repository, tag, digest}."""
    _need_toolkit()
    try:
        parsed = _stack.parse_image(str(ref))
    except ValueError as exc:
        raise AnsibleFilterError(f"image '{ref}': expected {exc}") from None
    return {"full": parsed.full, "registry": parsed.registry, "repository": parsed.repository,
            "tag": parsed.tag, "digest": parsed.digest}


class FilterModule:
    """The toolkit's stack filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "toolkit_stack_model": toolkit_stack_model,
            "toolkit_app_environment": toolkit_app_environment,
            "toolkit_endpoints": toolkit_endpoints,
            "toolkit_image_ref": toolkit_image_ref,
        }
