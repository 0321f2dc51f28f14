"""Container image references, parsed and normalised as the Docker engine and containerd read them.

Grammar (github.com/distribution/reference): `[DOMAIN[:PORT]/]PATH[:TAG][@DIGEST]`, where PATH is
lowercase components separated by `/`, each made of `[a-z0-9]+` joined by `.`, `_`, `__` or dashes.
The first component is a registry domain only when it holds a `.` or a `:`, is `localhost`, or has an
uppercase letter. Normalised: `postgres:17` → `docker.io/library/postgres:17`, no tag and no digest →
`:latest`, `index.docker.io` → `docker.io`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = re.compile(rf"^{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^(?P<algorithm>[a-z][a-z0-9]*(?:[+._-][a-z][a-z0-9]*)*):(?P<hex>[0-9a-fA-F]{32,})$")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
DEFAULT_REGISTRY = "docker.io"
EXPECT = "an image reference [REGISTRY[:PORT]/]PATH[:TAG][@DIGEST] such as postgres:17 or registry.example.com:5000/team/app:1.2"


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised image reference. `tag` or `digest` may be None, never both."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def full(self) -> str:
        """The normalised reference: `docker.io/library/postgres:17`."""
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _fail(reason: str) -> ValueError:
    return ValueError(f"{EXPECT} ({reason})")


def parse(text: str) -> ImageRef:
    """Parse and normalise an image reference.

    Raises ValueError naming what is wrong (its text starts with the expected form).
    """
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise _fail("empty or holds spaces")
    name, at, digest = text.partition("@")
    if at:
        found = _DIGEST.match(digest)
        if not found:
            raise _fail(f"digest '{digest}' is not ALGORITHM:HEX")
        length = _DIGEST_LENGTHS.get(found.group("algorithm"))
        if length is not None and len(found.group("hex")) != length:
            raise _fail(f"a {found.group('algorithm')} digest has {length} hex digits")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise _fail(f"tag '{tag}' holds characters other than letters, digits, '_', '.' and '-', or is too long")
    first, sep, rest = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        registry, path = first, rest
        if not _DOMAIN.match(registry):
            raise _fail(f"registry '{registry}' is not a host name or address with an optional port")
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY
    components = path.split("/")
    for component in components:
        if not _PATH_COMPONENT.match(component):
            lower = " (paths are lowercase)" if component.lower() != component else ""
            raise _fail(f"path component '{component}' is malformed{lower}")
    if registry == DEFAULT_REGISTRY and len(components) == 1:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > 255:
        raise _fail("the name is longer than 255 characters")
    if tag is None and not at:
        tag = "latest"
    return ImageRef(registry=registry, repository=path, tag=tag, digest=digest if at else None)


def normalise(text: str) -> str:
    """The normalised form of an image reference (see `parse`); raises ValueError when malformed."""
    return parse(text).full
