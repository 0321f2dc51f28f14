"""Bad input is refused with a clear message and exit code 2, before any host is touched.

These run the real CLI (typer's test runner) against real files; nothing is mocked.
An unreachable address in the inventories proves no host was contacted: a run
would have created a run directory, and there must be none.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pytoolkit.cli import app

runner = CliRunner()
GOOD_INVENTORY = """
all:
  hosts:
    db1: {ansible_host: 192.0.2.10}
    app1: {ansible_host: 192.0.2.11}
  vars:
    toolkit_rdbms_password: x
    toolkit_nosql_password: x
    toolkit_queue_password: x
    # Real-server sources must be pinned (issue 13): a key checksum for each vendor repository used.
    java_repo_key_checksum: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    nodejs_nodesource_key_checksum: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  children:
    rdbms: {hosts: {db1: }}
    nosql: {hosts: {db1: }}
    queue: {hosts: {db1: }}
    apps: {hosts: {app1: }}
    control_plane: {hosts: {db1: }}
    workers: {hosts: {app1: }}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(args: list[str], expect: str, home: Path) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expect in result.output, result.output
    assert "Traceback" not in result.output
    assert not (home / "runs").exists(), "a playbook ran although the input was bad"
    return result.output


def test_unknown_mode(toolkit_home: Path, tmp_path: Path) -> None:
    inv = write(tmp_path, "inv.yml", GOOD_INVENTORY)
    refused(["bootstrap", "--mode", "cloud", "-i", str(inv)], "unknown mode 'cloud'", toolkit_home)


def test_inventory_missing(toolkit_home: Path, tmp_path: Path) -> None:
    refused(["bootstrap", "-i", str(tmp_path / "nope.yml")], "does not exist", toolkit_home)


def test_inventory_empty(toolkit_home: Path, tmp_path: Path) -> None:
    refused(["bootstrap", "-i", str(write(tmp_path, "e.yml", ""))], "is empty", toolkit_home)


def test_inventory_not_yaml(toolkit_home: Path, tmp_path: Path) -> None:
    out = refused(["bootstrap", "-i", str(write(tmp_path, "bad.yml", "all:\n  hosts: [\n"))], "not valid YAML",
                  toolkit_home)
    assert "line" in out


def test_inventory_not_a_mapping(toolkit_home: Path, tmp_path: Path) -> None:
    refused(["bootstrap", "-i", str(write(tmp_path, "l.yml", "- a\n- b\n"))], "expected a mapping of groups",
            toolkit_home)


def test_duplicate_host_names(toolkit_home: Path, tmp_path: Path) -> None:
    text = GOOD_INVENTORY.replace("    app1: {ansible_host: 192.0.2.11}\n",
                                  "    app1: {ansible_host: 192.0.2.11}\n    db1: {ansible_host: 192.0.2.12}\n")
    refused(["bootstrap", "-i", str(write(tmp_path, "dup.yml", text))], "duplicate key 'db1'", toolkit_home)


def test_same_host_two_addresses(toolkit_home: Path, tmp_path: Path) -> None:
    text = GOOD_INVENTORY.replace("apps: {hosts: {app1: }}", "apps: {hosts: {db1: {ansible_host: 192.0.2.99}}}")
    refused(["bootstrap", "-i", str(write(tmp_path, "two.yml", text))], "defined twice", toolkit_home)


@pytest.mark.parametrize(("mode", "group"), [("bare", "rdbms"), ("bare", "apps")])
def test_missing_group(toolkit_home: Path, tmp_path: Path, mode: str, group: str) -> None:
    text = GOOD_INVENTORY.replace(f"    {group}: ", f"    renamed_{group}: ")
    refused(["bootstrap", "--mode", mode, "-i", str(write(tmp_path, "g.yml", text))],
            f"needs at least one host in group '{group}'", toolkit_home)


