"""The `toolkit` command. Thin by design: parse, validate, hand a playbook to the runner."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer

from . import __version__, bundle, inventory, lab, paths, runner, stack
from .errors import UsageError

app = typer.Typer(
    help="Deploy one application stack on bare servers, Docker, or Kubernetes.\n\n"
    "Example: toolkit bootstrap --mode bare   (targets the built-in lab when -i is omitted)",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
lab_app = typer.Typer(help="The built-in local lab: systemd containers that behave like servers.", no_args_is_help=True)
inventory_app = typer.Typer(help="Inventory checks.", no_args_is_help=True)
bundle_app = typer.Typer(help="Offline Kubernetes bundles: check one, serve it to nodes.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
app.add_typer(bundle_app, name="bundle")
app.add_typer(inventory_app, name="inventory")

_WORD = re.compile(r"^[A-Za-z0-9_.,:*!&\[\]\-]+$")

# Options shared by every playbook-running command, defined once.
ModeOpt = Annotated[str, typer.Option("--mode", "-m", help="Deployment mode: bare, docker or k8s.")]
InventoryOpt = Annotated[
    Optional[Path],
    typer.Option("--inventory", "-i", help="Ansible YAML inventory (file or directory). Omit to use the built-in lab."),
]
StackOpt = Annotated[
    Optional[Path], typer.Option("--stack", "-s", help="Stack file. Default: the reference stack (stacks/reference.yml).")
]
CheckOpt = Annotated[bool, typer.Option("--check", help="Dry run: report what would change, change nothing.")]
DiffOpt = Annotated[bool, typer.Option("--diff", help="Show the differences in changed files and templates.")]
LimitOpt = Annotated[Optional[str], typer.Option("--limit", "-l", help="Only these hosts or groups (Ansible pattern).")]
TagsOpt = Annotated[Optional[str], typer.Option("--tags", "-t", help="Only tasks with these comma-separated tags.")]
SkipTagsOpt = Annotated[Optional[str], typer.Option("--skip-tags", help="Skip tasks with these comma-separated tags.")]
ExtraOpt = Annotated[
    Optional[list[str]],
    typer.Option("--extra-vars", "-e", help="KEY=VALUE variable for the playbook (repeatable). Never pass secrets here."),
]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="text (live progress and a recap) or json (recap on stdout).")]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More Ansible output (-v to -vvvv).")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _split(value: str | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if not _WORD.match(value):
        raise UsageError(f"{what} '{value}' holds characters other than letters, digits and , : * ! & - _ . [ ].")
    return [v for v in value.split(",") if v]


def _extra(values: list[str] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise UsageError(f"-e '{item}' is not KEY=VALUE with KEY a variable name.")
        result[key] = value
    return result


def _options(check: bool, diff: bool, limit: str | None, tags: str | None, skip_tags: str | None,
             extra: list[str] | None, output: str, verbose: int) -> runner.Options:
    """The run options, or exit 2 naming the bad one."""
    try:
        return _parse_options(check, diff, limit, tags, skip_tags, extra, output, verbose)
    except UsageError as exc:
        _fail(str(exc))


def _parse_options(check: bool, diff: bool, limit: str | None, tags: str | None, skip_tags: str | None,
                   extra: list[str] | None, output: str, verbose: int) -> runner.Options:
    if output not in ("text", "json"):
        raise UsageError(f"--output '{output}' is not supported; choose text or json.")
    _split(limit, "--limit")
    return runner.Options(check=check, diff=diff, limit=limit,
                          tags=_split(tags, "--tags"), skip_tags=_split(skip_tags, "--skip-tags"),
                          extra_vars=_extra(extra), verbosity=verbose, output=output)


def _known_mode(mode: str) -> str:
    if mode not in inventory.MODES:
        raise UsageError(f"unknown mode '{mode}'; choose one of {', '.join(inventory.MODES)}.")
    return mode


def _target(inventory_file: Path | None, mode: str, opts: runner.Options, action: str, yes: bool = False) -> Path:
    """Validate the given inventory, or use the lab's: started (and fed) only by a command that changes hosts.

    Read-only commands (status, --check) never create, recreate or reprofile lab nodes: they refuse and
    name the command that would. A change that recreates nodes (their data with them) needs --yes.
    """
    if inventory_file is not None:
        inv = inventory.load(inventory_file)
        inventory.check_mode(inv, mode, opts.tags, extra=opts.extra_vars)
        return inv.path
    current = lab.load_config()
    # Kubernetes needs nodes of the k8s profile; the other modes take the lab as configured.
    wanted = lab.plan(None, "k8s" if mode == "k8s" else None)
    changes_hosts = action in ("bootstrap", "deploy") and not opts.check
    if not changes_hosts:
        what = (f"`toolkit {action}{' --check' if opts.check else ''}` only reads" if action in ("status", "logs")
                or opts.check else f"`toolkit {action}` works on a deployed stack")
        if not lab.is_up(current):
            raise UsageError(f"the lab is not up, and {what}: it does not start the lab. "
                             f"Start it with `toolkit lab up`, or `toolkit bootstrap --mode {mode}`.")
        others = sorted(n for n, p in lab.profiles().items() if mode == "k8s" and p != "k8s")
        if others:
            raise UsageError(f"the lab's nodes {', '.join(others)} are not Kubernetes nodes (profile server), and "
                             f"{what}: it does not change them. `toolkit bootstrap --mode k8s` recreates them as "
                             "Kubernetes nodes (what is on them is lost).")
    else:
        lab.require_controller(wanted)
        bundle_dir = lab.default_bundle()
        if mode == "k8s" and not lab.bundle_vars_path().exists() and not (bundle_dir / "manifest.yml").exists():
            raise UsageError(
                f"the lab has no Kubernetes bundle to install from, and none is built at {bundle_dir}. Build it "
                "(lab/build-k8s-bundle, cached under ~/.cache/toolkit/bundles), then run this again.")
        if not lab.is_up(current) or wanted != current:
            lost = lab.recreated_by(wanted)
            if lost and not yes:
                raise UsageError(
                    f"--mode {mode} needs the lab's nodes recreated: {', '.join(lost)}. Everything on them would be "
                    "lost (a deployed stack and its database included). Pass --yes to go on, or run "
                    "`toolkit lab down` first.")
            typer.echo("no -i given and the lab is not up as this mode needs: starting it (toolkit lab up)", err=True)
            _lab_up(wanted, opts.output, opts.verbosity)
        if mode == "k8s" and not lab.bundle_vars_path().exists():
            typer.echo(f"serving the cached bundle {bundle_dir} to the lab", err=True)
            _serve_bundle_to_lab(bundle.load(bundle_dir))
    inv = inventory.load(lab.inventory_path())
    inventory.check_mode(inv, mode, opts.tags, extra=opts.extra_vars)
    return inv.path


def _publish_lab_kafka(build: bool) -> None:
    """Publish the Kafka tarball (lab/build-kafka-tarball, cached) on the lab's file server beside the apps."""
    script = paths.content_dir() / "lab" / "build-kafka-tarball"
    if not build:
        if not any(name.startswith("kafka_") for name in lab.published_artifacts()):
            raise UsageError(f"the lab's file server ({lab.files_dir()}) has no Kafka tarball, and --check builds nothing. "
                             "`toolkit bootstrap` without --check publishes it first.")
        return
    if not script.is_file():
        raise UsageError("the lab publishes Kafka with lab/build-kafka-tarball, which an installed wheel does not carry: "
                         "run from a checkout, or publish the tarball and its SHA256SUMS line on the lab's file server.")
    import subprocess

    typer.echo(f"publishing the Kafka tarball on the lab's file server ({script})", err=True)
    done = subprocess.run([str(script), str(lab.files_dir())], stdout=subprocess.DEVNULL, stderr=sys.stderr, check=False)
    if done.returncode != 0:
        raise UsageError(f"{script} failed (exit {done.returncode}); nothing was deployed.")


