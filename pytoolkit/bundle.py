"""Offline Kubernetes bundles (docs/bundle.md): check one, publish its images and files to nodes.

A bundle is a directory for one Kubernetes version: `manifest.yml` (written last, so its presence
marks a complete bundle), `SHA256SUMS`, `files/` laid out as the official download sites lay them
out, and `images/` holding `docker save` archives of images named by their upstream references.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import yamlfile
from .errors import UsageError

FORMAT = 1
_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_REQUIRED = ("format", "kubernetes_version", "arch", "versions", "files", "images")
_VERSION_KEYS = ("etcd", "coredns", "pause", "crictl", "cni_plugins", "flannel", "flannel_cni_plugin")


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    arch: str
    versions: dict[str, str]
    files: list[tuple[str, str]]  # (path under files/, sha256)
    images: list[tuple[str, str]]  # (upstream reference, archive path under the bundle)


def _inside(root: Path, rel: Any, where: str) -> Path:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in Path(rel).parts:
        raise UsageError(f"{where}: path '{rel}' must be relative and stay inside the bundle.")
    return root / rel


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(partial(handle.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load(path: Path, verify: bool = True) -> Bundle:
    """The bundle at `path`, validated; with `verify`, every file's checksum is checked too."""
    path = path.expanduser().resolve()
    manifest = path / "manifest.yml"
    if not manifest.is_file():
        raise UsageError(f"{path} is not a complete bundle (no manifest.yml); build or copy it again.")
    data = yamlfile.load(manifest, "bundle manifest")
    where = f"bundle manifest {manifest}"
    if not isinstance(data, dict):
        raise UsageError(f"{where} must be a YAML mapping.")
    for key in _REQUIRED:
        if key not in data:
            raise UsageError(f"{where}: required key '{key}' is missing.")
    if data["format"] != FORMAT:
        raise UsageError(f"{where}: format {data['format']!r} is not supported (this toolkit reads format {FORMAT}).")
    version = data["kubernetes_version"]
    if not isinstance(version, str) or not _VERSION.match(version):
        raise UsageError(f"{where}: kubernetes_version '{version}' is not of the form vMAJOR.MINOR.PATCH.")
    versions = data["versions"]
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise UsageError(f"{where}: 'versions' must map component names to version strings.")
    missing = [k for k in _VERSION_KEYS if k not in versions]
    if missing:
        raise UsageError(f"{where}: versions.{missing[0]} is missing.")
    files: list[tuple[str, str]] = []
    for i, entry in enumerate(data["files"] or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise UsageError(f"{where}: files[{i}] must have 'path' and 'sha256'.")
        target = _inside(path / "files", entry.get("path"), f"{where}: files[{i}]")
        if not target.is_file():
            raise UsageError(f"{where}: files[{i}] {entry['path']} is missing from the bundle.")
        if verify and _sha256(target) != entry["sha256"]:
            raise UsageError(f"bundle {path}: files/{entry['path']} does not match its sha256 in the manifest "
                             "(corrupted or replaced); build or copy the bundle again.")
        files.append((entry["path"], entry["sha256"]))
    images: list[tuple[str, str]] = []
    for i, entry in enumerate(data["images"] or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("ref"), str):
            raise UsageError(f"{where}: images[{i}] must have 'ref' and 'archive'.")
        archive = _inside(path, entry.get("archive"), f"{where}: images[{i}]")
        if not archive.is_file():
            raise UsageError(f"{where}: images[{i}] archive {entry['archive']} is missing from the bundle.")
        images.append((entry["ref"], entry["archive"]))
    if verify:
        _verify_sums(path)
    return Bundle(path, version, str(data["arch"]), dict(versions), files, images)


def _verify_sums(path: Path) -> None:
    sums = path / "SHA256SUMS"
    if not sums.is_file():
        raise UsageError(f"bundle {path}: SHA256SUMS is missing.")
    for line in sums.read_text().splitlines():
        digest, _, rel = line.partition("  ")
        target = _inside(path, rel, f"bundle {path}: SHA256SUMS")
        if not target.is_file() or _sha256(target) != digest:
            raise UsageError(f"bundle {path}: {rel} does not match SHA256SUMS; build or copy the bundle again.")


def mirror_path(ref: str) -> str:
    """Where an upstream image lives in a mirror registry: the reference without its registry host."""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return rest
    return ref


def publish_images(bundle: Bundle, registry: str, client: Any) -> list[str]:
    """Load the bundle's images into the local engine and push them to `registry` under mirror paths."""
    for archive in sorted({a for _, a in bundle.images}):
        with (bundle.path / archive).open("rb") as handle:
            client.images.load(handle)
    pushed = []
    for ref, _ in bundle.images:
        target = f"{registry}/{mirror_path(ref)}"
        repository, _, tag = target.rpartition(":")
        client.images.get(ref).tag(repository, tag)
        for line in client.images.push(repository, tag, stream=True, decode=True):
            if "error" in line:
                raise UsageError(f"pushing {ref} to {registry} failed: {line['error']}. A registry served over "
                                 "plain HTTP must be in the Docker engine's insecure-registries (loopback is).")
        pushed.append(target)
    return pushed


def publish_files(bundle: Bundle, dest: Path) -> None:
    """Mirror bundle/files into `dest`: hard links when on one filesystem, copies otherwise."""
    source = bundle.path / "files"
    for root, _dirs, names in os.walk(source):
        for name in names:
            src = Path(root) / name
            target = dest / src.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                if target.stat().st_ino == src.stat().st_ino or _sha256(target) == _sha256(src):
                    continue
                target.unlink()
            try:
                os.link(src, target)
            except OSError:
                shutil.copy2(src, target)


def role_vars(bundle: Bundle, files_url: str, registry: str) -> dict[str, Any]:
    """The role variables that point kube_packages, containerd, kubeadm and cni at a served bundle."""
    v = bundle.versions
    return {
        "kube_packages_version": bundle.version,
        "kube_packages_method": "binary",
        "kube_packages_binary_base_url": f"{files_url}/dl.k8s.io",
        "kube_packages_crictl_version": v["crictl"],
        "kube_packages_crictl_base_url": f"{files_url}/github.com/kubernetes-sigs/cri-tools/releases/download",
        "kube_packages_cni_plugins_version": v["cni_plugins"],
        "kube_packages_cni_plugins_base_url": f"{files_url}/github.com/containernetworking/plugins/releases/download",
        "containerd_registry_mirrors": {"registry.k8s.io": [f"http://{registry}"], "ghcr.io": [f"http://{registry}"]},
        "containerd_sandbox_image": f"registry.k8s.io/pause:{v['pause']}",
        "kubeadm_control_plane_etcd_image_tag": v["etcd"],
        "kubeadm_control_plane_coredns_image_tag": v["coredns"],
        "cni_flannel_version": v["flannel"],
        "cni_flannel_cni_plugin_version": v["flannel_cni_plugin"],
    }


def serve_files(bundle: Bundle, listen: str) -> None:
    """Serve bundle/files over HTTP in the foreground until interrupted."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--listen '{listen}' is not ADDRESS:PORT.")

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), partial(Handler, directory=str(bundle.path / "files")))
    print(f"serving {bundle.path / 'files'} on http://{listen}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
