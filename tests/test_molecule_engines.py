"""The molecule scenarios of the container engines: docker_engine (an engine inside the node container)
and k8s_node (containerd and the Kubernetes prerequisites). Beside tests/test_molecule.py, which holds
the other scenarios; TOOLKIT_MOLECULE selects in both.
"""

from __future__ import annotations

import pytest

from conftest import molecule_test, wanted_scenarios
from test_molecule import ENGINES

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.mark.parametrize("scenario", wanted_scenarios(ENGINES))
def test_scenario(scenario: str, require_docker: None) -> None:
    molecule_test(scenario)
