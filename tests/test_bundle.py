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
LPP_MANIFEST = "raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.30/deploy/local-path-storage.yaml"
MS_MANIFEST = "github.com/kubernetes-sigs/metrics-server/releases/download/v0.9.0/components.yaml"
# The images a lab bundle names, as lab/build-k8s-bundle writes them (pause stands for Kubernetes' own).
IMAGES = {"pause": "registry.k8s.io/pause:3.10.1",
          "local_path_provisioner.provisioner": "docker.io/rancher/local-path-provisioner:v0.0.30",
          "local_path_provisioner.helper": "toolkit.local/toolkit/local-path-helper:v1",
          "metrics_server.server": "registry.k8s.io/metrics-server/metrics-server:v0.9.0",
          "victorialogs.server": "docker.io/victoriametrics/victoria-logs:v1.52.2",
          "victorialogs.agent": "docker.io/victoriametrics/vlagent:v1.52.2"}
ADDONS = """addons:
  local_path_provisioner:
    version: v0.0.30
    images:
      provisioner: {local_path_provisioner.provisioner}
      helper: {local_path_provisioner.helper}
    manifests:
      - {lpp}
  metrics_server:
    version: v0.9.0
    images:
      server: {metrics_server.server}
    manifests:
      - {ms}
  victorialogs:
    version: v1.52.2
    images:
      server: {victorialogs.server}
      agent: {victorialogs.agent}
    manifests: []
"""


