"""Offline bundles: the manifest and checksums are checked before anything is pushed or served."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pytoolkit import bundle
from pytoolkit.cli import app
from pytoolkit.errors import UsageError

from conftest import BIN, ROOT

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
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 30) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            # A generous timeout: under load a request may wait in the listen backlog until serving starts.
            with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - loopback test server
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


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
    code, out = cli("bundle", "serve", str(make_bundle(tmp_path / "b")), "--lab")
    assert code == 2 and "the lab is not up" in out, out
    assert not (toolkit_home / "lab").exists(), "files or variables were published to a lab that is down"


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
    assert set(variables) == {
        "kube_packages_version", "kube_packages_method", "kube_packages_binary_base_url",
        "kube_packages_crictl_version", "kube_packages_crictl_base_url", "kube_packages_cni_plugins_version",
        "kube_packages_cni_plugins_base_url", "containerd_registry_mirrors", "containerd_sandbox_image",
        "kubeadm_control_plane_etcd_image_tag", "kubeadm_control_plane_coredns_image_tag", "cni_flannel_version",
        "cni_flannel_cni_plugin_version"}
    assert variables["kube_packages_version"] == "v1.35.4"
    assert variables["kube_packages_method"] == "binary"
    assert variables["kube_packages_binary_base_url"] == "http://files:8080/bundles/k8s-v1.35.4/dl.k8s.io"
    assert variables["kube_packages_crictl_base_url"] == (
        "http://files:8080/bundles/k8s-v1.35.4/github.com/kubernetes-sigs/cri-tools/releases/download")
    assert variables["kube_packages_cni_plugins_base_url"] == (
        "http://files:8080/bundles/k8s-v1.35.4/github.com/containernetworking/plugins/releases/download")
    assert variables["containerd_registry_mirrors"] == {"registry.k8s.io": ["http://registry:5000"],
                                                        "ghcr.io": ["http://registry:5000"]}
    assert variables["kubeadm_control_plane_etcd_image_tag"] == "3.6.6-0"
    assert variables["kubeadm_control_plane_coredns_image_tag"] == "v1.13.1"
    assert variables["cni_flannel_version"] == "v0.28.4"
    assert variables["containerd_sandbox_image"] == "registry.k8s.io/pause:3.10.1"
    assert variables["cni_flannel_cni_plugin_version"] == "v0.9.1"


def test_vars_document_is_lint_clean_yaml(tmp_path: Path) -> None:
    found = bundle.load(make_bundle(tmp_path / "b"))
    variables = bundle.role_vars(found, "http://10.0.0.5:8080", "10.0.0.5:5000")
    document = tmp_path / "bundle.yml"
    document.write_text(bundle.vars_document(found, variables, "# a note\n"))
    assert yaml.safe_load(document.read_text()) == variables
    assert "Generated by `toolkit bundle serve`" in document.read_text()
    lint = subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(ROOT / ".yamllint"), str(document)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


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


def test_bundle_commands_have_an_example() -> None:
    for command in ("verify", "serve"):
        code, out = cli("bundle", command, "--help")
        assert code == 0 and "Example: toolkit bundle" in out, out


def test_verify_json_summary(tmp_path: Path) -> None:
    code, out = cli("bundle", "verify", str(make_bundle(tmp_path)), "--output", "json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["kubernetes_version"] == "v1.35.4" and summary["files"] == 2
    assert summary["images"] == ["registry.k8s.io/pause:3.10.1"]
    code, out = cli("bundle", "verify", str(tmp_path), "--output", "xml")
    assert code == 2 and "--output 'xml'" in out


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("images/images.tar\n", "../images.tar\n", "must be relative and stay inside the bundle"),
        ("images/images.tar\n", "/etc/passwd\n", "must be relative and stay inside the bundle"),
        ("  images/images.tar\n", "\n", "SHA256SUMS line 3 is not '<sha256>  <path>'"),
    ],
)
def test_verify_checks_sha256sums_paths(tmp_path: Path, old: str, new: str, expect: str) -> None:
    root = make_bundle(tmp_path)
    sums = root / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(old, new))
    code, out = cli("bundle", "verify", str(root))
    assert code == 2 and expect in out and "SHA256SUMS" in out, out


def test_verify_refuses_a_symbolic_link_out_of_the_bundle(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "b")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "kubeadm").write_bytes(b"kubeadm-binary")
    kubeadm = root / "files/dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubeadm"
    kubeadm.unlink()
    kubeadm.symlink_to(tmp_path / "elsewhere" / "kubeadm")
    code, out = cli("bundle", "verify", str(root))
    assert code == 2 and "files[0]" in out and "leads outside the bundle" in out, out


def test_verify_wants_quoted_versions(tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    manifest = root / "manifest.yml"
    manifest.write_text(manifest.read_text().replace('pause: "3.10.1"', "pause: 3.10"))
    code, out = cli("bundle", "verify", str(root))
    assert code == 2 and "versions.pause must be a string" in out and "manifest.yml" in out, out


def test_serve_refuses_a_bad_listen_address_before_pushing(tmp_path: Path, toolkit_home: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    code, out = cli("bundle", "serve", str(make_bundle(tmp_path / "b")), "--registry", "127.0.0.1:9",
                    "--listen", "everywhere")
    assert code == 2 and "--listen 'everywhere' is not ADDRESS:PORT" in out, out


def test_serve_without_a_docker_engine(tmp_path: Path, toolkit_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    code, out = cli("bundle", "serve", str(make_bundle(tmp_path / "b")), "--registry", "127.0.0.1:9",
                    "--listen", f"127.0.0.1:{free_port()}")
    assert code == 2 and "needs a running Docker engine" in out and "dockerd" in out, out


@pytest.mark.parametrize(
    ("listen", "url", "anywhere"),
    [("0.0.0.0:8080", "http://0.0.0.0:8080", True), (":8081", "http://0.0.0.0:8081", True),
     ("10.0.0.5:80", "http://10.0.0.5:80", False), ("[::1]:8080", "http://[::1]:8080", False)],
)
def test_files_url_follows_listen(listen: str, url: str, anywhere: bool) -> None:
    assert bundle.files_url(listen) == url
    assert bundle.is_any_address(listen) is anywhere


def test_publish_files_copies_a_changed_file_again(tmp_path: Path) -> None:
    found = bundle.load(make_bundle(tmp_path / "b"))
    dest = tmp_path / "served"
    stale = dest / "dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubelet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an older kubelet")
    bundle.publish_files(found, dest)
    assert stale.read_bytes() == b"kubelet-binary"
    assert not list(dest.rglob(".*.partial"))


# --- with a Docker engine: a real image pushed into a real (throwaway) registry, files served over HTTP

REGISTRY_IMAGE = "toolkit-lab/registry:trixie"


@pytest.fixture(scope="module")
def docker_client(require_docker: None) -> Any:
    import docker

    client = docker.from_env()
    if not client.images.list(name=REGISTRY_IMAGE):
        pytest.skip(f"the local image {REGISTRY_IMAGE} is missing (the lab builds it: toolkit lab up)")
    return client


# As the lab configures it (roles/lab/templates/registry-config.yml.j2): the image's own config wants htpasswd auth.
REGISTRY_CONFIG = """version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: /var/lib/docker-registry}}
http: {addr: ":5000"}
"""


@pytest.fixture(scope="module")
def registry(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway registry on a random loopback port (Docker pushes to loopback registries over HTTP)."""
    config = tmp_path_factory.mktemp("registry") / "config.yml"
    config.write_text(REGISTRY_CONFIG)
    container = docker_client.containers.run(REGISTRY_IMAGE, detach=True, remove=True,
                                             name=f"toolkit-test-registry-{uuid.uuid4().hex[:8]}",
                                             ports={"5000/tcp": ("127.0.0.1", None)},
                                             volumes={str(config): {"bind": "/etc/docker/registry/config.yml",
                                                                    "mode": "ro"}})
    try:
        container.reload()
        address = f"127.0.0.1:{container.ports['5000/tcp'][0]['HostPort']}"
        wait_for(f"http://{address}/v2/")
        yield address
    finally:
        container.stop(timeout=2)


