"""Static checks over all content: yamllint, ansible-lint (production profile), syntax-check
of every playbook, role READMEs in step with their argument specs, mypy on the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import yaml

from conftest import BIN, MOLECULE_SCENARIOS, ROOT

PLAYBOOKS = sorted(p.name for p in (ROOT / "playbooks").glob("*.yml"))


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_yamllint() -> None:
    result = run(str(BIN / "yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production() -> None:
    result = run(str(BIN / "ansible-lint"), "--profile", "production", "--offline")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook: str) -> None:
    result = run(str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory/example.yml",
                 f"playbooks/{playbook}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_role_readmes_match_argument_specs() -> None:
    result = run(sys.executable, "scripts/role_docs.py", "--check")
    assert result.returncode == 0, result.stderr


def test_every_role_has_argument_specs_and_readme() -> None:
    for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        assert (role / "meta" / "argument_specs.yml").is_file(), f"{role.name}: no meta/argument_specs.yml"
        assert (role / "README.md").is_file(), f"{role.name}: no README.md"
        assert (role / "defaults" / "main.yml").is_file(), f"{role.name}: no defaults/main.yml"


def test_mypy_strict() -> None:
    result = run(str(BIN / "mypy"), "--strict", "pytoolkit")
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_ships_the_content(tmp_path: Path) -> None:
    """`pipx install .` must work outside a checkout: roles and playbooks travel inside the wheel."""
    result = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), ".")
    if result.returncode != 0 and "hatchling" in result.stderr:
        result = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), ".")
    assert result.returncode == 0, result.stderr
    import zipfile

    wheel = next(tmp_path.glob("toolkit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("pytoolkit/content/playbooks/bootstrap_bare.yml", "pytoolkit/content/roles/common/tasks/main.yml",
                     "pytoolkit/content/stacks/reference.yml", "pytoolkit/content/ansible.cfg"):
        assert expected in names, expected


HOSTNAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@pytest.mark.parametrize("scenario", MOLECULE_SCENARIOS)
def test_molecule_instances_have_valid_host_names(scenario: str) -> None:
    """Each molecule instance's host name (its `hostname`, else its name, as the docker driver sets it) is a
    valid one: with a "_" (a scenario name such as k8s_node), systemd renamed the host to one that /etc/hosts
    did not hold, and every sudo waited ~20 s on DNS (k8s_node took 23 min in CI instead of 3)."""
    shared = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())
    own = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text()) or {}
    for platform in own.get("platforms", shared["platforms"]):
        name = str(platform.get("hostname", platform["name"])).replace("${MOLECULE_SCENARIO_NAME}", scenario)
        assert HOSTNAME.match(name), f"molecule/{scenario}: instance host name {name!r} is not a valid host name"