def docker_save_stub(refs: list[str]) -> bytes:
    """A tar shaped like `docker save` output as far as the bundle reads it: manifest.json's RepoTags.

    Tags are written the way Docker writes them: docker.io/ and library/ left out.
    """
    tags = [ref.removeprefix("docker.io/").removeprefix("library/") for ref in refs]
    body = json.dumps([{"Config": "config.json", "RepoTags": tags, "Layers": []}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def make_bundle(root: Path, version: str = "v1.35.4", ref: str | None = None) -> Path:
    """A tiny but well-formed bundle: four files, a small image archive, sums and manifest.

    With `ref`, every image the manifest names (Kubernetes' and the add-ons') is that one reference.
    """
    files = {f"dl.k8s.io/release/{version}/bin/linux/amd64/kubeadm": b"kubeadm-binary",
             f"dl.k8s.io/release/{version}/bin/linux/amd64/kubelet": b"kubelet-binary",
             LPP_MANIFEST: b"kind: StorageClass\n", MS_MANIFEST: b"kind: APIService\n"}
    sums, entries = [], []
    for rel, content in files.items():
        path = root / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        (path.parent / f"{path.name}.sha256").write_text(digest)
        sums.append(f"{digest}  files/{rel}")
        entries.append(f"  - path: {rel}\n    sha256: {digest}\n")
    refs = {key: ref or upstream for key, upstream in IMAGES.items()}
    archive = docker_save_stub(list(dict.fromkeys(refs.values())))
    (root / "images").mkdir()
    (root / "images" / "images.tar").write_bytes(archive)
    sums.append(f"{hashlib.sha256(archive).hexdigest()}  images/images.tar")
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    versions = "".join(f"  {k}: \"{v}\"\n" for k, v in VERSIONS.items())
    images = "".join(f"  - ref: {r}\n    archive: images/images.tar\n" for r in dict.fromkeys(refs.values()))
    addons = ADDONS
    for key, value in {**refs, "lpp": LPP_MANIFEST, "ms": MS_MANIFEST}.items():
        addons = addons.replace(f"{{{key}}}", value)
    (root / "manifest.yml").write_text(
        f"format: 2\nkubernetes_version: {version}\narch: amd64\nsource: test\nversions:\n{versions}{addons}"
        f"files:\n{''.join(entries)}images:\n{images}")
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
    assert "Kubernetes v1.35.4" in out and "4 files, 6 images" in out


def test_verify_refuses_an_incomplete_bundle(tmp_path: Path) -> None:
    code, out = cli("bundle", "verify", str(tmp_path))
    assert code == 2 and "not a complete bundle (no manifest.yml)" in out


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("format: 2", "format: 7", "format 7 is not supported"),
        ("format: 2", "format: 1", "format 1 is not supported (a bundle without the cluster add-ons"),
        ("  metrics_server:\n", "  metrics_serve:\n", "addons.metrics_server is missing"),
        ("    version: v1.52.2\n", "", "addons.victorialogs.version must be"),
        ("      agent: docker.io/victoriametrics/vlagent:v1.52.2\n", "", "addons.victorialogs.images.agent is missing"),
        ("      helper: toolkit.local/toolkit/local-path-helper:v1",
         "      helper: docker.io/library/busybox:1.37.0",
         "images.helper 'docker.io/library/busybox:1.37.0' is not among the bundle's images"),
        ("      - github.com/kubernetes-sigs", "      - example.com/kubernetes-sigs",
         "addons.metrics_server.manifests: 'example.com/kubernetes-sigs"),
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
        "cni_flannel_cni_plugin_version", "local_path_provisioner_version", "local_path_provisioner_image",
        "local_path_provisioner_helper_image", "metrics_server_version", "metrics_server_image",
        "victorialogs_version", "victorialogs_image", "victorialogs_agent_image"}
    assert variables["kube_packages_version"] == "v1.35.4"
    assert variables["kube_packages_method"] == "binary"
    assert variables["kube_packages_binary_base_url"] == "http://files:8080/bundles/k8s-v1.35.4/dl.k8s.io"
    assert variables["kube_packages_crictl_base_url"] == (
        "http://files:8080/bundles/k8s-v1.35.4/github.com/kubernetes-sigs/cri-tools/releases/download")
    assert variables["kube_packages_cni_plugins_base_url"] == (
        "http://files:8080/bundles/k8s-v1.35.4/github.com/containernetworking/plugins/releases/download")
    # A mirror for every registry the bundle's images name (and always the two kubeadm and Flannel use).
    mirror = ["http://registry:5000"]
    assert variables["containerd_registry_mirrors"] == {"registry.k8s.io": mirror, "ghcr.io": mirror,
                                                        "docker.io": mirror, "toolkit.local": mirror}
    assert variables["kubeadm_control_plane_etcd_image_tag"] == "3.6.6-0"
    assert variables["kubeadm_control_plane_coredns_image_tag"] == "v1.13.1"
    assert variables["cni_flannel_version"] == "v0.28.4"
    assert variables["containerd_sandbox_image"] == "registry.k8s.io/pause:3.10.1"
    assert variables["cni_flannel_cni_plugin_version"] == "v0.9.1"
    assert variables["local_path_provisioner_version"] == "v0.0.30"
    assert variables["local_path_provisioner_image"] == "docker.io/rancher/local-path-provisioner:v0.0.30"
    assert variables["local_path_provisioner_helper_image"] == "toolkit.local/toolkit/local-path-helper:v1"
    assert variables["metrics_server_version"] == "v0.9.0"
    assert variables["metrics_server_image"] == "registry.k8s.io/metrics-server/metrics-server:v0.9.0"
    assert variables["victorialogs_version"] == "v1.52.2"
    assert variables["victorialogs_image"] == "docker.io/victoriametrics/victoria-logs:v1.52.2"
    assert variables["victorialogs_agent_image"] == "docker.io/victoriametrics/vlagent:v1.52.2"


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
    assert summary["kubernetes_version"] == "v1.35.4" and summary["files"] == 4
    assert summary["images"] == list(IMAGES.values())
    code, out = cli("bundle", "verify", str(tmp_path), "--output", "xml")
    assert code == 2 and "--output 'xml'" in out


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("images/images.tar\n", "../images.tar\n", "must be relative and stay inside the bundle"),
        ("images/images.tar\n", "/etc/passwd\n", "must be relative and stay inside the bundle"),
        ("  images/images.tar\n", "\n", "SHA256SUMS line 5 is not '<sha256>  <path>'"),
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


def registry_image(client: Any) -> str | None:
    """A lab registry image in the local engine: the built-in lab's, else any lab's (`<lab name>/registry:trixie`,
    e.g. an e2e lab's, which CI's earlier tests build), else None. All are Debian's docker-registry."""
    if client.images.list(name=REGISTRY_IMAGE):
        return REGISTRY_IMAGE
    tags = sorted(tag for image in client.images.list(filters={"reference": "*/registry:trixie"})
                  for tag in image.tags if tag.startswith("toolkit-") and tag.endswith("/registry:trixie"))
    return tags[0] if tags else None


@pytest.fixture(scope="module")
def docker_client(require_docker: None) -> Any:
    import docker

    client = docker.from_env()
    if registry_image(client) is None:
        pytest.skip(f"no lab registry image ({REGISTRY_IMAGE} or another lab's) in the engine: "
                    "toolkit lab up builds one")
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
    container = docker_client.containers.run(registry_image(docker_client), detach=True, remove=True,
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
    """A bundle whose images/images.tar holds a real, tiny FROM-scratch image under an upstream-style name.

    Every image the manifest lists is that one (a unique name: never an upstream one, which a bundle
    build running beside the tests may be tagging in the same engine).
    """
    ref = f"registry.k8s.io/toolkit-test/tiny:{uuid.uuid4().hex[:12]}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY hello /hello\n"), ("hello", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = docker_client.images.build(fileobj=context, custom_context=True, tag=ref, rm=True)
    root = make_bundle(tmp_path / "b", ref=ref)
    with (root / "images" / "images.tar").open("wb") as handle:
        for chunk in image.save(named=True):
            handle.write(chunk)
    digest = bundle._sha256(root / "images" / "images.tar")
    sums = root / "SHA256SUMS"
    sums.write_text("".join(f"{digest}  images/images.tar\n" if line.endswith("images/images.tar") else f"{line}\n"
                            for line in sums.read_text().splitlines()))
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


# --- the cluster add-ons and the image archive's contents

@pytest.mark.parametrize(
    ("ref", "full"),
    [("rancher/local-path-provisioner:v0.0.30", "docker.io/rancher/local-path-provisioner:v0.0.30"),
     ("busybox:1.37.0", "docker.io/library/busybox:1.37.0"),
     ("docker.io/busybox:1.37.0", "docker.io/library/busybox:1.37.0"),
     ("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1"),
     ("toolkit.local/toolkit/local-path-helper:v1", "toolkit.local/toolkit/local-path-helper:v1"),
     ("localhost:5000/x:1", "localhost:5000/x:1")],
)
def test_registry_host_reads_references_as_docker_does(ref: str, full: str) -> None:
    assert bundle._docker_name(ref) == full
    assert bundle.registry_host(ref) == full.partition("/")[0]


def test_verify_finds_an_image_missing_from_its_archive(tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    archive = root / "images" / "images.tar"
    archive.write_bytes(docker_save_stub([r for r in IMAGES.values() if "vlagent" not in r]))
    sums = root / "SHA256SUMS"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    sums.write_text("".join(f"{digest}  images/images.tar\n" if line.endswith("images/images.tar") else f"{line}\n"
                            for line in sums.read_text().splitlines()))
    code, out = cli("bundle", "verify", str(root))
    assert code == 2, out
    assert "image docker.io/victoriametrics/vlagent:v1.52.2 is listed in the manifest but not in images/images.tar" in out


def test_verify_refuses_an_archive_that_is_not_docker_save(tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    archive = root / "images" / "images.tar"
    archive.write_bytes(b"not really a tar")
    sums = root / "SHA256SUMS"
    digest = hashlib.sha256(b"not really a tar").hexdigest()
    sums.write_text("".join(f"{digest}  images/images.tar\n" if line.endswith("images/images.tar") else f"{line}\n"
                            for line in sums.read_text().splitlines()))
    with pytest.raises(UsageError, match=r"images.tar is not a `docker save` archive"):
        bundle.load(root)


def test_verify_reports_the_addons(tmp_path: Path) -> None:
    found = bundle.load(make_bundle(tmp_path))
    assert found.addons["local_path_provisioner"].images["helper"] == "toolkit.local/toolkit/local-path-helper:v1"
    assert found.addons["metrics_server"].manifests == [MS_MANIFEST]
    text = bundle.describe(found)
    assert "every image is in its archive" in text
    assert "add-ons: local_path_provisioner v0.0.30, metrics_server v0.9.0, victorialogs v1.52.2" in text
    summary = bundle.summary(found)
    assert json.loads(json.dumps(summary))["addons"]["victorialogs"] == {
        "version": "v1.52.2", "manifests": [],
        "images": {"server": "docker.io/victoriametrics/victoria-logs:v1.52.2",
                   "agent": "docker.io/victoriametrics/vlagent:v1.52.2"}}


# --- lab/build-k8s-bundle's cache: a bundle counts as built only when it was built from the current inputs

BUILD = ROOT / "lab" / "build-k8s-bundle"


def build_check(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUILD), "--check", str(out)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_build_check_takes_only_a_bundle_of_the_current_inputs_as_built(tmp_path: Path) -> None:
    out = tmp_path / "k8s-v1.35.4"
    missing = build_check(out)
    assert missing.returncode == 1 and "missing or incomplete" in missing.stdout, missing.stdout + missing.stderr
    # A bundle built before the add-ons (its manifest records no build inputs) is stale, not complete.
    make_bundle(out)
    stale = build_check(out)
    assert stale.returncode == 1 and "is stale" in stale.stdout, stale.stdout + stale.stderr
    wanted = stale.stdout.split("(sha256:")[1].split()[0]
    manifest = out / "manifest.yml"
    manifest.write_text(manifest.read_text().replace("source: test\n", f"source: test\nbuild_inputs: sha256:{wanted}\n"))
    current = build_check(out)
    assert current.returncode == 0 and "complete and current" in current.stdout, current.stdout + current.stderr
    # Another base image makes other images: the same bundle is then stale.
    other = build_check(out, TOOLKIT_BUNDLE_BASE_IMAGE="toolkit-lab/debian:bookworm")
    assert other.returncode == 1 and "is stale" in other.stdout
