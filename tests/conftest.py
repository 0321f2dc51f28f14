"""Shared fixtures. Tests that need a Docker engine are marked `lab` and skip with a reason without one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