def _publish_lab_artifacts(model: stack.Stack, build: bool = True) -> None:
    """Build the example apps into the lab's file server when the stack's artifacts are not there yet.

    With build=False (a --check run, which changes neither hosts nor the lab) a missing artifact is
    refused instead, naming the command that builds it.
    """
    relative = [a.artifact for a in model.apps if "://" not in a.artifact]
    if model.queue.engine == "kafka":
        _publish_lab_kafka(build)
    missing = lab.missing_artifacts(relative)
    if not missing:
        return
    if not build:
        raise UsageError(f"the lab's file server ({lab.files_dir()}) lacks {', '.join(missing)}, and --check builds "
                         "nothing. `toolkit bootstrap` without --check builds and publishes the example apps first.")
    script = lab.apps_build_script()
    if script is None:
        raise UsageError(f"the lab's file server ({lab.files_dir()}) lacks {', '.join(missing)} and this toolkit has "
                         "no example apps to build them from (an installed wheel): publish them there with a "
                         "SHA256SUMS file beside them, or run from a checkout.")
    typer.echo(f"building the example apps into the lab's file server ({script} {lab.files_dir()})", err=True)
    import subprocess

    done = subprocess.run([str(script), str(lab.files_dir())], env={**os.environ, "SKIP_TESTS": "1"},
                          stdout=sys.stderr, stderr=sys.stderr, check=False)
    if done.returncode != 0:
        raise UsageError(f"{script} failed (exit {done.returncode}); nothing was deployed.")
    still = lab.missing_artifacts(relative)
    if still:
        raise UsageError(f"{script} did not produce {', '.join(still)}: the stack's 'artifact' names only the "
                         "example apps' files (catalog.jar, orders.jar, billing.jar, front.tar.gz) on the lab.")


