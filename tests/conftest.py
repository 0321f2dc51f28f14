"""Shared fixtures. Tests that need a Docker engine are marked `lab` and skip with a reason without one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def docker_ok() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture
def toolkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty per-test state directory, so unit tests never see (or touch) the real lab."""
    home = tmp_path / "toolkit-home"
    monkeypatch.setenv("TOOLKIT_HOME", str(home))
    return home


def toolkit(*args: str, env: dict[str, str] | None = None, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
    """Run the installed `toolkit` command as a user would."""
    exe = shutil.which("toolkit", path=str(BIN)) or "toolkit"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


@pytest.fixture(scope="session")
def require_docker() -> None:
    if not docker_ok():
        if os.environ.get("CI"):
            pytest.fail("CI must provide a running Docker engine (.ci/run starts one)")
        pytest.skip("no Docker engine answers; start dockerd to run lab tests")


class Lab:
    """A lab of its own for one test module: its name prefixes its containers, networks and volumes,
    its loopback ports are shifted, and its state lives in its own TOOLKIT_HOME. So the e2e modules
    can run side by side (one per pytest worker) and never touch the user's built-in lab."""

    def __init__(self, name: str, port_offset: int, home: Path) -> None:
        self.name = name
        self.home = home
        self.env = {"TOOLKIT_LAB_NAME": name, "TOOLKIT_LAB_PORT_OFFSET": str(port_offset),
                    "TOOLKIT_HOME": str(home)}
        self.registry = f"127.0.0.1:{15000 + port_offset}"

    def toolkit(self, *args: str, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
        """Run `toolkit` against this lab."""
        return toolkit(*args, env=self.env, timeout=timeout)

    def container(self, node: str) -> str:
        return f"{self.name}-{node}"

    def exec(self, node: str, *cmd: str, env: dict[str, str] | None = None, check: bool = True,
             stdin: str | None = None) -> str:
        """Run a command in a node through the Docker API (the test's own view, not Ansible's path)."""
        args = ["docker", "exec", "-i"] if stdin is not None else ["docker", "exec"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        out = subprocess.run([*args, self.container(node), *cmd], capture_output=True, text=True, input=stdin)
        if check:
            assert out.returncode == 0, f"{cmd} on {node}: {out.stdout}{out.stderr}"
        return out.stdout + out.stderr

    def lab_dir(self) -> Path:
        return self.home / "lab"

    def secret(self, name: str) -> str:
        return (self.lab_dir() / "secrets" / name).read_text().rstrip("\n")

    def status(self) -> dict[str, Any]:
        result = self.toolkit("lab", "status", "--output", "json")
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def addresses(self) -> dict[str, str]:
        return {c["node"]: c["address"] for c in self.status()["containers"] if c["kind"] == "node"}

    def down(self) -> None:
        result = self.toolkit("lab", "down")
        assert result.returncode == 0, result.stdout + result.stderr


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON recap of a `--output json` run that must have succeeded."""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def changed_hosts(result: dict[str, Any]) -> dict[str, int]:
    return {host: counts["changed"] for host, counts in result["hosts"].items() if counts["changed"]}
