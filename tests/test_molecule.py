"""Every molecule scenario (molecule/<name>/): create, converge, idempotence, verify, destroy.

Each scenario is a work unit of its own for pytest-xdist (tests/conftest.py, pytest_xdist_make_scheduler),
so both workers share them. Select a subset with TOOLKIT_MOLECULE=java,redis (default: all); a name that is
no scenario stops the collection with a usage error.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import BIN, MOLECULE_SCENARIOS, ROOT

pytestmark = [pytest.mark.lab, pytest.mark.slow]

WANTED = [s for s in os.environ.get("TOOLKIT_MOLECULE", ",".join(MOLECULE_SCENARIOS)).split(",") if s]
if set(WANTED) - set(MOLECULE_SCENARIOS):
    raise pytest.UsageError(f"TOOLKIT_MOLECULE names no molecule scenario: "
                            f"{', '.join(sorted(set(WANTED) - set(MOLECULE_SCENARIOS)))} "
                            f"(there are: {', '.join(MOLECULE_SCENARIOS)})")


@pytest.mark.parametrize("scenario", WANTED)
def test_scenario(scenario: str, require_docker: None) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_FORCE_COLOR": "0",
           "PY_COLORS": "0"}
    result = subprocess.run([str(BIN / "molecule"), "test", "-s", scenario], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (result.stdout[-8000:] + "\n" + result.stderr[-4000:])
