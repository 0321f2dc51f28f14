"""Every molecule scenario (molecule/<name>/): create, converge, idempotence, verify, destroy.

Each scenario is a work unit of its own for pytest-xdist (tests/conftest.py, pytest_xdist_make_scheduler),
so both workers share them. Select a subset with TOOLKIT_MOLECULE=java,redis (default: all).
"""

from __future__ import annotations

import pytest

from conftest import MOLECULE_SCENARIOS, molecule_test, wanted_scenarios

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.mark.parametrize("scenario", wanted_scenarios(MOLECULE_SCENARIOS))
def test_scenario(scenario: str, require_docker: None) -> None:
    molecule_test(scenario)
