"""The molecule scenarios of the bare stack's roles (molecule/<name>/): create, converge, idempotence,
verify, destroy. The container engines' scenarios are in tests/test_molecule_engines.py, a file of their
own so that pytest-xdist (--dist loadfile) can run the two halves on both workers.

Select a subset with TOOLKIT_MOLECULE=java,redis (default: all).
"""

from __future__ import annotations

import pytest

from conftest import MOLECULE_SCENARIOS, molecule_test, wanted_scenarios

ENGINES = ["docker_engine", "k8s_node"]  # tests/test_molecule_engines.py
ROLES = [s for s in MOLECULE_SCENARIOS if s not in ENGINES]

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.mark.parametrize("scenario", wanted_scenarios(ROLES))
def test_scenario(scenario: str, require_docker: None) -> None:
    molecule_test(scenario)
