"""Shared fixtures. Tests that need a Docker engine are marked `lab` and skip with a reason without one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

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


def run_events(artifacts: Path) -> Iterator[dict[str, Any]]:
    """The events of one run, in order. `artifacts`: the run's artifacts directory, as its JSON recap names it
    (`recap(...)["artifacts"]`)."""
    for path in sorted((artifacts / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-")[0])):
        yield json.loads(path.read_text())


def tasks_that_ran(artifacts: Path, action: str) -> list[str]:
    """'HOST: TASK' for every task of module `action` (e.g. 'ansible.builtin.apt') that ran on a host in the
    run of `artifacts` (see run_events); skipped ones are left out."""
    return [f"{data.get('host')}: {data.get('task')}" for event in run_events(artifacts)
            if event.get("event") in ("runner_on_ok", "runner_on_failed")
            and (data := event.get("event_data", {})).get("resolved_action") == action]


# --- No secret anywhere: the lab's secrets searched in every place a run may leave them.

# Kinds of lab secrets by file name under <TOOLKIT_HOME>/lab/secrets/ (what a failure names; never the value).
SECRET_KINDS = {"rdbms": "toolkit_rdbms_password", "nosql": "toolkit_nosql_password",
                "queue": "toolkit_queue_password", "registry": "the lab registry's password"}


def lab_secrets(home: Path) -> dict[str, str]:
    """Every lab secret under `home`/lab/secrets/: file name -> value.

    Files named with a dot (the registry's htpasswd hash and its stamp) are derived, not secrets. The
    `registry` file holds USER:PASSWORD; only the password is a secret. Raises AssertionError when the
    directory is missing or holds no secret (a check with nothing to look for proves nothing).
    """
    directory = home / "lab" / "secrets"
    found: dict[str, str] = {}
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if not path.is_file() or "." in path.name:
            continue
        value = path.read_text().rstrip("\n")
        if path.name == "registry":
            value = value.split(":", 1)[-1]
        if value:
            found[path.name] = value
    assert found, f"no lab secret under {directory}: nothing to look for"
    return found


def _needles(value: str) -> list[bytes]:
    """The forms a secret takes when written out: raw, JSON-escaped, shell-quoted, %-encoded, and base64 on its
    own (a Kubernetes Secret's `data`, without the padding)."""
    import base64
    import shlex
    from urllib.parse import quote

    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], shlex.quote(value),
             quote(value, safe=""), base64.b64encode(value.encode()).decode().rstrip("=")}
    return sorted({f.encode() for f in forms if len(f) >= 6})


def _hits(data: bytes, secrets: dict[str, list[bytes]]) -> list[str]:
    return [kind for kind, needles in secrets.items() if any(n in data for n in needles)]


def find_secret_leaks(lab: Lab, nodes: list[str] | None = None, extra_paths: tuple[str, ...] = (),
                      secrets: dict[str, str] | None = None, extra_match: str = r"") -> list[str]:
    r"""Where the lab's secrets appear: one line per place and secret kind, never the value.

    Looks at, on every node (default: every node of the lab, through the Docker API): the whole systemd
    journal (`journalctl -o export`, every field: messages, command lines of sudo and of processes) and
    every file under /var/log, plus the files under `extra_paths` on the nodes whose path matches the
    regular expression `extra_match` (e.g. /var/lib/docker/containers and r"-json\.log" for container
    logs, not the engine's own state files); on the controller: every file of the run directories under the lab's
    TOOLKIT_HOME/runs (events, stdout, extra vars, command lines). `secrets`: kind -> value to look for
    (default: lab_secrets(lab.home); pass more, e.g. the values before a rotation). Returns e.g.
    ['node1 journal: nosql (toolkit_nosql_password)'].
    """
    import io
    import tarfile

    values = secrets if secrets is not None else lab_secrets(lab.home)
    needles = {kind: _needles(value) for kind, value in values.items()}
    names = {kind: SECRET_KINDS.get(kind, kind) for kind in values}
    leaks: list[str] = []

    def report(where: str, data: bytes) -> None:
        leaks.extend(f"{where}: {kind} ({names[kind]})" for kind in _hits(data, needles))

    for node in nodes if nodes is not None else sorted(lab.addresses()):
        container = lab.container(node)
        journal = subprocess.run(["docker", "exec", container, "journalctl", "--no-pager", "--all", "-o", "export"],
                                 capture_output=True, timeout=600)
        assert journal.returncode == 0 and journal.stdout, f"{node}: journalctl gave nothing: {journal.stderr[-500:]!r}"
        report(f"{node} journal", journal.stdout)
        for root in ("/var/log", *extra_paths):
            tar = subprocess.run(["docker", "exec", container, "tar", "-C", "/", "-cf", "-", "--ignore-failed-read",
                                  root.lstrip("/")], capture_output=True, timeout=600)
            if not tar.stdout:
                assert root != "/var/log", f"{node}: could not read /var/log: {tar.stderr[-500:]!r}"
                continue
            with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
                for member in archive:
                    if root != "/var/log" and not re.search(extra_match, member.name):
                        continue
                    handle = archive.extractfile(member) if member.isfile() else None
                    if handle is not None:
                        report(f"{node} /{member.name}", handle.read())
    runs = lab.home / "runs"
    for path in sorted(runs.rglob("*")) if runs.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            report(f"controller {path}", path.read_bytes())
    return leaks


