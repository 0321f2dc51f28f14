"""The images of --mode docker and --mode k8s, built offline with the official images' interface.

Nothing can be pulled in the lab, so the project builds stand-ins for the official images from its
debootstrap base image (`toolkit-lab/debian:trixie`) plus Debian packages (lab/images/<name>/), and
the example apps' images from their Dockerfiles and the artifacts of `apps/build.sh`. Each stand-in
keeps the interface of the image it replaces (environment variables, data paths, ports, entrypoint
conventions, the tools healthchecks use), so the same role variables drive either. Images are named
by the repository they stand in for: `postgres:17` is built locally as `toolkit-lab/library/postgres:17`
and pushed as `REGISTRY/library/postgres:17`, so a registry override `docker.io -> REGISTRY` maps
one onto the other. A manifest (YAML) records, per pushed image, the reference it stands in for,
the pushed reference and its digest.

Used by `toolkit lab images`; the Kubernetes stack reuses `plan`, `build` and `push`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import yaml

from . import __version__, paths, yamlfile
from .errors import UsageError

MANIFEST_FORMAT = 1
# The lab's debootstrap base image (roles/lab, `toolkit lab image`) and the local layer built on it.
LAB_BASE_IMAGE = "toolkit-lab/debian:trixie"
BASE_LOCAL = "toolkit-lab/images-base:trixie"
# Local names: this prefix + the repository path + tag (never the official names themselves, so a
# controller that also holds the real images keeps them).
LOCAL_PREFIX = "toolkit-lab"
APPS = ("catalog", "orders", "billing", "front")
ARTIFACTS = ("catalog.jar", "orders.jar", "billing.jar", "front.tar.gz")
_APP_PORTS = {"catalog": 8081, "orders": 8082, "billing": 8083, "front": 3000}
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_FIXED_MTIME = 1704067200  # 2024-01-01: build contexts do not change when only file times do
_VERSION_FILE = "/usr/share/toolkit-image/version"
Log = Callable[[str], None]


class ImageError(Exception):
    """A build or push failed (not a usage error): the message names the image and the cause."""


@dataclass(frozen=True)
class Spec:
    """One image to build.

    `path:tag` is its repository path and tag in any registry (`library/postgres:17`); `context` is
    its directory under the checkout; `base` names the spec whose local image is its BASE_IMAGE;
    `files` names what the build context takes from outside `context` (an app's artifact, the
    Kafka tarball as kafka.tgz): see `gather_files`.
    """

    name: str
    path: str
    tag: str
    context: str
    dockerfile: str = "Dockerfile"
    base: str | None = "base"
    buildargs: Mapping[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    internal: bool = False

    @property
    def app(self) -> bool:
        """One of the example apps (built from apps/ and an artifact), not a stand-in for an official image."""
        return self.path.startswith("toolkit/")

    @property
    def ref(self) -> str:
        """`library/postgres:17`: the image's path and tag in any registry."""
        return f"{self.path}:{self.tag}"

    @property
    def source(self) -> str:
        """The reference this image stands in for: `docker.io/library/postgres:17`, `docker.io/toolkit/catalog:0.1.0`."""
        return f"docker.io/{self.ref}"

    @property
    def local(self) -> str:
        """The local name on the controller's engine: `toolkit-lab/library/postgres:17`."""
        return BASE_LOCAL if self.internal else f"{LOCAL_PREFIX}/{self.ref}"


@dataclass(frozen=True)
class Built:
    """A built image: its spec, image id, what upstream software it carries, seconds taken, cache use."""

    spec: Spec
    image_id: str
    carries: str
    seconds: float
    cached: bool


@dataclass(frozen=True)
class Pushed:
    """A pushed image: `pushed` is REGISTRY/PATH:TAG, `digest` its manifest digest (sha256:...)."""

    built: Built
    registry: str
    pushed: str
    digest: str

    @property
    def reference(self) -> str:
        """REGISTRY/PATH@sha256:...: the reference that cannot move."""
        return f"{self.registry}/{self.built.spec.path}@{self.digest}"


# --------------------------------------------------------------------------------------------- specs

def checkout() -> Path:
    """The repository checkout holding lab/images/ and apps/ (images are built from a checkout only).

    Raises UsageError when the toolkit runs from an installed package without them.
    """
    root = paths.content_dir()
    for rel in ("lab/images/base/Dockerfile", "apps/java/Dockerfile", "apps/front/Dockerfile"):
        if not (root / rel).is_file():
            raise UsageError(f"building images needs a checkout of the toolkit repository ({rel} is not under {root}); "
                             "run `toolkit lab images` from a clone.")
    return root


def kafka_release(root: Path) -> tuple[str, str]:
    """(Kafka version, Scala version) from roles/kafka/defaults/main.yml: one pin for the role and the image."""
    defaults = yamlfile.load(root / "roles" / "kafka" / "defaults" / "main.yml", "kafka role defaults")
    try:
        return str(defaults["kafka_version"]), str(defaults["kafka_scala_version"])
    except (TypeError, KeyError) as exc:
        raise UsageError(f"roles/kafka/defaults/main.yml has no {exc}; it pins the Kafka version of the image.") from None


def stack_app_tags(stack_file: Path | None = None) -> dict[str, tuple[str, int]]:
    """The apps' (tag, port) in the reference stack (stacks/reference.yml): `image: toolkit/catalog:0.1.0` → 0.1.0.

    An app the stack does not name, or names with another image, keeps the toolkit's version and its
    default port.
    """
    found = {name: (__version__, port) for name, port in _APP_PORTS.items()}
    data = yamlfile.load(stack_file or paths.default_stack(), "stack file")
    for app in (data.get("apps") if isinstance(data, dict) else None) or []:
        if not isinstance(app, dict) or app.get("name") not in found:
            continue
        name = app["name"]
        image = str(app.get("image", ""))
        repo, _, tag = image.rpartition(":")
        port = app["port"] if isinstance(app.get("port"), int) else found[name][1]
        found[name] = (tag if repo == f"toolkit/{name}" and _TAG.match(tag) else found[name][0], port)
    return found


def catalog(app_tags: Mapping[str, str] | None = None, root: Path | None = None) -> list[Spec]:
    """Every image, in build order: the base layer, the data services, the runtimes, then the apps.

    `app_tags` overrides an app's tag (`{"catalog": "0.1.1"}`); the default is the reference stack's.
    """
    root = root or checkout()
    kafka_version, scala_version = kafka_release(root)
    stack = stack_app_tags()
    tags = {name: (app_tags or {}).get(name, tag) for name, (tag, _) in stack.items()}
    lab = "lab/images"
    specs = [
        Spec("base", "toolkit-lab/images-base", "trixie", f"{lab}/base", base=None,
             buildargs={"BASE_IMAGE": LAB_BASE_IMAGE}, internal=True),
        Spec("postgres", "library/postgres", "17", f"{lab}/postgres"),
        Spec("mariadb", "library/mariadb", "11.8", f"{lab}/mariadb"),
        Spec("redis", "library/redis", "8", f"{lab}/redis", buildargs={"REDIS_MAJOR": "8"}),
        Spec("rabbitmq", "library/rabbitmq", "4.0-management", f"{lab}/rabbitmq", buildargs={"RABBITMQ_SERIES": "4.0"}),
        Spec("kafka", "apache/kafka", kafka_version, f"{lab}/kafka",
             buildargs={"KAFKA_VERSION": kafka_version, "SCALA_VERSION": scala_version}, files=("kafka.tgz",)),
        Spec("eclipse-temurin", "library/eclipse-temurin", "8-jre", f"{lab}/eclipse-temurin"),
        Spec("node", "library/node", "20", f"{lab}/node", buildargs={"NODE_MAJOR": "20"}),
    ]
    for app in ("catalog", "orders", "billing"):
        specs.append(Spec(app, f"toolkit/{app}", tags[app], "apps/java", base="eclipse-temurin",
                          buildargs={"APP": app, "PORT": str(stack[app][1])}, files=(f"{app}.jar",)))
    specs.append(Spec("front", "toolkit/front", tags["front"], "apps/front", base="node", files=("front.tar.gz",)))
    return specs


def names(specs: Iterable[Spec]) -> list[str]:
    """The names `--only` accepts (the internal base layer is not one)."""
    return [s.name for s in specs if not s.internal]


def parse_app_tags(values: Iterable[str]) -> dict[str, str]:
    """`--app-tag APP=TAG` values as {app: tag}. Raises UsageError naming the bad value."""
    tags: dict[str, str] = {}
    for value in values:
        app, sep, tag = value.partition("=")
        if not sep or app not in APPS:
            raise UsageError(f"--app-tag '{value}' is not APP=TAG with APP one of {', '.join(APPS)} "
                             "(for example --app-tag catalog=0.1.1).")
        if not _TAG.match(tag):
            raise UsageError(f"--app-tag '{value}': '{tag}' is not an image tag (letters, digits, '_', '.', '-'; "
                             "at most 128; not starting with '.' or '-').")
        if app in tags and tags[app] != tag:
            raise UsageError(f"--app-tag gives {app} two tags ({tags[app]} and {tag}); give one.")
        tags[app] = tag
    return tags


def plan(specs: list[Spec], only: Iterable[str] | None) -> tuple[list[Spec], list[Spec]]:
    """(what to build, in order, with what it is built from; what to push) for `--only` names (None: all).

    Raises UsageError for an unknown name.
    """
    by_name = {s.name: s for s in specs}
    wanted = list(dict.fromkeys(only)) if only is not None else names(specs)
    unknown = [n for n in wanted if n not in by_name or by_name[n].internal]
    if unknown:
        raise UsageError(f"--only: unknown image '{unknown[0]}'; images: {', '.join(names(specs))}.")
    if not wanted:
        raise UsageError("--only names no image; images: " + ", ".join(names(specs)) + ".")
    needed: set[str] = set()
    for name in wanted:
        current: str | None = name
        while current is not None:
            needed.add(current)
            current = by_name[current].base
    return [s for s in specs if s.name in needed], [by_name[n] for n in names(specs) if n in wanted]


# ------------------------------------------------------------------------------------------- inputs

def check_artifacts(directory: Path, specs: Iterable[Spec]) -> dict[str, Path]:
    """The artifacts the app images need, checked against the directory's SHA256SUMS.

    Returns {file name: path}. Raises UsageError naming the first missing or mismatching file and
    the command that builds them.
    """
    wanted = [f for s in specs for f in s.files if f in ARTIFACTS]
    if not wanted:
        return {}
    fix = f"build them with `apps/build.sh {directory}` (or pass --artifacts DIR)"
    if not directory.is_dir():
        raise UsageError(f"artifacts directory {directory} does not exist; {fix}.")
    sums_file = directory / "SHA256SUMS"
    if not sums_file.is_file():
        raise UsageError(f"{sums_file} is missing; {fix}.")
    sums: dict[str, str] = {}
    for line in sums_file.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, _, name = line.partition(" ")
        sums[name.lstrip(" *")] = digest.lower()
    found: dict[str, Path] = {}
    for name in ARTIFACTS:
        if name not in wanted:
            continue
        path = directory / name
        if not path.is_file():
            raise UsageError(f"artifact {path} is missing; {fix}.")
        if name not in sums:
            raise UsageError(f"{sums_file} has no line for {name}; {fix}.")
        if _sha256(path) != sums[name]:
            raise UsageError(f"artifact {path} does not match its line in {sums_file}; {fix}.")
        found[name] = path
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(partial(handle.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def kafka_tarball(root: Path, log: Log) -> Path:
    """The Kafka release tarball, assembled from Maven Central by lab/build-kafka-tarball (cached there).

    Kept under ~/.cache/toolkit/kafka/ with its SHA256SUMS line. Raises UsageError when it must be built
    and Maven is missing; ImageError when the script fails.
    """
    version, scala = kafka_release(root)
    outdir = paths.cache_dir() / "kafka"
    log(f"Kafka {version}: lab/build-kafka-tarball (cached)")
    result = subprocess.run([str(root / "lab" / "build-kafka-tarball"), "--version", version, "--scala", scala,
                             str(outdir)], capture_output=True, text=True, check=False)
    if result.returncode == 1 and shutil.which("mvn") is None:
        raise UsageError("the kafka image needs the Kafka tarball, assembled from Maven Central by "
                         "lab/build-kafka-tarball, which needs Maven: `apt-get install -y maven`.")
    lines = result.stdout.strip().splitlines()
    tarball = Path(lines[-1]) if lines else outdir / f"kafka_{scala}-{version}.tgz"
    if result.returncode != 0 or not tarball.is_file():
        raise ImageError(f"lab/build-kafka-tarball {version} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return tarball


def apt_proxy() -> str | None:
    """TOOLKIT_APT_PROXY (http://HOST:PORT), the package proxy builds use; None when unset.

    Raises UsageError when it is set to something else.
    """
    value = os.environ.get("TOOLKIT_APT_PROXY", "").strip()
    if not value:
        return None
    if not re.match(r"^http://[A-Za-z0-9.\-\[\]:]+(:[0-9]+)?/?$", value):
        raise UsageError(f"TOOLKIT_APT_PROXY '{value}' is not http://HOST:PORT (an apt proxy such as apt-cacher-ng).")
    return value


# -------------------------------------------------------------------------------------- credentials

def lab_registry_credentials_path() -> Path:
    """The lab registry's credentials file (USER:PASSWORD on one line, written by `toolkit lab up`)."""
    return paths.lab_dir() / "secrets" / "registry"


def read_credentials(path: Path) -> tuple[str, str]:
    """(user, password) from a file holding USER:PASSWORD on one line.

    The content is never put into a message. Raises UsageError when the file is missing, unreadable
    or not of that form.
    """
    if not path.is_file():
        raise UsageError(f"registry credentials file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"registry credentials file {path} cannot be read ({type(exc).__name__}).") from None
    lines = [line for line in text.splitlines() if line.strip()]
    user, sep, password = (lines[0] if len(lines) == 1 else "").partition(":")
    if len(lines) != 1 or not sep or not user or not password or user != user.strip():
        raise UsageError(f"registry credentials file {path} must hold one line USER:PASSWORD.")
    return user, password


def lab_registry_credentials() -> tuple[str, str]:
    """(user, password) of the lab registry. Raises UsageError naming the file and `toolkit lab up`."""
    path = lab_registry_credentials_path()
    try:
        return read_credentials(path)
    except UsageError as exc:
        raise UsageError(f"{exc} The lab registry needs it: start the lab with `toolkit lab up` (it writes the "
                         "file), or pass --registry HOST:PORT with --auth-file for another registry.") from None


def parse_registry(value: str) -> str:
    """--registry HOST:PORT, checked. Raises UsageError."""
    found = _HOST_PORT.match(value)
    if not found or not 0 < int(found.group("port")) < 65536:
        raise UsageError(f"--registry '{value}' is not HOST:PORT (for example 127.0.0.1:15000 or registry.example.com:5000).")
    return value


def require_registry(registry: str, timeout: float = 5.0) -> None:
    """Refuse unless something accepts TCP connections at HOST:PORT. Raises UsageError."""
    found = _HOST_PORT.match(registry)
    assert found is not None  # parse_registry ran first
    host = found.group("host").strip("[]")
    try:
        with socket.create_connection((host, int(found.group("port"))), timeout=timeout):
            pass
    except OSError as exc:
        raise UsageError(f"the registry {registry} does not answer ({exc.strerror or exc}).") from None


_MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def in_registry(registry: str, ref: str, credentials: tuple[str, str] | None = None, timeout: float = 10.0) -> bool:
    """Whether the registry (HOST:PORT, plain HTTP) has the manifest of `ref` (`PATH:TAG`, `library/postgres:17`).

    Asks the registry's v2 API (HEAD /v2/PATH/manifests/TAG) with basic auth when `credentials` are
    given; the password goes only into that header. Raises UsageError when the registry does not
    answer or refuses the credentials.
    """
    import base64
    import urllib.error
    import urllib.request

    path, _, tag = ref.rpartition(":")
    request = urllib.request.Request(f"http://{registry}/v2/{path}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": _MANIFEST_TYPES})
    if credentials is not None:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - http to the named registry
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        if exc.code in (401, 403):
            raise UsageError(f"the registry {registry} refused the credentials of user "
                             f"'{credentials[0] if credentials else ''}' (HTTP {exc.code}).") from None
        raise UsageError(f"the registry {registry} answered HTTP {exc.code} for {ref}.") from None
    except OSError as exc:
        raise UsageError(f"the registry {registry} does not answer ({getattr(exc, 'reason', exc)}).") from None


def specs_for(references: Iterable[str], root: Path | None = None) -> tuple[list[Spec], list[str]]:
    """The specs that build the given normalised image references, and the references none builds.

    `references` are full references as the stack model writes them (`docker.io/library/postgres:17`,
    `docker.io/toolkit/catalog:0.1.1`); an app's tag is taken from its reference, so a stack naming
    another tag of an app gets that tag built. References of other registries, digests and unknown
    images are returned as not buildable.
    """
    refs = list(dict.fromkeys(references))
    tags: dict[str, str] = {}
    for ref in refs:
        for app in APPS:
            prefix = f"docker.io/toolkit/{app}:"
            if ref.startswith(prefix) and _TAG.match(ref[len(prefix):]):
                tags[app] = ref[len(prefix):]
    by_source = {s.source: s for s in catalog(tags, root) if not s.internal}
    return [by_source[r] for r in refs if r in by_source], [r for r in refs if r not in by_source]


def login(client: Any, registry: str, credentials: tuple[str, str]) -> dict[str, str]:
    """Check the credentials with the registry through the engine; return the auth_config for pushes.

    The engine keeps nothing: the SDK sends the credentials with each request. Raises UsageError
    when the registry refuses them.
    """
    import docker.errors

    auth = {"username": credentials[0], "password": credentials[1]}
    try:
        client.login(username=auth["username"], password=auth["password"], registry=registry, reauth=True)
    except docker.errors.APIError as exc:
        reason = str(exc.explanation or exc)
        if auth["password"] in reason:  # never echo a secret, whatever the engine says
            reason = "refused"
        raise UsageError(f"the registry {registry} refused the login of user '{auth['username']}': {reason}.") from None
    return auth


# ------------------------------------------------------------------------------------------- builds

def _context(root: Path, spec: Spec, files: Mapping[str, Path]) -> IO[bytes]:
    """The build context as an uncompressed tar: the spec's directory (Dockerfile as `Dockerfile`) plus `files`.

    Owners and times are fixed, so the same inputs give the same context (and the engine's cache hits).
    """
    handle: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 - returned open
    directory = root / spec.context
    members: dict[str, Path] = {}
    if spec.context.startswith("lab/images/"):
        members.update({p.name: p for p in sorted(directory.iterdir()) if p.is_file()})
    members["Dockerfile"] = directory / spec.dockerfile
    members.update(files)
    with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(members.items()):
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = _FIXED_MTIME
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            with path.open("rb") as data:
                tar.addfile(info, data)
    handle.seek(0)
    return handle


def gather_files(specs: Iterable[Spec], artifacts_dir: Path, log: Log, root: Path | None = None) -> dict[str, Path]:
    """Every file the builds of `specs` take from outside their directories: {context name: path}.

    The apps' artifacts come from `artifacts_dir` (checked against its SHA256SUMS); kafka.tgz is
    assembled once from Maven Central. Raises UsageError (missing artifacts, no Maven) before any build.
    """
    specs = list(specs)
    files = check_artifacts(artifacts_dir, specs)
    if any("kafka.tgz" in s.files for s in specs):
        files["kafka.tgz"] = kafka_tarball(root or checkout(), log)
    return files


def _labels(spec: Spec) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.title": spec.path.rpartition("/")[2],
        "org.opencontainers.image.version": spec.tag,
        "toolkit.image.name": spec.name,
    }
    if spec.app:
        labels["toolkit.image.app"] = spec.name
    elif not spec.internal:
        labels["toolkit.image.stands-in-for"] = spec.source
    return labels


def _read_file(client: Any, image: str, path: str) -> str:
    """A small text file from an image, through a created (never started) container."""
    container = client.containers.create(image, command=["true"])
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            extracted = tar.extractfile(member) if member is not None else None
            return extracted.read().decode() if extracted is not None else ""
    finally:
        container.remove(force=True)


def build(client: Any, specs: list[Spec], files: Mapping[str, Path], log: Log,
          verbose: bool = False, root: Path | None = None) -> list[Built]:
    """Build `specs` in order (from `plan`) on the controller's engine, each tagged with its local name.

    `files` maps context names to files (from `gather_files`). Builds send only their own
    context; apt reaches Debian's mirror, through TOOLKIT_APT_PROXY when set (as the build's
    http_proxy, on the host's network so a loopback proxy is reachable; predefined proxy arguments
    do not invalidate the cache). Raises ImageError naming the image and the build's last lines.
    """
    import docker.errors

    root = root or checkout()
    proxy = apt_proxy()
    buildargs_common = {"http_proxy": proxy, "HTTP_PROXY": proxy} if proxy else {}
    local = {s.name: s.local for s in specs}
    results: list[Built] = []
    for spec in specs:
        extra = {name: files[name] for name in spec.files}
        buildargs = dict(spec.buildargs) | buildargs_common
        if spec.base is not None:
            buildargs["BASE_IMAGE"] = local[spec.base]
        started = time.monotonic()
        lines: list[str] = []
        image_id = ""
        # Steps that make a layer and did not come from the cache (ARG and FROM make none).
        uncached: list[str] = []
        context = _context(root, spec, extra)
        try:
            stream = client.api.build(fileobj=context, custom_context=True, tag=spec.local, buildargs=buildargs,
                                      labels=_labels(spec), rm=True, forcerm=True, pull=False, decode=True,
                                      network_mode="host" if proxy else None)
            for chunk in stream:
                if "error" in chunk:
                    lines.append(str(chunk["error"]).rstrip())
                    raise ImageError(f"building {spec.name} ({spec.local}) failed:\n" + "\n".join(lines[-25:]))
                text = str(chunk.get("stream", ""))
                if text.startswith("Step "):
                    step = text.partition(" : ")[2].split(" ", 1)[0].upper()
                    if step not in ("ARG", "FROM"):
                        uncached.append(step)
                elif "Using cache" in text and uncached:
                    uncached.pop()
                if "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = str(chunk["aux"].get("ID", image_id))
                for line in text.splitlines():
                    if line.strip():
                        lines.append(line.rstrip())
                        if verbose:
                            log(f"  {spec.name}: {line.rstrip()}")
        except docker.errors.DockerException as exc:
            raise ImageError(f"building {spec.name} ({spec.local}) failed: {exc}") from None
        finally:
            context.close()
        if not image_id:
            image_id = str(client.images.get(spec.local).id)
        seconds = time.monotonic() - started
        carries = ""
        if spec.app:
            carries = f"{spec.files[0]} sha256:{_sha256(files[spec.files[0]])}"
        elif not spec.internal:
            carries = _read_file(client, spec.local, _VERSION_FILE).strip()
        results.append(Built(spec, image_id, carries, seconds, not uncached))
        log(f"built {spec.local:<45} {seconds:6.1f} s{'  (cached)' if not uncached else ''}"
            + (f"  {carries}" if carries and not spec.app else ""))
    return results


def push(client: Any, built: Iterable[Built], registry: str, auth: Mapping[str, str] | None, log: Log) -> list[Pushed]:
    """Tag each image as REGISTRY/PATH:TAG and push it; return the pushed references with their digests.

    `auth` is the SDK's auth_config ({"username", "password"}), or None for the engine client's own
    credentials (`docker login`). Credentials travel in the request header only, never in a log or
    a message. A registry over plain HTTP must be in the engine's insecure-registries (loopback ones
    are). Raises ImageError naming the image and the registry.
    """
    import docker.errors

    pushed: list[Pushed] = []
    for item in built:
        spec = item.spec
        repository = f"{registry}/{spec.path}"
        target = f"{repository}:{spec.tag}"
        digest = ""
        try:
            client.api.tag(item.image_id, repository, spec.tag)
            for chunk in client.api.push(repository, tag=spec.tag, stream=True, decode=True,
                                         auth_config=dict(auth) if auth else None):
                if "error" in chunk:
                    raise ImageError(f"pushing {target} failed: {chunk['error']}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
        except docker.errors.DockerException as exc:
            raise ImageError(f"pushing {target} failed: {exc}") from None
        finally:
            try:  # the local REGISTRY/... tag is only the push's handle
                client.api.remove_image(target, noprune=True)
            except docker.errors.DockerException:
                pass
        if not digest.startswith("sha256:"):
            raise ImageError(f"pushing {target}: the registry returned no digest.")
        result = Pushed(item, registry, target, digest)
        pushed.append(result)
        log(f"pushed {result.reference}")
    return pushed


# ---------------------------------------------------------------------------------------- manifest

class _Dumper(yaml.SafeDumper):
    """Indents list items under their key (yamllint's default)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def manifest_path(registry: str, lab_registry: bool) -> Path:
    """Default manifest: the lab's (~/.local/share/toolkit/lab/images.yml, removed with the lab), else one per registry."""
    if lab_registry:
        return paths.lab_dir() / "images.yml"
    return paths.state_dir() / "images" / f"{registry.replace(':', '_').strip('[]')}.yml"


def write_manifest(path: Path, registry: str, pushed: Iterable[Pushed]) -> dict[str, Any]:
    """Record the pushed images in `path` (YAML), keeping earlier entries for the same registry.

    Entries are keyed by the pushed reference, so a second tag of an app sits beside the first.
    Returns the document written. The file is replaced in one step.
    """
    entries: dict[str, dict[str, Any]] = {}
    if path.is_file():
        try:
            old = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            old = None
        if isinstance(old, dict) and old.get("registry") == registry and isinstance(old.get("images"), list):
            entries = {e["pushed"]: e for e in old["images"] if isinstance(e, dict) and "pushed" in e}
    for item in pushed:
        spec = item.built.spec
        entries[item.pushed] = {
            "name": spec.name,
            "source": spec.source,
            "path": spec.ref,
            "pushed": item.pushed,
            "digest": item.digest,
            "reference": item.reference,
            "carries": item.built.carries,
            "image_id": item.built.image_id,
        }
    document = {"format": MANIFEST_FORMAT, "registry": registry,
                "images": sorted(entries.values(), key=lambda e: (e["name"], e["pushed"]))}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(f".{path.name}.partial")
    header = ("# Written by `toolkit lab images`: each image pushed to the registry, the reference it stands in\n"
              "# for (source), where it was pushed and its digest. Rerun the command rather than edit.\n")
    partial_path.write_text(header + yaml.dump(document, Dumper=_Dumper, sort_keys=False), encoding="utf-8")
    os.replace(partial_path, path)
    return document