@pytest.fixture
def image_bundle(tmp_path: Path, docker_client: Any) -> Iterator[tuple[Path, str]]:
    """A bundle whose images/images.tar holds a real, tiny FROM-scratch image under an upstream-style name."""
    ref = f"registry.k8s.io/toolkit-test/tiny:{uuid.uuid4().hex[:12]}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY hello /hello\n"), ("hello", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = docker_client.images.build(fileobj=context, custom_context=True, tag=ref, rm=True)
    root = make_bundle(tmp_path / "b")
    with (root / "images" / "images.tar").open("wb") as handle:
        for chunk in image.save(named=True):
            handle.write(chunk)
    digest = bundle._sha256(root / "images" / "images.tar")
    sums = root / "SHA256SUMS"
    sums.write_text("".join(f"{digest}  images/images.tar\n" if line.endswith("images/images.tar") else f"{line}\n"
                            for line in sums.read_text().splitlines()))
    manifest = root / "manifest.yml"
    manifest.write_text(manifest.read_text().replace("registry.k8s.io/pause:3.10.1", ref))
    docker_client.images.remove(image.id, force=True)  # publish_images must load it from the archive
    try:
        yield root, ref
    finally:
        for leftover in docker_client.images.list(filters={"reference": "*/toolkit-test/tiny"}):
            docker_client.images.remove(leftover.id, force=True)


def test_publish_images_pushes_under_the_mirror_path(image_bundle: tuple[Path, str], registry: str,
                                                     docker_client: Any) -> None:
    root, ref = image_bundle
    found = bundle.load(root)
    pushed = bundle.publish_images(found, registry, docker_client)
    tag = ref.rpartition(":")[2]
    assert pushed == [f"{registry}/toolkit-test/tiny:{tag}"]
    tags = json.loads(wait_for(f"http://{registry}/v2/toolkit-test/tiny/tags/list"))
    assert tag in tags["tags"]


def test_publish_images_names_the_ref_when_the_registry_refuses(image_bundle: tuple[Path, str],
                                                                docker_client: Any) -> None:
    root, ref = image_bundle
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(UsageError, match=f"pushing {ref} to {nobody} failed"):
        bundle.publish_images(bundle.load(root), nobody, docker_client)


def test_serve_pushes_prints_the_variables_and_serves_the_files(image_bundle: tuple[Path, str], registry: str,
                                                                tmp_path: Path) -> None:
    root, ref = image_bundle
    port, vars_file = free_port(), tmp_path / "bundle-vars.yml"
    exe = str(BIN / "toolkit")
    serve = subprocess.Popen([exe, "bundle", "serve", str(root), "--registry", registry,
                              "--listen", f"127.0.0.1:{port}", "--vars-file", str(vars_file)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "TOOLKIT_HOME": str(tmp_path / "home")},
                             # pytest-xdist workers ignore SIGINT and children inherit that: restore it.
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        served = wait_for(f"http://127.0.0.1:{port}/dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubeadm", 120)
        assert served == b"kubeadm-binary"
        variables = yaml.safe_load(vars_file.read_text())
        assert variables["kube_packages_binary_base_url"] == f"http://127.0.0.1:{port}/dl.k8s.io"
        assert variables["containerd_registry_mirrors"]["ghcr.io"] == [f"http://{registry}"]
        tags = json.loads(wait_for(f"http://{registry}/v2/toolkit-test/tiny/tags/list"))
        assert ref.rpartition(":")[2] in tags["tags"]
    finally:
        serve.send_signal(signal.SIGINT)
        out, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err
    assert yaml.safe_load(out) == variables, out
    assert "GET /dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubeadm" in err