def test_k8s_without_control_plane(toolkit_home: Path, tmp_path: Path) -> None:
    text = GOOD_INVENTORY.replace("    control_plane: ", "    masters: ")
    inv = str(write(tmp_path, "k.yml", text))
    refused(["bootstrap", "--mode", "k8s", "-i", inv], "group 'control_plane'", toolkit_home)
    refused(["inventory", "validate", "--mode", "k8s", "-i", inv], "group 'control_plane'", toolkit_home)


def test_k8s_two_control_planes_need_endpoint(toolkit_home: Path, tmp_path: Path) -> None:
    text = GOOD_INVENTORY.replace("control_plane: {hosts: {db1: }}", "control_plane: {hosts: {db1: , app2: }}")
    refused(["inventory", "validate", "--mode", "k8s", "-i", str(write(tmp_path, "ha.yml", text))],
            "k8s_control_plane_endpoint", toolkit_home)


def test_missing_secret(toolkit_home: Path, tmp_path: Path) -> None:
    text = GOOD_INVENTORY.replace("    toolkit_queue_password: x\n", "")
    inv = str(write(tmp_path, "s.yml", text))
    refused(["bootstrap", "-i", inv], "toolkit_queue_password", toolkit_home)


def test_unknown_mode_is_refused_plainly(toolkit_home: Path, tmp_path: Path) -> None:
    inv = str(write(tmp_path, "inv.yml", GOOD_INVENTORY))
    refused(["bootstrap", "--mode", "swarm", "-i", inv], "unknown mode 'swarm'; choose one of bare, docker, k8s", toolkit_home)


STACK = """
name: s
rdbms: {engine: postgresql, database: shop, user: shop}
nosql: {engine: redis}
queue: {engine: rabbitmq}
apps:
  - {name: catalog, kind: java, artifact: catalog.jar, port: 8081}
"""


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("- just\n- a list\n", "must be a YAML mapping"),
        (STACK.replace("name: s\n", ""), "required key 'name' is missing"),
        (STACK.replace("user: shop}", "user: shop, colour: red}"), "unknown key 'rdbms.colour'"),
        (STACK.replace("port: 8081", "port: http"), "'apps[0].port' must be an integer"),
        (STACK.replace("engine: redis", "engine: memcached"), "supported: redis"),
        (STACK.replace("port: 8081}", "port: 8081, java_version: 9}"), "supported: 8, 11, 17, 21"),
        (STACK.replace("artifact: catalog.jar, ", ""), "'apps[0].artifact' is missing"),
        (STACK + "  - {name: catalog, kind: node, artifact: f.tgz, port: 3000}\n", "used twice"),
        (STACK + "  - {name: front, kind: node, artifact: f.tgz, port: 8081}\n", "port 8081"),
    ],
)
def test_bad_stack_file(toolkit_home: Path, tmp_path: Path, text: str, expect: str) -> None:
    inv = str(write(tmp_path, "inv.yml", GOOD_INVENTORY))
    stack = str(write(tmp_path, "stack.yml", text))
    out = refused(["bootstrap", "-i", inv, "--stack", stack], expect, toolkit_home)
    assert "stack.yml" in out


def test_stack_file_missing(toolkit_home: Path, tmp_path: Path) -> None:
    inv = str(write(tmp_path, "inv.yml", GOOD_INVENTORY))
    refused(["bootstrap", "-i", inv, "--stack", str(tmp_path / "none.yml")], "does not exist", toolkit_home)


def test_bad_extra_vars_and_output(toolkit_home: Path, tmp_path: Path) -> None:
    inv = str(write(tmp_path, "inv.yml", GOOD_INVENTORY))
    refused(["bootstrap", "-i", inv, "-e", "novalue"], "KEY=VALUE", toolkit_home)
    refused(["bootstrap", "-i", inv, "--output", "xml"], "--output 'xml'", toolkit_home)
    refused(["bootstrap", "-i", inv, "--tags", "a b"], "--tags", toolkit_home)


def test_valid_inventory_and_reference_stack(toolkit_home: Path, tmp_path: Path) -> None:
    inv = str(write(tmp_path, "inv.yml", GOOD_INVENTORY))
    for mode in ("bare", "docker", "k8s"):
        result = runner.invoke(app, ["inventory", "validate", "--mode", mode, "-i", inv])
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_example_inventory_is_valid_for_k8s(toolkit_home: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    result = runner.invoke(app, ["inventory", "validate", "--mode", "k8s", "-i", str(root / "inventory/example.yml")])
    assert result.exit_code == 0, result.output


def test_lab_up_without_docker_engine(toolkit_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    out = refused(["lab", "up", "--nodes", "1"], "needs a running Docker engine", toolkit_home)
    assert "dockerd" in out


def test_lab_config_bad_node(toolkit_home: Path) -> None:
    (toolkit_home / "lab").mkdir(parents=True)
    (toolkit_home / "lab" / "lab.yml").write_text("nodes:\n  - {name: n1, distribution: sid}\n")
    refused(["lab", "up"], "distribution must be one of bookworm, trixie", toolkit_home)


def test_every_command_has_an_example() -> None:
    for args in (["bootstrap"], ["deploy"], ["status"], ["reset"], ["doctor"], ["lab", "up"], ["lab", "down"],
                 ["lab", "status"], ["lab", "image"], ["inventory", "validate"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0
        assert "Example: toolkit" in result.output, args


BAD = Path(__file__).resolve().parent / "data" / "bad"
ROOT = Path(__file__).resolve().parent.parent
CORPUS = yaml.safe_load((BAD / "index.yml").read_text())["cases"]


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_bad_input_corpus(toolkit_home: Path, case: dict[str, Any]) -> None:
    """Every case of tests/data/bad/index.yml is refused by the real CLI before anything runs."""
    args = [a.replace("{here}", str(BAD)).replace("{root}", str(ROOT)) for a in case["args"]]
    result = runner.invoke(app, args)
    assert result.exit_code == case["exit"], result.output
    assert case["message"] in result.output, result.output
    assert case["file"] in result.output, f"the message does not name {case['file']}: {result.output}"
    assert "Traceback" not in result.output
    assert not (toolkit_home / "runs").exists(), "a playbook ran although the input was bad"


def test_corpus_files_are_all_used() -> None:
    used = {Path(a.replace("{here}/", "")).name for c in CORPUS for a in c["args"] if "{here}" in a}
    present = {p.name for p in BAD.glob("*.yml")} - {"index.yml"}
    assert present == used, f"files without a case: {present - used}; cases without a file: {used - present}"


@pytest.mark.parametrize("variant", sorted((ROOT / "stacks").rglob("*.yml")), ids=lambda p: p.name)
def test_shipped_stacks_are_valid_for_every_mode(toolkit_home: Path, tmp_path: Path, variant: Path) -> None:
    inv = str(write(tmp_path, "inv.yml", GOOD_INVENTORY))
    for mode in ("bare", "docker", "k8s"):
        result = runner.invoke(app, ["inventory", "validate", "--mode", mode, "-i", inv, "--stack", str(variant)])
        assert result.exit_code == 0, result.output


def test_lab_directory_open_to_others_is_refused(toolkit_home: Path) -> None:
    lab_dir = toolkit_home / "lab"
    lab_dir.mkdir(parents=True)
    lab_dir.chmod(0o755)
    out = refused(["lab", "up", "--nodes", "1"], "is open to other users", toolkit_home)
    assert f"chmod 700 {lab_dir}" in out


def test_lab_without_ssh_keygen_is_refused(toolkit_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    refused(["lab", "up", "--nodes", "1"], "the lab needs ssh-keygen", toolkit_home)


def test_read_only_commands_never_start_the_lab(toolkit_home: Path) -> None:
    for args in (["status", "--mode", "bare"], ["status", "--mode", "k8s"], ["bootstrap", "--mode", "bare", "--check"]):
        out = refused(args, "the lab is not up", toolkit_home)
        assert "does not start the lab" in out
    assert not (toolkit_home / "lab" / "lab.yml").exists(), "a read-only command wrote a lab config"


@pytest.mark.lab
def test_lab_node_on_a_network_with_a_route_out_is_refused(toolkit_home: Path, require_docker: None) -> None:
    import docker

    client = docker.from_env()
    short = f"outside{os.getpid()}"
    network = client.networks.create(f"toolkit-lab-{short}", driver="bridge")  # not internal, not the lab's
    try:
        (toolkit_home / "lab").mkdir(parents=True, mode=0o700)
        (toolkit_home / "lab" / "lab.yml").write_text(
            f"nodes:\n  - {{name: node1, groups: [rdbms, nosql, queue, apps], networks: [lab, {short}]}}\n")
        out = refused(["lab", "up"], "would have a route off the lab", toolkit_home)
        assert "node1" in out and f"toolkit-lab-{short}" in out
    finally:
        network.remove()


# --- k8s: node names and the settings of different roles that must agree (issue 12, faults 5 and 6) ------

K8S_INVENTORY = """
all:
  hosts:
    cp1: {ansible_host: 192.0.2.10}
    w1: {ansible_host: 192.0.2.11}
  children:
    control_plane: {hosts: {cp1: }}
    workers: {hosts: {w1: }}
"""


def k8s_inventory(tmp_path: Path, cp1: str = "", w1: str = "", group_vars: str = "") -> str:
    text = K8S_INVENTORY.replace("ansible_host: 192.0.2.10", "ansible_host: 192.0.2.10" + cp1)
    text = text.replace("ansible_host: 192.0.2.11", "ansible_host: 192.0.2.11" + w1)
    if group_vars:
        text = text.replace("  children:", f"  vars: {group_vars}\n  children:")
    return str(write(tmp_path, "k8s.yml", text))


def valid(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def test_k8s_node_name_lets_a_host_keep_an_odd_inventory_name(toolkit_home: Path, tmp_path: Path) -> None:
    inv = write(tmp_path, "odd.yml", K8S_INVENTORY.replace("w1", "Worker_1"))
    refused(["inventory", "validate", "--mode", "k8s", "-i", str(inv)],
            "keep its inventory name and set k8s_node_name: worker-1 for it", toolkit_home)
    inv.write_text(inv.read_text().replace("ansible_host: 192.0.2.11", "ansible_host: 192.0.2.11, k8s_node_name: worker-1"))
    valid(["inventory", "validate", "--mode", "k8s", "-i", str(inv)])
    # Bare mode registers no node: the same name is fine there.
    valid(["inventory", "validate", "--mode", "bare", "-i", str(write(tmp_path, "bare.yml", GOOD_INVENTORY.replace(
        "app1", "App_1")))])


@pytest.mark.parametrize(("name", "ok"), [
    ("node1", True), ("db1.example.internal", True), ("a" * 63, True), ("a" * 64, False), ("Node1", False),
    ("node_1", False), ("-node", False), ("node-", False), ("node..a", False), ("10.0.0.1", True), ("", True),
])
def test_k8s_node_name_rule(toolkit_home: Path, tmp_path: Path, name: str, ok: bool) -> None:
    """Lower-case RFC 1123 subdomain of at most 63 characters; empty means the inventory name."""
    args = ["inventory", "validate", "--mode", "k8s", "-i", k8s_inventory(tmp_path, w1=f", k8s_node_name: '{name}'")]
    if ok:
        valid(args)
    else:
        refused(args, f"sets k8s_node_name to '{name}', which is not a valid Kubernetes node name", toolkit_home)


def test_k8s_node_names_are_unique(toolkit_home: Path, tmp_path: Path) -> None:
    refused(["inventory", "validate", "--mode", "k8s", "-i", k8s_inventory(tmp_path, w1=", k8s_node_name: cp1")],
            "hosts 'cp1' and 'w1' would both register with Kubernetes as node 'cp1'", toolkit_home)
    # -e gives every host the same value.
    refused(["bootstrap", "--mode", "k8s", "-i", k8s_inventory(tmp_path), "-e", "k8s_node_name=node"],
            "would both register with Kubernetes as node 'node'", toolkit_home)


def test_k8s_node_name_left_to_ansible_when_templated(toolkit_home: Path, tmp_path: Path) -> None:
    valid(["inventory", "validate", "--mode", "k8s", "-i",
           k8s_inventory(tmp_path, w1=", k8s_node_name: '{{ inventory_hostname | upper }}'")])


def test_k8s_image_repository_alone_moves_kubeadm_and_the_sandbox(toolkit_home: Path, tmp_path: Path) -> None:
    valid(["inventory", "validate", "--mode", "k8s", "-i",
           k8s_inventory(tmp_path, group_vars="{k8s_image_repository: 'registry.example.internal:5000/k8s'}")])
    # A sandbox image pinned elsewhere no longer agrees.
    out = refused(["bootstrap", "--mode", "k8s", "-i", k8s_inventory(tmp_path), "-e",
                   "k8s_image_repository=registry.example.internal:5000/k8s",
                   "-e", "containerd_sandbox_image=registry.k8s.io/pause:3.10.1"],
                  "containerd_sandbox_image (given with -e) is 'registry.k8s.io/pause:3.10.1' on host 'cp1'",
                  toolkit_home)
    assert "k8s_image_repository (given with -e) 'registry.example.internal:5000/k8s'" in out
    # Agreeing values are fine, wherever they are set.
    valid(["inventory", "validate", "--mode", "k8s", "-i", k8s_inventory(tmp_path, group_vars=(
        "{kubeadm_control_plane_image_repository: 'mirror.internal/k8s', "
        "containerd_sandbox_image: 'mirror.internal/k8s/pause:3.10.1'}"))])


def test_k8s_cgroup_driver_mismatch_names_both_variables(toolkit_home: Path, tmp_path: Path) -> None:
    out = refused(["bootstrap", "--mode", "k8s", "-i", k8s_inventory(tmp_path), "-e",
                   "kubeadm_control_plane_cgroup_driver=cgroupfs"],
                  "kubeadm_control_plane_cgroup_driver (given with -e) is 'cgroupfs'", toolkit_home)
    assert "containerd_systemd_cgroup (default) is true on host 'cp1'" in out
    refused(["inventory", "validate", "--mode", "k8s", "-i", k8s_inventory(
        tmp_path, group_vars="{kubeadm_control_plane_kubelet_config: {cgroupDriver: cgroupfs}}")],
        "kubeadm_control_plane_kubelet_config.cgroupDriver is 'cgroupfs'", toolkit_home)
    refused(["inventory", "validate", "--mode", "k8s", "-i", k8s_inventory(
        tmp_path, group_vars="{kubeadm_control_plane_cgroup_driver: systemd-ish}")],
        "kubelet's cgroup driver is systemd or cgroupfs", toolkit_home)
    # Both moved together: fine (a string 'no' is a boolean to Ansible).
    valid(["inventory", "validate", "--mode", "k8s", "-i", k8s_inventory(
        tmp_path, group_vars="{kubeadm_control_plane_cgroup_driver: cgroupfs, containerd_systemd_cgroup: 'no'}")])


def test_role_defaults_follow_k8s_image_repository(tmp_path: Path) -> None:
    """One setting, one variable: the real role defaults, templated by Ansible, put kubeadm's image
    repository and containerd's sandbox image in k8s_image_repository."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    playbook = write(tmp_path, "defaults.yml", f"""
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {root}/roles/kubeadm_control_plane/defaults/main.yml
    - {root}/roles/containerd/defaults/main.yml
  tasks:
    - ansible.builtin.debug:
        msg: "{{{{ {{'repo': kubeadm_control_plane_image_repository, 'sandbox': containerd_sandbox_image}} | to_json }}}}"
""")
    bin_dir = Path(sys.executable).parent
    for extra, repo in ((None, "registry.k8s.io"), ("k8s_image_repository=mirror.internal/k8s", "mirror.internal/k8s")):
        args = [str(bin_dir / "ansible-playbook"), "-i", "localhost,", str(playbook)] + (["-e", extra] if extra else [])
        out = subprocess.run(args, capture_output=True, text=True, cwd=root,
                             env={**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_NOCOLOR": "1"})
        assert out.returncode == 0, out.stdout + out.stderr
        start = out.stdout.index('"msg": ') + len('"msg": ')
        shown = json.loads(json.JSONDecoder().raw_decode(out.stdout[start:])[0])
        assert shown == {"repo": repo, "sandbox": f"{repo}/pause:3.10.1"}


@pytest.mark.parametrize(("inventory_file", "extra", "message"), [
    ("inventory-k8s-node-name.yml", None, None),
    ("inventory-k8s-node-name-variable.yml", None, None),
    ("inventory-k8s-cgroup-driver.yml", None, None),
    ("inventory-k8s-sandbox-image.yml", None, None),
    ("inventory-two-control-planes.yml", None, None),
    ("inventory-k8s-cgroup-driver.yml", "kubeadm_control_plane_cgroup_driver=cgroupfs",
     "is 'cgroupfs' (kubelet on every node) but containerd_systemd_cgroup (default) is true on host 'cp1'"),
    ("inventory-k8s-node-name.yml", "k8s_node_name=node", "would both register with Kubernetes as node 'node'"),
], ids=lambda v: str(v))
def test_the_k8s_playbooks_refuse_with_the_cli_message(toolkit_home: Path, inventory_file: str, extra: str | None,
                                                       message: str | None) -> None:
    """A direct ansible-playbook run of bootstrap_k8s.yml and reset_k8s.yml stops in its preflight (on localhost,
    before any host is contacted) with the CLI's words."""
    import json
    import subprocess
    import sys

    inv = str(BAD / inventory_file)
    if extra:
        cli = runner.invoke(app, ["bootstrap", "--mode", "k8s", "-i", inv, "-e", extra])
        expected = message  # the playbook cannot tell a value given with -e from an inventory one
    else:
        cli = runner.invoke(app, ["inventory", "validate", "--mode", "k8s", "-i", inv])
        expected = cli.output.strip().removeprefix("error: ")
    assert cli.exit_code == 2, cli.output
    assert expected and expected in cli.output
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for playbook in ("bootstrap_k8s.yml", "reset_k8s.yml"):
        direct = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", inv,
                                 f"playbooks/{playbook}", "--tags", "preflight", *(["-e", extra] if extra else [])],
                                capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert direct.returncode != 0, direct.stdout[-3000:]
        assert json.dumps(expected)[1:-1] in direct.stdout, f"{expected}\n---\n{direct.stdout[-3000:]}"


def test_runs_started_in_the_same_second_get_their_own_directories(toolkit_home: Path) -> None:
    """Parallel toolkit commands (e.g. several --check runs at once) never share a run directory."""
    from concurrent.futures import ThreadPoolExecutor

    from pytoolkit import runner

    with ThreadPoolExecutor(max_workers=8) as pool:
        dirs = list(pool.map(lambda _: runner._new_run_dir("bootstrap-bare"), range(8)))
    assert len(set(dirs)) == 8
    assert all(d.is_dir() and oct(d.stat().st_mode & 0o777) == "0o700" for d in dirs)


def test_a_limit_keeps_the_controllers_own_plays() -> None:
    """--limit of servers still runs the preflight on the implicit localhost (it hands the stack to the
    hosts); without it `--limit node2 --tags app` failed with 'toolkit_stack' is undefined."""
    from pytoolkit import runner

    assert "--limit node2,localhost" in runner._cmdline(runner.Options(limit="node2"))
    assert "--limit localhost " in runner._cmdline(runner.Options(limit="localhost")) + " "
