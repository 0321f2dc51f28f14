"""Run one playbook through ansible-runner, with live progress and a trustworthy result."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ansible_runner

from . import paths
from .progress import Display, Failure, Tracker, recap_table


@dataclass
class Options:
    """What every playbook-running command accepts."""

    check: bool = False
    diff: bool = False
    limit: str | None = None
    tags: list[str] | None = None
    skip_tags: list[str] | None = None
    extra_vars: dict[str, Any] | None = None
    verbosity: int = 0
    output: str = "text"  # text | json | stderr
    forks: int | None = None  # parallel hosts; None: ansible.cfg's | quiet (nothing shown: the caller reads the Result)


@dataclass
class Result:
    rc: int
    status: str
    duration: float
    recap: dict[str, dict[str, int]]
    failures: list[Failure]
    artifacts: Path
    data: dict[str, Any]

    @property
    def exit_code(self) -> int:
        """0 when every host succeeded, 1 when any failed or was unreachable."""
        bad = any(c["failed"] or c["unreachable"] for c in self.recap.values())
        return 0 if self.rc == 0 and not bad and self.status == "successful" else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rc": self.rc,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration, 1),
            "hosts": self.recap,
            "failures": [f.as_dict() for f in self.failures],
            "artifacts": str(self.artifacts),
            **({"data": self.data} if self.data else {}),
        }


@dataclass(frozen=True)
class RunFile:
    """A file placed in the run directory before the playbook starts (e.g. the normalised stack).

    `name`: a plain file name inside the run directory. `variable`: when set, the extra var that
    receives the file's absolute path. `mode`: its permissions (the run directory itself is 0700).
    """

    name: str
    text: str
    variable: str | None = None
    mode: int = 0o600


def _place(run_dir: Path, files: Sequence[RunFile]) -> dict[str, str]:
    """Write `files` into `run_dir`; return the extra vars that name them."""
    variables: dict[str, str] = {}
    for file in files:
        if not file.name or "/" in file.name or file.name in (".", "..", "env", "artifacts", "project"):
            raise ValueError(f"run file name {file.name!r} is not a plain file name free for ansible-runner")
        path = run_dir / file.name
        path.write_text(file.text, encoding="utf-8")
        os.chmod(path, file.mode)
        if file.variable:
            variables[file.variable] = str(path)
    return variables


def _cmdline(opts: Options) -> str:
    args = []
    if opts.check:
        args.append("--check")
    if opts.diff:
        args.append("--diff")
    if opts.limit:
        # The controller's own plays (the preflight that normalises the stack and hands it to every host) run
        # on the implicit localhost, which a --limit of servers would leave out.
        limit = opts.limit if "localhost" in opts.limit.split(",") else f"{opts.limit},localhost"
        args += ["--limit", limit]
    if opts.tags:
        args += ["--tags", ",".join(opts.tags)]
    if opts.skip_tags:
        args += ["--skip-tags", ",".join(opts.skip_tags)]
    # ansible-runner splits cmdline with shlex; values above are validated to hold no spaces.
    return " ".join(args)


def _new_run_dir(label: str) -> Path:
    """A run directory of its own under paths.runs_dir(): `YYYYmmdd-HHMMSS-<label>`, with `-2`, `-3`...
    when another run (a parallel toolkit command) took that name in the same second. Mode 0700: events
    may carry host facts. Raises OSError when the directory cannot be created."""
    root = paths.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{label}"
    for n in range(1, 1000):
        candidate = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            candidate.mkdir(mode=0o700)  # atomic: exactly one process creates each name
        except FileExistsError:
            continue
        os.chmod(candidate, 0o700)
        return candidate
    raise OSError(f"no free run directory name for {stem} under {root}")


def run(playbook: str, inventory: Path | None, extravars: dict[str, Any], opts: Options, label: str,
        files: Sequence[RunFile] = ()) -> Result:
    """Run `playbook` (a name under playbooks/) and return its result. Progress goes to stderr
    for --output json and to stdout otherwise; the JSON recap is printed by the caller.
    `files` are written into the run directory first (and kept there as part of the run's record)."""
    content = paths.content_dir()
    run_dir = _new_run_dir(label)
    extravars = {**extravars, **_place(run_dir, files)}
    envvars = {
        "ANSIBLE_CONFIG": str(content / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(content / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        # ansible-runner starts ansible-playbook as a process: find the one installed beside us.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        **({"ANSIBLE_FORKS": str(opts.forks)} if opts.forks else {}),
    }
    # "stderr": text progress on stderr, e.g. a lab start inside a --output json run.
    stream = sys.stderr if opts.output in ("json", "stderr") else sys.stdout
    quiet = open(os.devnull, "w", encoding="utf-8") if opts.output == "quiet" else None  # noqa: SIM115 - closed below
    stream = quiet or stream
    tracker = Tracker()
    started = time.monotonic()
    kwargs: dict[str, Any] = {
        "private_data_dir": str(run_dir),
        "ident": "run",
        "playbook": str((content / "playbooks" / playbook).resolve()),
        "extravars": {**extravars, **(opts.extra_vars or {})},
        "envvars": envvars,
        "cmdline": _cmdline(opts),
        "verbosity": opts.verbosity or None,
        "quiet": True,
        "project_dir": str(content),
    }
    if inventory is not None:
        kwargs["inventory"] = str(inventory.resolve())
    display = Display(tracker, stream, echo_results=opts.verbosity > 0 or opts.diff)
    try:
        with display:
            runner = ansible_runner.run(event_handler=display.event, **kwargs)
        rc = runner.rc if runner.rc is not None else 1
        status = runner.status or "failed"
    finally:
        # env/ is ansible-runner's input scratch (extravars, envvars); the artifacts keep the record.
        shutil.rmtree(run_dir / "env", ignore_errors=True)
        if quiet is not None:
            quiet.close()
    result = Result(
        rc=rc,
        status=status,
        duration=time.monotonic() - started,
        recap=tracker.recap(),
        failures=tracker.failures,
        artifacts=run_dir / "artifacts" / "run",
        data=tracker.data,
    )
    if quiet is None:
        report(result, opts.output, stream)
    return result


def report(result: Result, output: str, stream: Any) -> None:
    if output == "json":
        print(json.dumps(result.as_dict(), indent=2), flush=True)
        return
    recap_table(result.recap, stream)
    services = result.data.get("services") or {}
    for host in sorted(services):
        if "engine" in services[host]:
            continue  # a Kubernetes data service: below
        states = ", ".join(f"{unit.removesuffix('.service')}={state}" for unit, state in services[host].items())
        print(f"{host}: {states or '(no stack service here)'}", file=stream)
    nodes = result.data.get("nodes") or {}
    for name in sorted(nodes):
        node = nodes[name]
        state = "Ready" if node.get("ready") else "NotReady"
        print(f"node {name}: {state} {node.get('version', '?')} {node.get('address', '')} ({node.get('roles', '')})",
              file=stream)
    pods = result.data.get("pods") or {}
    for name in sorted(pods):
        pod = pods[name]
        print(f"pod {name}: {pod.get('phase', '?')} {pod.get('ready', '?')} on {pod.get('node') or '-'}", file=stream)
    _report_k8s_stack(result.data, stream)
    containers = result.data.get("containers") or {}
    for host in sorted(containers):
        for name, box in sorted((containers[host] or {}).items()):
            print(f"{host}: {name} {box.get('state', '?')} ({box.get('health', '?')}) {box.get('image', '')}", file=stream)
        if not containers[host]:
            print(f"{host}: (no stack container here)", file=stream)
    if result.exit_code and not result.failures:
        # Nothing failed on a host: Ansible itself stopped (syntax error, missing role...). Show why.
        out = result.artifacts / "stdout"
        tail = out.read_text(errors="replace").strip().splitlines()[-15:] if out.exists() else []
        print("\n".join(tail), file=stream)
    for failure in result.failures:
        print(f"FAILED on {failure.host}: task '{failure.task}' (play '{failure.play}'): {failure.message}",
              file=stream)
    verdict = "succeeded" if result.exit_code == 0 else "FAILED"
    print(f"run {verdict} in {result.duration:.1f}s; artifacts: {result.artifacts}", file=stream, flush=True)


def _report_k8s_stack(data: dict[str, Any], stream: Any) -> None:
    """The lines of `status`, `scale` and `rollout` in --mode k8s (set_stats apps, services, scale, rollout)."""
    apps = data.get("apps") or {}
    for name in sorted(apps):
        app = apps[name]
        port = f" node port {app['node_port']}" if app.get("node_port") else ""
        print(f"app {name}: {app.get('ready', 0)}/{app.get('desired', '?')} ready, {app.get('restarts', 0)} restarts, "
              f"{app.get('image', '')}{port}", file=stream)
    services = data.get("services") or {}
    for name in sorted(n for n in services if "engine" in services[n]):
        svc = services[name]
        vol = svc.get("volume") or {}
        print(f"service {name} ({svc['engine']}): {svc.get('ready', 0)}/{svc.get('desired', '?')} ready, volume "
              f"{vol.get('claim', '?')} {vol.get('phase', '?')} {vol.get('capacity', '')} "
              f"({vol.get('storage_class') or 'no class'})", file=stream)
    if data.get("network_policy"):
        print(f"network policies: {data['network_policy']}", file=stream)
    scale = data.get("scale")
    if scale:
        print(f"scaled {scale['app']}: {scale['previous']} -> {scale['replicas']} replicas, {scale['ready']} ready",
              file=stream)
    rollout = data.get("rollout")
    if rollout:
        print(f"rollout of {rollout['app']} to {rollout['image']}: {rollout['result']} "
              f"({rollout['ready']}/{rollout['desired']} ready; before: {rollout['previous']})", file=stream)
