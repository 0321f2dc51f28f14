"""Every molecule scenario (molecule/<name>/): create, converge, idempotence, verify, destroy.

Select a subset with TOOLKIT_MOLECULE=common,java (default: all).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import BIN, ROOT

ALL = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
WANTED = [s for s in os.environ.get("TOOLKIT_MOLECULE", ",".join(ALL)).split(",") if s]

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.mark.parametrize("scenario", WANTED)
def test_scenario(scenario: str, require_docker: None) -> None:
    assert scenario in ALL, f"no molecule scenario '{scenario}'"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_FORCE_COLOR": "0",
           "PY_COLORS": "0"}
    result = subprocess.run([str(BIN / "molecule"), "test", "-s", scenario], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (result.stdout[-8000:] + "\n" + result.stderr[-4000:])
