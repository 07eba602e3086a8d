"""Container names and image references, validated and normalised the way Docker does it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from worker.errors import InvalidRequest

CONTAINER_NAME_MAX = 255
NAME_TOTAL_LENGTH_MAX = 255  # distribution's NameTotalLengthMax: domain/path, without tag or digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"

# The grammar of distribution/reference regexp.go, piece by piece. Compiled with re.ASCII so that
# \w means [A-Za-z0-9_] as in Go, not any Unicode letter.
ALPHANUMERIC = r"[a-z0-9]+"
SEPARATOR = r"(?:[._]|__|[-]+)"
PATH_COMPONENT = rf"{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*"
REMOTE_NAME = rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*"
DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN_NAME = rf"{DOMAIN_NAME_COMPONENT}(?:\.{DOMAIN_NAME_COMPONENT})*"
IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
DOMAIN_AND_PORT = rf"(?:{DOMAIN_NAME}|{IPV6_ADDRESS})(?::[0-9]+)?"
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
NAME = rf"(?:{DOMAIN_AND_PORT}/)?{REMOTE_NAME}"
REFERENCE = rf"({NAME})(?::({TAG}))?(?:@({DIGEST}))?"

CONTAINER_NAME = r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+"

_CONTAINER_NAME_RE = re.compile(CONTAINER_NAME, re.ASCII)
_DOMAIN_RE = re.compile(DOMAIN_AND_PORT, re.ASCII)
_REMAINDER_RE = re.compile(rf"({REMOTE_NAME})(?::({TAG}))?(?:@({DIGEST}))?", re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")


def validate_container_name(name: str) -> str:
    """The container name without Docker's leading slash; InvalidRequest when Docker would refuse it."""
    if not _CONTAINER_NAME_RE.fullmatch(name):
        raise InvalidRequest(
            f"Invalid container name {name!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, at least 2 characters"
        )
    bare = name.removeprefix("/")
    if len(bare) > CONTAINER_NAME_MAX:
        raise InvalidRequest(f"Invalid container name: longer than {CONTAINER_NAME_MAX} characters")
    return bare


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference; `domain` and `path` are normalised, `name` is the name as written."""

    domain: str
    path: str
    tag: str | None
    digest: str | None
    name: str

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def with_tag(self, tag: str) -> ImageReference:
        """The same repository, as written, with `tag` and no digest."""
        if not re.fullmatch(TAG, tag, re.ASCII):
            raise InvalidRequest(f"Invalid tag {tag!r}")
        return replace(self, tag=tag, digest=None)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return f"{self.name}{tag}{digest}"


def parse_image_reference(ref: str) -> ImageReference:
    """Parse `ref` like `docker pull` does (ParseNormalizedNamed); InvalidRequest when it is not valid."""
    if not ref:
        raise InvalidRequest("Invalid image reference: empty")
    if _IDENTIFIER_RE.fullmatch(ref):
        raise InvalidRequest(f"Invalid image reference {ref!r}: a 64-character hex string is an image id")
    domain, remainder = _split_domain(ref)
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidRequest(f"Invalid image reference {ref!r}: {domain!r} is not a valid registry host")
    match = _REMAINDER_RE.fullmatch(remainder)
    if match is None:
        repository = re.split(r"[:@]", remainder, maxsplit=1)[0]
        if repository != repository.lower():
            raise InvalidRequest(f"Invalid image reference {ref!r}: repository name must be lowercase")
        raise InvalidRequest(f"Invalid image reference {ref!r}")
    path, tag, digest = match.groups()
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidRequest(f"Invalid image reference: name longer than {NAME_TOTAL_LENGTH_MAX} characters")
    suffix = len(f":{tag}" if tag else "") + len(f"@{digest}" if digest else "")
    return ImageReference(domain=domain, path=path, tag=tag, digest=digest, name=ref[: len(ref) - suffix])


def same_repository(a: ImageReference | str, b: ImageReference | str) -> bool:
    """True when both name the same repository once normalised (`ubuntu` and `docker.io/library/ubuntu`)."""
    a = parse_image_reference(a) if isinstance(a, str) else a
    b = parse_image_reference(b) if isinstance(b, str) else b
    return a.repository == b.repository


def _split_domain(ref: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: the first component is a registry only if it looks like a host."""
    first, slash, rest = ref.partition("/")
    if not slash:
        domain, remainder = DEFAULT_DOMAIN, ref
    elif first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, ref
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder
