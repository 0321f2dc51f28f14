"""Where things live: the Ansible content (checkout or installed wheel) and the user's state."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def content_dir() -> Path:
    """Directory holding roles/, playbooks/, inventory/, stacks/ and ansible.cfg.

    An installed wheel carries them in pytoolkit/content; a checkout (or an
    editable install) has them one level above the package.
    """
    shipped = _PACKAGE / "content"
    if (shipped / "playbooks").is_dir():
        return shipped
    return _PACKAGE.parent


def playbook(name: str) -> Path:
    return content_dir() / "playbooks" / name


def default_stack() -> Path:
    return content_dir() / "stacks" / "reference.yml"


def state_dir() -> Path:
    """Per-user state: the lab, run records. Override with TOOLKIT_HOME."""
    base = os.environ.get("TOOLKIT_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "toolkit"
    )
    return Path(base)


def cache_dir() -> Path:
    """Rebuildable caches (base image root filesystems, built artifacts)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "toolkit"


def runs_dir() -> Path:
    return state_dir() / "runs"


def lab_dir() -> Path:
    return state_dir() / "lab"
