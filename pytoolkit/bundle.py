"""Offline Kubernetes bundles (docs/bundle.md): check one, publish its images and files to nodes.

A bundle is a directory for one Kubernetes version: `manifest.yml` (written last, so its presence
marks a complete bundle), `SHA256SUMS`, `files/` laid out as the official download sites lay them
out, and `images/` holding `docker save` archives of images named by their upstream references.
Besides Kubernetes itself it carries the cluster add-ons (`addons:` in the manifest): storage
(local-path-provisioner), metrics (metrics-server) and logs (VictoriaLogs with vlagent).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tarfile
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from . import yamlfile
from .errors import UsageError

# Format 2 added the cluster add-ons; a format-1 bundle lacks them and is refused (build it again).
FORMAT = 2
_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("format", "kubernetes_version", "arch", "versions", "addons", "files", "images")
_VERSION_KEYS = ("etcd", "coredns", "pause", "crictl", "cni_plugins", "flannel", "flannel_cni_plugin")
# Each add-on (named as the role that deploys it) and the images it needs, by their key in the manifest.
ADDONS: dict[str, tuple[str, ...]] = {
    "local_path_provisioner": ("provisioner", "helper"),
    "metrics_server": ("server",),
    "victorialogs": ("server", "agent"),
}
_ANY_ADDRESS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Addon:
    """One cluster add-on of a bundle: its upstream version, images and upstream manifests."""

    version: str
    images: dict[str, str]  # key (ADDONS) -> upstream reference, one of the bundle's images
    manifests: list[str]  # upstream manifests shipped in the bundle: paths under files/


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    arch: str
    versions: dict[str, str]
    files: list[tuple[str, str]]  # (path under files/, sha256)
    images: list[tuple[str, str]]  # (upstream reference, archive path under the bundle)
    addons: dict[str, Addon]


class _Digests:
    """sha256 of the bundle's files, each read once: the manifest and SHA256SUMS name the same big files."""

    def __init__(self) -> None:
        self._known: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._known:
            self._known[path] = _sha256(path)
        return self._known[path]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(partial(handle.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _inside(root: Path, base: Path, rel: Any, where: str) -> Path:
    """`base/rel`, refused unless it stays inside the bundle `root` (also through symbolic links)."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in Path(rel).parts:
        raise UsageError(f"{where}: path '{rel}' must be relative and stay inside the bundle.")
    target = base / rel
    if not target.resolve().is_relative_to(root):
        raise UsageError(f"{where}: path '{rel}' leads outside the bundle (symbolic link).")
    return target


def _mapping_list(data: dict[str, Any], key: str, fields: tuple[str, str], where: str) -> list[dict[str, Any]]:
    entries = data[key]
    if not isinstance(entries, list):
        raise UsageError(f"{where}: '{key}' must be a list of {{{', '.join(fields)}}} entries.")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) for f in fields):
            raise UsageError(f"{where}: {key}[{i}] must have the text keys {' and '.join(fields)}.")
    return entries


def load(path: Path, verify: bool = True) -> Bundle:
    """The bundle at `path`, validated; with `verify`, every file's checksum is checked too."""
    path = path.expanduser().resolve()
    manifest = path / "manifest.yml"
    if not path.is_dir():
        raise UsageError(f"bundle {path} is not a directory.")
    if not manifest.is_file():
        raise UsageError(f"{path} is not a complete bundle (no manifest.yml); build or copy it again.")
    data = yamlfile.load(manifest, "bundle manifest")
    where = f"bundle manifest {manifest}"
    if not isinstance(data, dict):
        raise UsageError(f"{where} must be a YAML mapping.")
    if data.get("format", FORMAT) != FORMAT:  # first: an older bundle also lacks newer keys
        older = " (a bundle without the cluster add-ons: build or fill it again)" if data["format"] == 1 else ""
        raise UsageError(f"{where}: format {data['format']!r} is not supported{older}; "
                         f"this toolkit reads format {FORMAT}.")
    for key in _REQUIRED:
        if key not in data:
            raise UsageError(f"{where}: required key '{key}' is missing.")
    version = data["kubernetes_version"]
    if not isinstance(version, str) or not _VERSION.match(version):
        raise UsageError(f"{where}: kubernetes_version '{version}' is not of the form vMAJOR.MINOR.PATCH.")
    if not isinstance(data["arch"], str) or not data["arch"]:
        raise UsageError(f"{where}: 'arch' must be an architecture name such as amd64.")
    versions = data["versions"]
    if not isinstance(versions, dict) or not all(isinstance(k, str) for k in versions):
        raise UsageError(f"{where}: 'versions' must map component names to version strings.")
    for key, value in versions.items():
        if not isinstance(value, str):
            raise UsageError(f"{where}: versions.{key} must be a string; quote it (\"{value}\").")
    missing = [k for k in _VERSION_KEYS if k not in versions]
    if missing:
        raise UsageError(f"{where}: versions.{missing[0]} is missing.")

    digests = _Digests()
    files: list[tuple[str, str]] = []
    for i, entry in enumerate(_mapping_list(data, "files", ("path", "sha256"), where)):
        target = _inside(path, path / "files", entry["path"], f"{where}: files[{i}]")
        if not target.is_file():
            raise UsageError(f"{where}: files[{i}] {entry['path']} is missing from the bundle.")
        if verify and digests(target) != entry["sha256"].lower():
            raise UsageError(f"bundle {path}: files/{entry['path']} does not match its sha256 in the manifest "
                             "(corrupted or replaced); build or copy the bundle again.")
        files.append((entry["path"], entry["sha256"]))
    images: list[tuple[str, str]] = []
    for i, entry in enumerate(_mapping_list(data, "images", ("ref", "archive"), where)):
        if "@" in entry["ref"] or ":" not in entry["ref"].rpartition("/")[2]:
            raise UsageError(f"{where}: images[{i}].ref '{entry['ref']}' must be NAME:TAG (as `docker save` names it).")
        archive = _inside(path, path, entry["archive"], f"{where}: images[{i}]")
        if not archive.is_file():
            raise UsageError(f"{where}: images[{i}] archive {entry['archive']} is missing from the bundle.")
        images.append((entry["ref"], entry["archive"]))
    addons = _addons(data["addons"], {p for p, _ in files}, {r for r, _ in images}, where)
    if verify:
        _verify_sums(path, digests)
        _verify_archives(path, images)
    return Bundle(path, version, data["arch"], dict(versions), files, images, addons)


def _addons(data: Any, files: set[str], images: set[str], where: str) -> dict[str, Addon]:
    """The manifest's `addons:` section, each add-on's images among `images:` and manifests among `files:`."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: 'addons' must map add-on names ({', '.join(ADDONS)}) to their entries.")
    addons: dict[str, Addon] = {}
    for name, keys in ADDONS.items():
        at = f"{where}: addons.{name}"
        entry = data.get(name)
        if not isinstance(entry, dict):
            raise UsageError(f"{at} is missing; the bundle was built without that add-on: build or fill it again.")
        version = entry.get("version")
        if not isinstance(version, str) or not version:
            raise UsageError(f"{at}.version must be the add-on's version as a string (for example v1.2.3).")
        refs = entry.get("images")
        if not isinstance(refs, dict):
            raise UsageError(f"{at}.images must map {', '.join(keys)} to image references.")
        for key in keys:
            ref = refs.get(key)
            if not isinstance(ref, str) or not ref:
                raise UsageError(f"{at}.images.{key} is missing.")
            if ref not in images:
                raise UsageError(f"{at}.images.{key} '{ref}' is not among the bundle's images: list it under "
                                 "'images' (and save it into the archive).")
        manifests = entry.get("manifests", [])
        if not isinstance(manifests, list) or not all(isinstance(m, str) for m in manifests):
            raise UsageError(f"{at}.manifests must be a list of paths under files/.")
        for rel in manifests:
            if rel not in files:
                raise UsageError(f"{at}.manifests: '{rel}' is not among the bundle's files.")
        addons[name] = Addon(version, {k: str(v) for k, v in refs.items()}, list(manifests))
    return addons


def _docker_name(ref: str) -> str:
    """`ref` as Docker names it in full: docker.io (and its library/) spelled out."""
    first, sep, rest = ref.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        first, rest = "docker.io", ref
    if first == "docker.io" and "/" not in rest:
        rest = f"library/{rest}"
    return f"{first}/{rest}"


def archive_refs(archive: Path) -> set[str]:
    """The image references a `docker save` archive holds (its manifest.json RepoTags), named in full.

    Raises UsageError when the file is not such an archive. Reads only the tar's headers and that
    one member, so a gigabyte archive takes well under a second.
    """
    try:
        with tarfile.open(archive, mode="r:") as tar:
            member = tar.getmember("manifest.json")
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError("manifest.json")
            entries = json.load(handle)
        return {_docker_name(tag) for entry in entries for tag in entry.get("RepoTags") or []}
    except (tarfile.TarError, KeyError, ValueError, AttributeError, TypeError):
        raise UsageError(f"{archive} is not a `docker save` archive (no readable manifest.json); "
                         "build or copy the bundle again.") from None


def _verify_archives(path: Path, images: list[tuple[str, str]]) -> None:
    """Every image the manifest lists is in the archive it names (as `docker save` tagged it)."""
    held: dict[str, set[str]] = {}
    for ref, archive in images:
        if archive not in held:
            held[archive] = archive_refs(path / archive)
        if _docker_name(ref) not in held[archive]:
            raise UsageError(f"bundle {path}: image {ref} is listed in the manifest but not in {archive}; "
                             "build or copy the bundle again.")


def _verify_sums(path: Path, digests: _Digests) -> None:
    sums = path / "SHA256SUMS"
    if not sums.is_file():
        raise UsageError(f"bundle {path}: SHA256SUMS is missing; build or copy the bundle again.")
    for number, line in enumerate(sums.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        # sha256sum writes "<digest>  <path>", or "<digest> *<path>" in binary mode.
        digest, _, rel = line.partition(" ")
        rel = rel[1:] if rel[:1] in (" ", "*") else rel
        if not _DIGEST.match(digest.lower()) or not rel:
            raise UsageError(f"bundle {path}: SHA256SUMS line {number} is not '<sha256>  <path>'.")
        target = _inside(path, path, rel, f"bundle {path}: SHA256SUMS line {number}")
        if not target.is_file():
            raise UsageError(f"bundle {path}: {rel} (listed in SHA256SUMS) is missing; build or copy the bundle again.")
        if digests(target) != digest.lower():
            raise UsageError(f"bundle {path}: {rel} does not match SHA256SUMS; build or copy the bundle again.")


def mirror_path(ref: str) -> str:
    """Where an upstream image lives in a mirror registry: the reference without its registry host.

    Docker's rule: the first component names a registry when it holds '.' or ':' or is 'localhost'.
    """
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return rest
    return ref


def publish_images(bundle: Bundle, registry: str, client: Any, auth: dict[str, str] | None = None) -> list[str]:
    """Load the bundle's images into the local engine and push them to `registry` under mirror paths.

    `auth` is the Docker SDK's auth_config ({"username", "password"}) for a registry that asks for
    credentials (the lab's), or None for the engine's own. A registry over plain HTTP must be in the
    engine's insecure-registries; loopback ones (127.0.0.1:15000, the lab's) are treated as insecure
    by Docker already.
    """
    import docker.errors

    for archive in sorted({a for _, a in bundle.images}):
        try:
            with (bundle.path / archive).open("rb") as handle:
                client.images.load(handle)
        except docker.errors.DockerException as exc:
            raise UsageError(f"bundle {bundle.path}: the engine could not load {archive} ({exc}); "
                             "is it a `docker save` archive? Build or copy the bundle again.") from None
    pushed = []
    for ref in dict.fromkeys(ref for ref, _ in bundle.images):
        target = f"{registry}/{mirror_path(ref)}"
        repository, _, tag = target.rpartition(":")
        try:
            client.images.get(ref).tag(repository, tag)
            for line in client.images.push(repository, tag, stream=True, decode=True, auth_config=auth):
                if "error" in line:
                    raise UsageError(f"pushing {ref} to {registry} failed: {line['error']}. A registry served over "
                                     "plain HTTP must be in the Docker engine's insecure-registries (loopback is).")
        except docker.errors.ImageNotFound:
            raise UsageError(f"bundle {bundle.path}: image {ref} is listed in the manifest but not in its "
                             "archive; build or copy the bundle again.") from None
        except docker.errors.DockerException as exc:
            raise UsageError(f"pushing {ref} to {registry} failed: {exc}.") from None
        pushed.append(target)
    return pushed


def publish_files(bundle: Bundle, dest: Path) -> None:
    """Make `dest` mirror bundle/files (with the .sha256 sidecars): hard links on one filesystem, else copies.

    Idempotent: a file already there (the same inode, or a copy of the same size, time and content)
    is left alone; each new one appears under its name in one step, never half-written.
    """
    source = bundle.path / "files"
    for root, _dirs, names in os.walk(source):
        for name in names:
            src = Path(root) / name
            target = dest / src.relative_to(source)
            if target.exists() and _same_file(src, target):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial_target = target.with_name(f".{target.name}.partial")
            partial_target.unlink(missing_ok=True)
            try:
                os.link(src, partial_target)
            except OSError:  # another filesystem (or one without hard links): copy
                shutil.copy2(src, partial_target)
            os.replace(partial_target, target)


def _same_file(src: Path, target: Path) -> bool:
    a, b = src.stat(), target.stat()
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
        return True
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns and _sha256(src) == _sha256(target)


def registry_host(ref: str) -> str:
    """The registry an image reference names (docker.io when it names none, as Docker reads it)."""
    return _docker_name(ref).partition("/")[0]


def role_vars(bundle: Bundle, files_url: str, registry: str) -> dict[str, Any]:
    """The role variables that point kube_packages, containerd, kubeadm, cni and the add-on roles at a served bundle.

    `files_url` is where bundle/files is served; `registry` (HOST:PORT) holds the images under their
    mirror paths, so containerd gets it as a mirror of every registry the bundle's images name.
    The add-on roles get versions and full upstream image references, which nodes pull through
    that mirror.
    """
    v = bundle.versions
    a = bundle.addons
    files_url = files_url.rstrip("/")
    hosts = dict.fromkeys(["registry.k8s.io", "ghcr.io", *sorted({registry_host(ref) for ref, _ in bundle.images})])
    return {
        "kube_packages_version": bundle.version,
        "kube_packages_method": "binary",
        "kube_packages_binary_base_url": f"{files_url}/dl.k8s.io",
        "kube_packages_crictl_version": v["crictl"],
        "kube_packages_crictl_base_url": f"{files_url}/github.com/kubernetes-sigs/cri-tools/releases/download",
        "kube_packages_cni_plugins_version": v["cni_plugins"],
        "kube_packages_cni_plugins_base_url": f"{files_url}/github.com/containernetworking/plugins/releases/download",
        "containerd_registry_mirrors": {host: [f"http://{registry}"] for host in hosts},
        "containerd_sandbox_image": f"registry.k8s.io/pause:{v['pause']}",
        "kubeadm_control_plane_etcd_image_tag": v["etcd"],
        "kubeadm_control_plane_coredns_image_tag": v["coredns"],
        "cni_flannel_version": v["flannel"],
        "cni_flannel_cni_plugin_version": v["flannel_cni_plugin"],
        "local_path_provisioner_version": a["local_path_provisioner"].version,
        "local_path_provisioner_image": a["local_path_provisioner"].images["provisioner"],
        "local_path_provisioner_helper_image": a["local_path_provisioner"].images["helper"],
        "metrics_server_version": a["metrics_server"].version,
        "metrics_server_image": a["metrics_server"].images["server"],
        "victorialogs_version": a["victorialogs"].version,
        "victorialogs_image": a["victorialogs"].images["server"],
        "victorialogs_agent_image": a["victorialogs"].images["agent"],
    }


def summary(bundle: Bundle) -> dict[str, Any]:
    """What `toolkit bundle verify --output json` prints: versions, counts, images and the add-ons."""
    return {"path": str(bundle.path), "kubernetes_version": bundle.version, "arch": bundle.arch,
            "files": len(bundle.files), "images": [ref for ref, _ in bundle.images], "versions": bundle.versions,
            "addons": {name: {"version": addon.version, "images": addon.images, "manifests": addon.manifests}
                       for name, addon in bundle.addons.items()}}


def describe(bundle: Bundle) -> str:
    """What `toolkit bundle verify` prints: one line for the bundle, one for its add-ons' versions."""
    addons = ", ".join(f"{name} {addon.version}" for name, addon in bundle.addons.items())
    return (f"bundle {bundle.path}: Kubernetes {bundle.version} ({bundle.arch}), {len(bundle.files)} files, "
            f"{len(bundle.images)} images; checksums match, every image is in its archive\n"
            f"add-ons: {addons}")


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as yamllint's default (and this repository) wants."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def vars_document(bundle: Bundle, variables: dict[str, Any], note: str = "") -> str:
    """The role variables as a group_vars YAML document, headed by where they come from (and `note`)."""
    header = (f"# Generated by `toolkit bundle serve` for Kubernetes {bundle.version} ({bundle.path}):\n"
              "# points kube_packages, containerd, kubeadm, cni and the add-on roles at the served bundle.\n"
              "# Rerun it rather than edit.\n")
    return f"---\n{header}{note}" + yaml.dump(variables, Dumper=_Dumper, sort_keys=False)


def parse_listen(listen: str) -> tuple[str, int]:
    """--listen ADDRESS:PORT as (address, port); an empty address means every address."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen '{listen}' is not ADDRESS:PORT (for example 0.0.0.0:8080).")
    return host.strip("[]") or "0.0.0.0", int(port)


def files_url(listen: str) -> str:
    """The URL the files are served under, as --listen names it (0.0.0.0 stands for this server's address)."""
    host, port = parse_listen(listen)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def is_any_address(listen: str) -> bool:
    return parse_listen(listen)[0] in _ANY_ADDRESS


def file_server(bundle: Bundle, listen: str) -> ThreadingHTTPServer:
    """An HTTP server for bundle/files, bound to `listen` (so a busy port fails before anything is pushed)."""
    host, port = parse_listen(listen)

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    try:
        return Server((host, port), partial(Handler, directory=str(bundle.path / "files")))
    except OSError as exc:
        raise UsageError(f"cannot serve on --listen {listen}: {exc.strerror or exc}.") from None


def serve_forever(server: ThreadingHTTPServer) -> None:
    """Serve in the foreground until Ctrl-C."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
