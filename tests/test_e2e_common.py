"""End to end on the lab: 2 nodes, `bootstrap --mode bare --tags common`, a rerun with zero
changes on every host, real state checked inside the nodes, then the lab torn down.

The test suite takes over the built-in lab (`toolkit-lab`): it tears it down when done.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import toolkit

# One lab at a time: every lab test runs on the same xdist worker, in order.
pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.xdist_group("lab")]


def node_exec(node: str, *cmd: str) -> str:
    out = subprocess.run(["docker", "exec", f"toolkit-lab-{node}", *cmd], capture_output=True, text=True, check=True)
    return out.stdout


def test_common_on_a_two_node_lab(require_docker: None) -> None:
    down = toolkit("lab", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    try:
        up = toolkit("lab", "up", "--nodes", "2")
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(toolkit("lab", "status", "--output", "json").stdout)
        nodes = [c for c in status["containers"] if c["kind"] == "node"]
        assert sorted(c["node"] for c in nodes) == ["node1", "node2"]
        assert all(c["state"] == "running" and c["address"] for c in nodes)
        services = {c["container"] for c in status["containers"] if c["kind"] == "service"}
        assert services == {"toolkit-lab-files", "toolkit-lab-registry"}

        first = toolkit("bootstrap", "--mode", "bare", "--tags", "common", "--output", "json")
        assert first.returncode == 0, first.stdout + first.stderr
        recap = json.loads(first.stdout)
        assert recap["status"] == "successful"
        assert {"node1", "node2"} <= set(recap["hosts"])
        assert "TASK common" in first.stderr  # progress went to stderr, the JSON alone to stdout

        second = toolkit("bootstrap", "--mode", "bare", "--tags", "common", "--output", "json")
        assert second.returncode == 0, second.stdout + second.stderr
        rerun = json.loads(second.stdout)
        changed = {host: counts["changed"] for host, counts in rerun["hosts"].items() if counts["changed"]}
        assert changed == {}, f"rerun changed tasks: {changed}"

        # Real state on the nodes.
        assert "toolkit" in node_exec("node1", "id", "toolkit")
        assert node_exec("node1", "getent", "passwd", "toolkit").strip().endswith("/usr/sbin/nologin")
        assert "node2" in node_exec("node1", "getent", "hosts", "node2")
        assert "node1" in node_exec("node2", "getent", "hosts", "node1")
        assert node_exec("node2", "cat", "/etc/timezone").strip() == "Etc/UTC"
    finally:
        down = toolkit("lab", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=toolkit.lab=toolkit-lab"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == [], "lab down left containers behind"
    nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", "name=^toolkit-lab$"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert nets == []
