"""Controller prerequisites, checked by `toolkit doctor`."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from . import paths

COLLECTIONS = ("community.docker", "community.general", "community.postgresql", "community.mysql",
               "community.rabbitmq", "kubernetes.core", "ansible.posix")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "required": self.required}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _collections() -> Check:
    try:
        import ansible_collections
    except ImportError:
        return Check("collections", False, "the `ansible` package (which ships the collections) is not installed")
    roots = [Path(p) for p in ansible_collections.__path__]
    missing = [c for c in COLLECTIONS if not any((r / c.replace(".", "/")).is_dir() for r in roots)]
    if missing:
        return Check("collections", False, "missing: " + ", ".join(missing) + " (pip install ansible)")
    return Check("collections", True, ", ".join(COLLECTIONS))


def _docker() -> Check:
    from .errors import UsageError
    from .lab import docker_client

    try:
        info = docker_client().info()
    except UsageError as exc:
        return Check("docker engine", False, str(exc), required=False)
    return Check("docker engine", True, f"{info.get('ServerVersion')} ({info.get('Driver')}, "
                 f"cgroup v{info.get('CgroupVersion')}); the lab can run", required=False)


def checks() -> list[Check]:
    py_ok = sys.version_info >= (3, 10)
    results = [Check("python", py_ok, sys.version.split()[0] + ("" if py_ok else " (3.10+ needed)"))]
    for dist in ("ansible-core", "ansible-runner", "docker", "jinja2", "typer"):
        ver = _version(dist)
        results.append(Check(dist, ver is not None, ver or f"not installed (pip install {dist})"))
    results.append(_collections())
    results.append(Check("content", (paths.content_dir() / "playbooks").is_dir(), str(paths.content_dir())))
    results.append(_docker())
    deb = shutil.which("debootstrap")
    results.append(Check("debootstrap", deb is not None,
                         deb or "not found; the lab builds its base image with it: apt-get install -y debootstrap",
                         required=False))
    return results