def assert_no_secret_leaks(lab: Lab, nodes: list[str] | None = None, extra_paths: tuple[str, ...] = (),
                           secrets: dict[str, str] | None = None, extra_match: str = r"") -> None:
    """Fail naming every place (node journal, node file, controller run file) and secret kind that
    find_secret_leaks reports; the values themselves never appear in the message."""
    leaks = find_secret_leaks(lab, nodes, extra_paths, secrets, extra_match)
    assert not leaks, "secrets found in logs or run records:\n  " + "\n  ".join(leaks)


# --- Kubernetes e2e helpers, shared by tests/test_e2e_k8s.py and tests/test_e2e_k8s_faults.py


def push_lab_base_image(lab: Lab) -> None:
    """Push the lab base image (toolkit-lab/debian:trixie, the test pods' image) to the lab's registry as
    toolkit/debian:trixie, with the registry's credentials in the Docker API's auth header (never on a
    command line). Raises AssertionError naming the registry's error."""
    import docker

    user, _, password = lab.secret("registry").partition(":")
    engine = docker.from_env()
    engine.images.get("toolkit-lab/debian:trixie").tag(f"{lab.registry}/toolkit/debian", "trixie")
    for line in engine.images.push(f"{lab.registry}/toolkit/debian", "trixie", stream=True, decode=True,
                                   auth_config={"username": user, "password": password}):
        assert "error" not in line, line


def pod_pair_manifest(image: str) -> str:
    """A web pod on node2 behind the Service `web`, and a client pod on node3, both running `image`."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  nodeName: node2
  containers:
    - {{name: web, image: "{image}", command: [python3, -m, http.server, "8080"]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: node3
  containers:
    - {{name: client, image: "{image}", command: [sleep, "3600"]}}
"""


# --- the default run and the extended one

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--extended", action="store_true", default=False,
                     help="also run the tests marked `extended`: the e2e scenarios that each cost a whole-stack run "
                          "or a second cluster, left out of the default run (CI's time budget)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests marked `extended` from a run over pyproject's testpaths (what scripts/test and CI run
    with no path named) unless --extended is given; pytest reports them as deselected. A run that names files or
    tests (`scripts/test tests/test_e2e_k8s_faults.py`), or a -m expression that names the mark, decides for itself."""
    if (config.getoption("--extended") or "extended" in (config.getoption("markexpr") or "")
            or config.args_source != pytest.Config.ArgsSource.TESTPATHS):
        return
    dropped = [item for item in items if item.get_closest_marker("extended") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.get_closest_marker("extended") is None]


# --- molecule scenarios (tests/test_molecule.py, tests/test_lint.py) and their scheduling

MOLECULE_SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `--dist loadfile` (scripts/test): a file is a work unit (an e2e file's tests share one lab), except
    tests/test_molecule.py, whose scenarios are a unit each. xdist hands a worker its next unit once its current
    one has 2 tests left; a file of 7 scenarios taken that way by the worker that ends its e2e first left the
    other idle for 15 min. Returns None (xdist's own scheduler) under any other --dist."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    class ScenarioScheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path.endswith("tests/test_molecule.py") else str(super()._split_scope(nodeid))

    return ScenarioScheduling(config, log)
