"""Offline bundles: the manifest and checksums are checked before anything is pushed or served."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pytoolkit import bundle
from pytoolkit.cli import app
from pytoolkit.errors import UsageError

VERSIONS = {"etcd": "3.6.6-0", "coredns": "v1.13.1", "pause": "3.10.1", "crictl": "v1.34.0",
            "cni_plugins": "v1.9.0", "flannel": "v0.28.4", "flannel_cni_plugin": "v0.9.1"}


def make_bundle(root: Path, version: str = "v1.35.4") -> Path:
    """A tiny but well-formed bundle: two files, one (fake) image archive, sums and manifest."""
    files = {f"dl.k8s.io/release/{version}/bin/linux/amd64/kubeadm": b"kubeadm-binary",
             f"dl.k8s.io/release/{version}/bin/linux/amd64/kubelet": b"kubelet-binary"}
    sums, entries = [], []
    for rel, content in files.items():
        path = root / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        (path.parent / f"{path.name}.sha256").write_text(digest)
        sums.append(f"{digest}  files/{rel}")
        entries.append(f"  - path: {rel}\n    sha256: {digest}\n")
    (root / "images").mkdir()
    (root / "images" / "images.tar").write_bytes(b"not really a tar")
    sums.append(f"{hashlib.sha256(b'not really a tar').hexdigest()}  images/images.tar")
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    versions = "".join(f"  {k}: \"{v}\"\n" for k, v in VERSIONS.items())
    (root / "manifest.yml").write_text(
        f"format: 1\nkubernetes_version: {version}\narch: amd64\nsource: test\nversions:\n{versions}"
        f"files:\n{''.join(entries)}images:\n  - ref: registry.k8s.io/pause:3.10.1\n    archive: images/images.tar\n")
    return root


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_verify_accepts_a_good_bundle(tmp_path: Path) -> None:
    code, out = cli("bundle", "verify", str(make_bundle(tmp_path)))
    assert code == 0, out
    assert "Kubernetes v1.35.4" in out and "2 files, 1 images" in out


def test_verify_refuses_an_incomplete_bundle(tmp_path: Path) -> None:
    code, out = cli("bundle", "verify", str(tmp_path))
    assert code == 2 and "not a complete bundle (no manifest.yml)" in out


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("format: 1", "format: 7", "format 7 is not supported"),
        ("kubernetes_version: v1.35.4", "kubernetes_version: latest", "kubernetes_version 'latest' is not of the form"),
        ("  etcd: \"3.6.6-0\"\n", "", "versions.etcd is missing"),
        ("path: dl.k8s.io", "path: ../../etc/dl.k8s.io", "must be relative and stay inside the bundle"),
        ("arch: amd64\n", "", "required key 'arch' is missing"),
    ],
)
def test_verify_names_what_is_wrong_in_the_manifest(tmp_path: Path, old: str, new: str, expect: str) -> None:
    root = make_bundle(tmp_path)
    manifest = root / "manifest.yml"
    manifest.write_text(manifest.read_text().replace(old, new, 1))
    code, out = cli("bundle", "verify", str(root))
    assert code == 2 and expect in out, out


def test_verify_names_a_file_that_does_not_match(tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    (root / "files/dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubelet").write_bytes(b"tampered")
    code, out = cli("bundle", "verify", str(root))
    assert code == 2 and "bin/linux/amd64/kubelet does not match its sha256" in out


def test_serve_needs_a_registry_or_the_lab(tmp_path: Path, toolkit_home: Path) -> None:
    code, out = cli("bundle", "serve", str(make_bundle(tmp_path)))
    assert code == 2 and "--registry HOST:PORT is needed" in out


def test_serve_to_a_lab_that_is_down_pushes_nothing(tmp_path: Path, toolkit_home: Path) -> None:
    code, out = cli("bundle", "serve", str(make_bundle(tmp_path)), "--lab")
    assert code == 2 and "the lab is not up" in out


def test_serve_refuses_a_bad_bundle_before_anything(tmp_path: Path, toolkit_home: Path) -> None:
    root = make_bundle(tmp_path)
    (root / "images" / "images.tar").write_bytes(b"changed")
    code, out = cli("bundle", "serve", str(root), "--registry", "127.0.0.1:9")
    assert code == 2 and "images/images.tar does not match SHA256SUMS" in out


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        ("registry.k8s.io/coredns/coredns:v1.13.1", "coredns/coredns:v1.13.1"),
        ("ghcr.io/flannel-io/flannel:v0.28.4", "flannel-io/flannel:v0.28.4"),
        ("localhost/x:1", "x:1"),
        ("127.0.0.1:5000/x:1", "x:1"),
        ("library/busybox:1", "library/busybox:1"),
    ],
)
def test_mirror_path_drops_only_the_registry_host(ref: str, path: str) -> None:
    assert bundle.mirror_path(ref) == path


def test_role_vars_point_the_roles_at_the_served_bundle(tmp_path: Path) -> None:
    found = bundle.load(make_bundle(tmp_path))
    variables = bundle.role_vars(found, "http://files:8080/bundles/k8s-v1.35.4", "registry:5000")
    assert variables["kube_packages_method"] == "binary"
    assert variables["kube_packages_binary_base_url"] == "http://files:8080/bundles/k8s-v1.35.4/dl.k8s.io"
    assert variables["containerd_registry_mirrors"]["registry.k8s.io"] == ["http://registry:5000"]
    assert variables["containerd_sandbox_image"] == "registry.k8s.io/pause:3.10.1"
    assert variables["cni_flannel_cni_plugin_version"] == "v0.9.1"


def test_publish_files_links_and_is_idempotent(tmp_path: Path) -> None:
    found = bundle.load(make_bundle(tmp_path / "b"))
    dest = tmp_path / "served"
    bundle.publish_files(found, dest)
    bundle.publish_files(found, dest)
    served = dest / "dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubeadm"
    original = found.path / "files/dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubeadm"
    assert served.read_bytes() == b"kubeadm-binary"
    assert served.stat().st_ino == original.stat().st_ino
    assert (served.parent / "kubeadm.sha256").exists()


def test_load_refuses_a_missing_image_archive(tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    (root / "images" / "images.tar").unlink()
    with pytest.raises(UsageError, match="archive images/images.tar is missing"):
        bundle.load(root)