def _publish_lab_images(model: stack.Stack) -> None:
    """Build and push the stack's images into the lab registry when it lacks any of them (docker, k8s modes).

    Only what the registry misses is built (with what it is built from) and pushed, as `toolkit lab images`
    does; the lab's manifest records it. Images the toolkit cannot build are left to the run, which names them.
    """
    from . import images

    references = [model.rdbms.image, model.nosql.image, model.queue.image, *(a.image for a in model.apps if a.image)]
    registry = lab.REGISTRY_HOST_ADDRESS
    credentials = images.lab_registry_credentials()
    specs, _ = images.specs_for([r for r in references if r is not None], images.checkout())
    missing = [s for s in specs if not images.in_registry(registry, s.ref, credentials)]
    if not missing:
        return
    typer.echo(f"the lab registry lacks {', '.join(s.ref for s in missing)}: building and pushing them", err=True)
    root = images.checkout()
    all_specs = images.catalog({s.name: s.tag for s in specs if s.app}, root)
    to_build, to_push = images.plan(all_specs, [s.name for s in missing])
    if any(s.app for s in to_build):
        _publish_lab_artifacts(model)

    def log(line: str) -> None:
        typer.echo(line, err=True)

    files = images.gather_files(to_build, lab.files_dir(), log, root)
    client = lab.docker_client("building the stack's images")
    client.api.timeout = 3600
    if not client.images.list(name=images.LAB_BASE_IMAGE):
        raise UsageError(f"the lab base image {images.LAB_BASE_IMAGE} is missing: build it with `toolkit lab image`.")
    auth = images.login(client, registry, credentials)
    try:
        built = images.build(client, to_build, files, log, root=root)
        pushed = images.push(client, [b for b in built if b.spec in to_push], registry, auth, log)
    except images.ImageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    images.write_manifest(images.manifest_path(registry, True), registry, pushed)


def _lab_up(config: dict[str, Any], output: str, verbose: int) -> None:
    lab.save_config(config)
    lab.ensure_registry_credentials()
    result = runner.run("lab_up.yml", None, lab.extravars(config),
                        runner.Options(output="text" if output == "text" else "stderr", verbosity=verbose), "lab-up")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _run_mode(action: str, mode: str, inventory_file: Path | None, stack_file: Path | None,
              opts: runner.Options, extra: dict[str, Any] | None = None, yes: bool = False) -> None:
    try:
        mode = _known_mode(mode)
        model = stack.load((stack_file or paths.default_stack()).expanduser().resolve())
        stack.check_mode(model, mode)  # needs no inventory: before the lab may be started
        target = _target(inventory_file, mode, opts, action, yes)
        inv = inventory.load(target)
        stack.check_mode(model, mode, inv)
        # Every host at once (the controller's CPU, not a fixed fork count, is the limit).
        opts.forks = max(5, len(inv.hosts))
        if inventory_file is None and action in ("bootstrap", "deploy") and mode == "bare":
            _publish_lab_artifacts(model, build=not opts.check)
        if inventory_file is None and action in ("bootstrap", "deploy") and not opts.check and mode == "docker":
            _publish_lab_images(model)
        if inventory_file is None and action in ("bootstrap", "deploy") and not opts.check and mode == "k8s":
            _publish_lab_images(model)
    except UsageError as exc:
        _fail(str(exc))
    # The playbooks read the normalised stack from the run directory (and pass it through the same model).
    stack_vars = runner.RunFile("stack.yml", stack.to_yaml(model), variable="toolkit_stack_file", mode=0o644)
    variables = {"toolkit_mode": mode, **(extra or {})}
    result = runner.run(f"{action}_{mode}.yml", target, variables, opts, f"{action}-{mode}", files=[stack_vars])
    raise typer.Exit(result.exit_code)


@app.command()
def bootstrap(
    mode: ModeOpt = "bare", inventory_file: InventoryOpt = None, stack_file: StackOpt = None,
    check: CheckOpt = False, diff: DiffOpt = False, limit: LimitOpt = None, tags: TagsOpt = None,
    skip_tags: SkipTagsOpt = None, extra: ExtraOpt = None, output: OutputOpt = "text", verbose: VerboseOpt = 0,
    yes: Annotated[bool, typer.Option(
        "--yes", help="On the lab: go on when the mode needs its nodes recreated (what is on them is lost).")] = False,
) -> None:
    """Prepare servers from scratch and deploy the stack on them.

    Example: toolkit bootstrap --mode bare -i inventory/example.yml --check --diff
    """
    opts = _options(check, diff, limit, tags, skip_tags, extra, output, verbose)
    _run_mode("bootstrap", mode, inventory_file, stack_file, opts, yes=yes)


@app.command()
def deploy(
    mode: ModeOpt = "bare", inventory_file: InventoryOpt = None, stack_file: StackOpt = None,
    check: CheckOpt = False, diff: DiffOpt = False, limit: LimitOpt = None,
    extra: ExtraOpt = None, output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """(Re)deploy only the stack's apps on servers that were bootstrapped already.

    Example: toolkit deploy --mode bare -i inventory/prod.yml --limit apps
    """
    opts = _options(check, diff, limit, "deploy", None, extra, output, verbose)
    _run_mode("bootstrap", mode, inventory_file, stack_file, opts)


@app.command()
def status(
    mode: ModeOpt = "bare", inventory_file: InventoryOpt = None, stack_file: StackOpt = None,
    limit: LimitOpt = None, output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """Show the state of the stack's services on every host.

    Example: toolkit status --mode bare -i inventory/prod.yml
    """
    opts = _options(False, False, limit, None, None, None, output, verbose)
    _run_mode("status", mode, inventory_file, stack_file, opts)


@app.command()
def reset(
    mode: ModeOpt = "bare", inventory_file: InventoryOpt = None, stack_file: StackOpt = None,
    purge_data: Annotated[bool, typer.Option("--purge-data", help="Also delete databases, queues and caches.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    check: CheckOpt = False, limit: LimitOpt = None, output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """Stop and remove what the stack installed. Data is kept unless --purge-data.

    Example: toolkit reset --mode bare -i inventory/prod.yml --yes
    """
    opts = _options(check, False, limit, None, None, None, output, verbose)
    if not yes and not check:
        what = "and DELETE its data " if purge_data else ""
        if not sys.stdin.isatty():
            _fail("reset removes the stack; pass --yes to confirm when not on a terminal.")
        typer.confirm(f"Remove the stack {what}from the {mode} hosts?", abort=True)
    _run_mode("reset", mode, inventory_file, stack_file, opts, {"toolkit_reset_purge_data": purge_data})


AppArg = Annotated[str, typer.Argument(help="An app of the stack (its name in the stack file).", show_default=False)]
# Commands that act on one app, and the modes where they have no meaning (said plainly, exit 2).
_NO_MEANING = {
    ("scale", "bare"): "`toolkit scale` has no meaning in --mode bare: every host of the 'apps' group runs one "
                       "instance of each app. Add or remove hosts there and run `toolkit bootstrap --mode bare`.",
    ("rollout", "bare"): "`toolkit rollout --image` has no meaning in --mode bare: apps run from artifacts, not "
                         "images. Change the app's artifact in the stack file and run `toolkit deploy --mode bare`, "
                         "which restarts one host at a time.",
}
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")


def _app_run(action: str, mode: str, inventory_file: Path | None, stack_file: Path | None, app_name: str,
             variables: dict[str, Any], opts: runner.Options, check: Any = None) -> runner.Result:
    """Validate and run `<action>_<mode>.yml` for one app of the stack; exit 2 naming what is wrong.

    `check` is called with the loaded stack model before any host is touched (extra validation).
    """
    try:
        mode = _known_mode(mode)
        if (action, mode) in _NO_MEANING:
            raise UsageError(_NO_MEANING[(action, mode)])
        if not (paths.content_dir() / "playbooks" / f"{action}_{mode}.yml").is_file():
            raise UsageError(f"`toolkit {action}` is not available in --mode {mode} (yet): there is no "
                             f"playbooks/{action}_{mode}.yml. It works in --mode k8s.")
        source = (stack_file or paths.default_stack()).expanduser().resolve()
        model = stack.load(source)
        names = [a.name for a in model.apps]
        if app_name not in names:
            raise UsageError(f"stack file {source}: there is no app '{app_name}'; its apps are {', '.join(names)}.")
        if check is not None:
            check(model)
        stack.check_mode(model, mode)
        target = _target(inventory_file, mode, opts, action)
        stack.check_mode(model, mode, inventory.load(target))
    except UsageError as exc:
        _fail(str(exc))
    stack_vars = runner.RunFile("stack.yml", stack.to_yaml(model), variable="toolkit_stack_file", mode=0o644)
    return runner.run(f"{action}_{mode}.yml", target, {"toolkit_mode": mode, "toolkit_app": app_name, **variables},
                      opts, f"{action}-{mode}", files=[stack_vars])


@app.command()
def scale(
    app_name: AppArg,
    replicas: Annotated[int, typer.Argument(help="How many replicas (0 or more).", show_default=False)],
    mode: ModeOpt = "bare", inventory_file: InventoryOpt = None, stack_file: StackOpt = None,
    output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """Scale one app to N replicas and wait until they are ready (k8s). The next deploy sets the stack file's count.

    Example: toolkit scale catalog 3 --mode k8s
    """
    opts = _options(False, False, None, None, None, None, output, verbose)
    if replicas < 0:
        _fail(f"replicas is {replicas}; give 0 or more.")
    result = _app_run("scale", mode, inventory_file, stack_file, app_name, {"toolkit_replicas": replicas}, opts)
    raise typer.Exit(result.exit_code)


@app.command()
def rollout(
    app_name: AppArg,
    image: Annotated[str, typer.Option("--image", help="The new image reference, e.g. toolkit/catalog:0.1.1.",
                                       show_default=False)],
    mode: ModeOpt = "bare", inventory_file: InventoryOpt = None, stack_file: StackOpt = None,
    output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """Roll one app out to a new image, one pod at a time, and wait; roll back by itself if it cannot become ready.

    Old pods keep serving until new ones are ready (maxUnavailable 0). The next deploy sets the stack
    file's image again: change it there to keep the new one.

    Example: toolkit rollout catalog --image toolkit/catalog:0.1.1 --mode k8s
    """
    opts = _options(False, False, None, None, None, None, output, verbose)
    try:
        full = stack.parse_image(image).full
    except ValueError as exc:
        _fail(f"--image '{image}': expected {exc}")
    result = _app_run("rollout", mode, inventory_file, stack_file, app_name, {"toolkit_image": full}, opts)
    raise typer.Exit(result.exit_code)


def _print_log_lines(lines: list[dict[str, Any]], output: str) -> None:
    for item in lines:
        if output == "json":
            print(json.dumps(item), flush=True)
        else:
            gone = " (gone)" if item.get("source") == "store" else ""
            print(f"{item.get('time', '')} {item.get('pod', '')}{gone} {item.get('line', '')}", flush=True)


@app.command()
def logs(
    app_name: AppArg,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only lines of the last DURATION: 30s, 10m, 2h, 1d. Default: the live pods' whole logs "
        "and the last day of the log store.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    mode: ModeOpt = "bare", inventory_file: InventoryOpt = None, stack_file: StackOpt = None,
    output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """Print one app's log lines from every replica (k8s: and from the log store for pods that are gone).

    Lines are printed oldest first as TIME POD LINE; a pod that no longer exists is marked (gone).
    --output json prints the run's recap with the lines under data.logs (with --follow: one JSON object
    per line). --follow asks again every few seconds for newer lines.

    Example: toolkit logs catalog --since 10m --mode k8s
    """
    seconds = 0
    if since is not None:
        found = _DURATION.match(since)
        if not found:
            _fail(f"--since '{since}' is not a duration such as 30s, 10m, 2h or 1d.")
        seconds = int(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
    if output not in ("text", "json"):
        _fail(f"--output '{output}' is not supported; choose text or json.")
    # Progress goes to stderr; the lines are the command's output.
    try:
        _logs_loop(app_name, seconds, follow, mode, inventory_file, stack_file, output, verbose)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _logs_loop(app_name: str, seconds: int, follow: bool, mode: str, inventory_file: Path | None,
               stack_file: Path | None, output: str, verbose: int) -> None:
    """Run the logs playbook once, or (--follow) again and again for the lines after the last one seen."""
    quiet = runner.Options(output="stderr", verbosity=verbose)
    after = ""
    while True:
        epoch = datetime.strptime(after, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() if after else 0
        result = _app_run("logs", mode, inventory_file, stack_file, app_name,
                          {"toolkit_logs_since": seconds, "toolkit_logs_after": after, "toolkit_logs_after_epoch": epoch},
                          quiet if not after else runner.Options(output="quiet", verbosity=verbose))
        data = result.data.get("logs") or {}
        lines = list(data.get("lines") or [])
        if result.exit_code:
            for failure in result.failures:
                typer.echo(f"error: {failure.host}: {failure.message}", err=True)
            raise typer.Exit(result.exit_code)
        if data.get("store_error") and not after:
            typer.echo(f"warning: {data['store_error']}; lines of pods that are gone are missing.", err=True)
        if output == "json" and not follow:
            print(json.dumps(result.as_dict(), indent=2))
        else:
            _print_log_lines(lines, output)
        if not follow:
            return
        after = lines[-1]["time"] if lines else (after or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        time.sleep(2)


@app.command()
def doctor(output: OutputOpt = "text") -> None:
    """Check the controller: Python, Ansible and its collections, a Docker engine and debootstrap for the lab.

    Example: toolkit doctor
    """
    from .doctor import checks

    results = checks()
    if output == "json":
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            mark = "ok  " if r.ok else ("warn" if not r.required else "FAIL")
            typer.echo(f"[{mark}] {r.name}: {r.detail}")
    raise typer.Exit(0 if all(r.ok or not r.required for r in results) else 1)


@inventory_app.command("validate")
def inventory_validate(
    inventory_file: Annotated[Path, typer.Option("--inventory", "-i", help="Ansible YAML inventory to check.")],
    mode: ModeOpt = "bare",
    stack_file: StackOpt = None,
) -> None:
    """Check an inventory (and the stack file) for a mode without touching any host.

    Example: toolkit inventory validate -i inventory/example.yml --mode k8s
    """
    try:
        model = stack.load((stack_file or paths.default_stack()).expanduser().resolve())
        inv = inventory.load(inventory_file)
        inventory.check_mode(inv, mode)
        stack.check_mode(model, mode, inv)
    except UsageError as exc:
        _fail(str(exc))
    groups = ", ".join(f"{g}={len(h)}" for g, h in sorted(inv.groups.items()) if g != "all")
    typer.echo(f"{inv.path}: valid for --mode {mode}; {len(inv.hosts)} hosts ({groups}).")


BundleArg = Annotated[Path, typer.Argument(help="Bundle directory (one Kubernetes version; see docs/bundle.md).")]


@bundle_app.command("verify")
def bundle_verify(path: BundleArg, output: OutputOpt = "text") -> None:
    """Check a bundle: its manifest, every file against its sha256, the image archives.

    Example: toolkit bundle verify ~/.cache/toolkit/bundles/k8s-v1.35.4
    """
    try:
        if output not in ("text", "json"):
            raise UsageError(f"--output '{output}' is not supported; choose text or json.")
        found = bundle.load(path)
    except UsageError as exc:
        _fail(str(exc))
    if output == "json":
        typer.echo(json.dumps(bundle.summary(found), indent=2))
    else:
        typer.echo(bundle.describe(found))


def _write_vars(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write the role variables to {path}: {exc.strerror or exc}.") from None


def _lab_bundle_vars(found: bundle.Bundle, vars_file: Path | None = None) -> None:
    """Link a bundle's files under the lab's file server and write its role variables into the lab inventory."""
    bundle.publish_files(found, lab.files_dir() / "bundles" / f"k8s-{found.version}")
    variables = bundle.role_vars(found, f"{lab.FILES_URL}/bundles/k8s-{found.version}", lab.REGISTRY_ADDRESS)
    text = bundle.vars_document(found, variables)
    for target in (lab.bundle_vars_path(), *([vars_file] if vars_file else [])):
        _write_vars(target, text)
    typer.echo(f"bundle {found.version} served to the lab; variables: {lab.bundle_vars_path()}", err=True)


def _serve_bundle_to_lab(found: bundle.Bundle) -> None:
    """`toolkit bundle serve BUNDLE --lab`: images into the lab registry, files and variables into the lab."""
    lab.require_running_services()
    user, password = lab.ensure_registry_credentials()
    pushed = bundle.publish_images(found, lab.REGISTRY_HOST_ADDRESS,
                                   lab.docker_client("serving a bundle (its images are pushed)"),
                                   {"username": user, "password": password})
    typer.echo(f"pushed {len(pushed)} images to {lab.REGISTRY_HOST_ADDRESS}", err=True)
    _lab_bundle_vars(found)


@bundle_app.command("serve")
def bundle_serve(
    path: BundleArg,
    registry: Annotated[Optional[str], typer.Option(
        "--registry", help="Registry (HOST:PORT) to push the images to. Default with --lab: the lab's (127.0.0.1:15000).",
    )] = None,
    listen: Annotated[str, typer.Option(
        "--listen", help="ADDRESS:PORT to serve the files on (not with --lab).")] = "0.0.0.0:8080",
    to_lab: Annotated[bool, typer.Option("--lab", help="Serve to the built-in lab (its registry and file server).")] = False,
    vars_file: Annotated[Optional[Path], typer.Option("--vars-file", help="Also write the role variables here.")] = None,
) -> None:
    """Serve a bundle to nodes: images into a registry under their upstream paths, files over HTTP.

    The bundle is verified first; nothing is pushed or served when it is bad. With --lab the files go
    to the lab's file server and the role variables into the lab inventory, and the command returns.
    Otherwise it prints the role variables (kube_packages, containerd, kubeadm, cni) and serves the
    files in the foreground until Ctrl-C. A plain-HTTP registry other than a loopback one must be in
    the Docker engine's insecure-registries.

    Example: toolkit bundle serve ~/.cache/toolkit/bundles/k8s-v1.35.4 --registry 10.0.0.5:5000
    """
    server = None
    try:
        found = bundle.load(path)
        if to_lab and registry is None:
            _serve_bundle_to_lab(found)
            if vars_file is not None:
                _lab_bundle_vars(found, vars_file)
            return
        if registry is None:
            raise UsageError("--registry HOST:PORT is needed (or --lab to serve to the built-in lab).")
        if not to_lab:
            server = bundle.file_server(found, listen)  # a bad or busy --listen fails before anything is pushed
        pushed = bundle.publish_images(found, registry, lab.docker_client("serving a bundle (its images are pushed)"))
        typer.echo(f"pushed {len(pushed)} images to {registry}", err=True)
        if to_lab:
            _lab_bundle_vars(found, vars_file)
            return
        note = ("# Replace 0.0.0.0 below with this server's address as the nodes reach it.\n"
                if bundle.is_any_address(listen) else "")
        text = bundle.vars_document(found, bundle.role_vars(found, bundle.files_url(listen), registry), note)
        typer.echo(text, nl=False)
        if vars_file is not None:
            _write_vars(vars_file, text)
    except UsageError as exc:
        if server is not None:
            server.server_close()
        _fail(str(exc))
    if server is None:  # unreachable: only the --lab path leaves without a server, and it returned
        return
    typer.echo(f"serving {found.path / 'files'} on {bundle.files_url(listen)}/ (Ctrl-C stops)", err=True)
    bundle.serve_forever(server)


@lab_app.command("up")
def lab_up(
    nodes: Annotated[Optional[int], typer.Option("--nodes", "-n", help="Number of nodes (default: as configured, else 3).")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="Node profile for all nodes: server or k8s.")] = None,
    output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """Create (or resize) the local lab: nodes, a file server, an image registry, and an inventory.

    Example: toolkit lab up --nodes 3
    """
    try:
        if profile is not None and profile not in lab.PROFILES:
            raise UsageError(f"--profile '{profile}' is not one of {', '.join(lab.PROFILES)}.")
        config = lab.plan(nodes, profile)
        lab.require_controller(config)
    except UsageError as exc:
        _fail(str(exc))
    _lab_up(config, output, verbose)
    typer.echo(f"lab is up; inventory: {lab.inventory_path()}", err=True)


@lab_app.command("down")
def lab_down(
    purge_images: Annotated[bool, typer.Option("--purge-images", help="Also remove the locally built base images.")] = False,
    output: OutputOpt = "text", verbose: VerboseOpt = 0,
) -> None:
    """Remove every container, network, volume and file the lab created, and nothing else.

    Example: toolkit lab down
    """
    try:
        config = lab.load_config() or lab.plan(None)
        lab.docker_client()
    except UsageError as exc:
        _fail(str(exc))
    variables = {**lab.extravars(config), "lab_down_remove_images": purge_images}
    result = runner.run("lab_down.yml", None, variables, runner.Options(output=output, verbosity=verbose), "lab-down")
    if result.exit_code == 0:
        lab.config_path().unlink(missing_ok=True)
    raise typer.Exit(result.exit_code)


@lab_app.command("image")
def lab_image(output: OutputOpt = "text", verbose: VerboseOpt = 0) -> None:
    """Build the lab's Debian base images (debootstrap, no registry) and start the package cache.

    Molecule scenarios need both: their instances join the cache's internal network.

    Example: toolkit lab image
    """
    try:
        config = lab.load_config() or lab.plan(None)
        lab.require_controller(config)
    except UsageError as exc:
        _fail(str(exc))
    result = runner.run("lab_image.yml", None, lab.extravars(config), runner.Options(output=output, verbosity=verbose),
                        "lab-image")
    raise typer.Exit(result.exit_code)


@lab_app.command("status")
def lab_status(output: OutputOpt = "text") -> None:
    """Show the lab's containers, addresses, services and inventory path.

    Example: toolkit lab status --output json
    """
    try:
        found = lab.containers()
    except UsageError as exc:
        _fail(str(exc))
    config = lab.load_config() if lab.config_path().exists() else None
    info = {
        "inventory": str(lab.inventory_path()) if (lab.inventory_path() / "hosts.yml").exists() else None,
        "config": str(lab.config_path()) if lab.config_path().exists() else None,
        "connection": (config or {}).get("connection", "ssh"),
        "ssh": f"ssh -i {lab.ssh_dir() / 'id_ed25519'} -o UserKnownHostsFile={lab.ssh_dir() / 'known_hosts'} ops@ADDRESS",
        "files_dir": str(lab.files_dir()),
        "file_server": f"{lab.FILES_URL}/ (lab network), http://127.0.0.1:{lab.FILES_HOST_PORT}/ (controller)",
        "registry": f"{lab.REGISTRY_ADDRESS} (lab network), {lab.REGISTRY_HOST_ADDRESS} (controller)",
        "containers": found,
    }
    if output == "json":
        print(json.dumps(info, indent=2))
        return
    if not found:
        typer.echo("the lab is down (no containers). Start it with: toolkit lab up")
        return
    for c in found:
        typer.echo(f"{c['container']:<28} {c['kind']:<8} {c['state']:<10} {c['address']:<16} "
                   f"{c['distribution']:<9} {c['profile']}")
    for key in ("inventory", "config", "connection", "ssh", "files_dir", "file_server", "registry"):
        typer.echo(f"{key}: {info[key]}")


@lab_app.command("images")
def lab_images(
    registry: Annotated[Optional[str], typer.Option(
        "--registry", help="Registry HOST:PORT to push to. Default: the lab's (127.0.0.1:15000), with its credentials.")] = None,
    artifacts: Annotated[Optional[Path], typer.Option(
        "--artifacts", help="Directory written by `apps/build.sh DIR` (the four artifacts and SHA256SUMS). "
        "Default: the lab's files directory.")] = None,
    only: Annotated[Optional[str], typer.Option(
        "--only", help="Comma-separated images to build and push (what they are built from is built too): "
        "postgres, mariadb, redis, rabbitmq, kafka, eclipse-temurin, node, catalog, orders, billing, front.")] = None,
    app_tag: Annotated[Optional[list[str]], typer.Option(
        "--app-tag", help="APP=TAG: tag an app's image TAG instead of the reference stack's (repeatable).")] = None,
    auth_file: Annotated[Optional[Path], typer.Option(
        "--auth-file", help="File holding USER:PASSWORD for --registry. Default: the lab's credentials for the lab "
        "registry, Docker's own (docker login) for another.")] = None,
    manifest: Annotated[Optional[Path], typer.Option(
        "--manifest", help="Where to record what was pushed (YAML). Default: ~/.local/share/toolkit/lab/images.yml "
        "for the lab registry, ~/.local/share/toolkit/images/HOST_PORT.yml otherwise.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the output of every build step.")] = False,
) -> None:
    """Build the stack's images offline (stand-ins for the official images, and the apps) and push them.

    Postgres, MariaDB, Redis, RabbitMQ, Kafka, Java 8 and Node.js images come from the lab's Debian
    base image with the official images' interface; the apps from apps/*/Dockerfile and the artifacts.
    Each is pushed as REGISTRY/<official path>:TAG (library/postgres:17, apache/kafka:3.9.1,
    toolkit/catalog:0.1.0) and recorded with its digest in the manifest. TOOLKIT_APT_PROXY
    (http://HOST:PORT) sends the builds' apt through a package cache.

    Example: toolkit lab images --only catalog --app-tag catalog=0.1.1
    """
    from . import images

    def log(line: str) -> None:
        typer.echo(line, err=True)

    try:
        root = images.checkout()
        specs = images.catalog(images.parse_app_tags(app_tag or []), root)
        to_build, to_push = images.plan(specs, _split(only, "--only") if only is not None else None)
        if app_tag and not {a.partition("=")[0] for a in app_tag} <= {s.name for s in to_push}:
            raise UsageError("--app-tag names an app that --only leaves out; add it to --only.")
        images.apt_proxy()
        files = images.check_artifacts((artifacts or lab.files_dir()).expanduser().resolve(), to_build)
        lab_registry = registry is None
        target = images.parse_registry(registry or lab.REGISTRY_HOST_ADDRESS)
        if auth_file is not None:
            credentials: tuple[str, str] | None = images.read_credentials(auth_file.expanduser())
        elif lab_registry:
            credentials = images.lab_registry_credentials()
        else:
            credentials = None
        try:
            images.require_registry(target)
        except UsageError as exc:
            raise UsageError(f"{exc} Start the lab with `toolkit lab up`." if lab_registry else str(exc)) from None
        client = lab.docker_client("building images")
        client.api.timeout = 3600  # one build step may be silent for minutes (a package install)
        if not client.images.list(name=images.LAB_BASE_IMAGE):
            raise UsageError(f"the lab base image {images.LAB_BASE_IMAGE} is missing: build it with `toolkit lab image`.")
        auth = images.login(client, target, credentials) if credentials else None
        manifest_file = (manifest.expanduser() if manifest else images.manifest_path(target, lab_registry))
        if any("kafka.tgz" in s.files for s in to_build):
            files["kafka.tgz"] = images.kafka_tarball(root, log)
    except UsageError as exc:
        _fail(str(exc))
    try:
        built = images.build(client, to_build, files, log, verbose=verbose, root=root)
        pushed = images.push(client, [b for b in built if b.spec in to_push], target, auth, log)
    except images.ImageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    images.write_manifest(manifest_file, target, pushed)
    typer.echo(f"pushed {len(pushed)} images to {target}; manifest: {manifest_file}", err=True)


@app.command()
def version() -> None:
    """Print the toolkit version.

    Example: toolkit version
    """
    typer.echo(__version__)


if __name__ == "__main__":
    app()
