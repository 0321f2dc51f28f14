"""Action `toolkit_preflight`: the CLI's inventory and stack checks, run by the playbooks' preflight.

The rules live in Python only (pytoolkit.inventory.check_mode, pytoolkit.stack.check_mode); this action
applies them to the inventory as Ansible sees it, so a direct `ansible-playbook` run is refused with the
same words as `toolkit`. Secrets are not checked here (tasks name an undefined one themselves).

    - name: Check the inventory and the stack for --mode bare
      toolkit_preflight:
        mode: bare
        stack: "{{ toolkit_stack }}"             # raw or normalised
        source: "stack file /path/stack.yml"     # how messages name the stack
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase


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


class ActionModule(ActionBase):
    """Refuse what the CLI refuses, with its message; change nothing."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("mode", "stack", "source"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        try:
            from pytoolkit import inventory, stack
            from pytoolkit.errors import UsageError
        except ImportError as exc:
            return {**result, "failed": True, "msg": f"cannot import pytoolkit ({exc}); install the toolkit (or "
                    f"pydantic>=2.6 for a checkout) into the Python that runs Ansible: {sys.executable}"}
        args = self._task.args
        mode = str(args.get("mode", ""))
        sources = task_vars.get("ansible_inventory_sources") or ["(inventory)"]
        names = [*stack.INVENTORY_VARIABLES, *inventory.INVENTORY_VARIABLES]
        try:
            inv = inventory.from_ansible(", ".join(str(s) for s in sources), task_vars.get("groups") or {},
                                         task_vars.get("hostvars") or {}, names)
            inventory.check_mode(inv, mode, secrets=False)
            model = stack.validate(args.get("stack"), str(args.get("source") or "stack (variable toolkit_stack)"))
            stack.check_mode(model, mode, inv)
        except UsageError as exc:
            return {**result, "failed": True, "msg": str(exc)}
        return {**result, "changed": False, "msg": f"inventory and stack are valid for --mode {mode}"}
