"""Registry API v2 over httpx: does a tag exist, which tags exist, when was an image built."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from worker.errors import ImageResolutionFailed
from worker.reference import DEFAULT_DOMAIN, ImageReference

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    *INDEX_TYPES,
)
MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)
DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
MAX_TAG_PAGES = 1000


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


class RegistryCredentials:
    """Logins per registry host, as `docker login` stores them."""

    def __init__(self, logins: dict[str, Login] | None = None) -> None:
        self._logins = {_config_host(host): login for host, login in (logins or {}).items()}

    @classmethod
    def from_docker_config(cls, path: Path | None = None) -> RegistryCredentials:
        """Read `auths` from the Docker config; a missing or unreadable file means no logins.

        Credential helpers (`credsStore`, `credHelpers`) are ignored: they mean running docker-credential-*
        binaries, which the updater does not do; logins must sit base64-encoded in `auths`.
        """
        if path is None:
            path = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
        try:
            auths = json.loads(path.read_text()).get("auths") or {}
        except (OSError, ValueError, AttributeError):
            return cls()
        logins = {}
        for host, entry in auths.items():
            try:
                username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (KeyError, TypeError, binascii.Error, UnicodeDecodeError):
                continue
            logins[host] = Login(username, password)
        return cls(logins)

    def for_registry(self, domain: str) -> Login | None:
        return self._logins.get(_config_host(domain))

    def __repr__(self) -> str:
        return f"RegistryCredentials(hosts={sorted(self._logins)})"


def is_loopback(domain: str) -> bool:
    host = _hostname(domain)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_base_url(domain: str) -> str:
    """Where the registry API of an image domain lives: plain HTTP only for loopback registries."""
    if domain in DOCKER_HUB_ALIASES:
        return "https://registry-1.docker.io"
    return f"{'http' if is_loopback(domain) else 'https'}://{domain}"


class RegistryClient:
    """Reads one or more registries; answers bearer and basic challenges with the known logins."""

    def __init__(self, http: httpx.Client, credentials: RegistryCredentials | None = None) -> None:
        self._http = http
        self._credentials = credentials or RegistryCredentials()
        self._authorization: dict[tuple[str, str], str] = {}  # (domain, path) -> Authorization header

    def manifest_exists(self, image: ImageReference) -> bool:
        response = self._send("HEAD", image, f"manifests/{_reference(image)}", accept=MANIFEST_ACCEPT)
        if response.status_code == 404:
            return False
        _raise_for_status(response, image)
        return True

    def tags(self, image: ImageReference, page_size: int = 100) -> list[str]:
        """Every tag of the image's repository, following the `Link` pagination."""
        tags: list[str] = []
        url = f"tags/list?n={page_size}"
        for _ in range(MAX_TAG_PAGES):
            response = self._send("GET", image, url)
            _raise_for_status(response, image)
            tags += [tag for tag in _json(response, image).get("tags") or [] if isinstance(tag, str)]
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return tags
            # The Link is relative to the registry host, not to /v2/<path>/.
            url = urljoin(str(response.url), next_url)
            if httpx.URL(url).netloc != response.url.netloc:
                raise ImageResolutionFailed(f"Registry {image.domain} links its tags to another host")
        raise ImageResolutionFailed(f"Too many pages of tags for {image.repository}")

    def created(self, image: ImageReference) -> datetime | None:
        """The image's build time from its config blob; for an index, its first manifest's."""
        manifest = self._manifest(image, _reference(image))
        if "manifests" in manifest:
            first = _digest(manifest["manifests"], 0)
            if first is None:
                return None
            manifest = self._manifest(image, first)
        config_digest = _digest(manifest, "config")
        if config_digest is None:
            return None
        response = self._send("GET", image, f"blobs/{config_digest}")
        _raise_for_status(response, image)
        try:
            created = datetime.fromisoformat(_json(response, image)["created"])
        except (KeyError, TypeError, ValueError):
            return None
        # Naive and aware datetimes do not compare; OCI says `created` is UTC.
        return created if created.tzinfo else created.replace(tzinfo=UTC)

    def _manifest(self, image: ImageReference, reference: str) -> dict[str, Any]:
        response = self._send("GET", image, f"manifests/{reference}", accept=MANIFEST_ACCEPT)
        _raise_for_status(response, image)
        return _json(response, image)

    def _send(self, method: str, image: ImageReference, url: str,
              accept: str | None = None) -> httpx.Response:
        """One request, retried once with credentials when the registry challenges it."""
        if not url.startswith(("http://", "https://")):
            url = f"{api_base_url(image.domain)}/v2/{image.path}/{url}"
        key = (image.domain, image.path)
        headers = {"Accept": accept} if accept else {}
        response = self._request(method, url, headers, self._authorization.get(key), image)
        if response.status_code != 401:
            return response
        authorization = self._answer_challenge(response, image)
        response = self._request(method, url, headers, authorization, image)
        if response.status_code == 401:
            raise ImageResolutionFailed(f"Registry {image.domain} refused our credentials for {image.path}")
        self._authorization[key] = authorization
        return response

    def _request(self, method: str, url: str, headers: dict[str, str], authorization: str | None,
                 image: ImageReference) -> httpx.Response:
        if authorization:
            headers = {**headers, "Authorization": authorization}
        try:
            # Blobs often redirect to storage elsewhere; httpx drops Authorization across origins.
            return self._http.request(method, url, headers=headers, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise ImageResolutionFailed(f"Registry {image.domain} unreachable: {exc}") from exc

    def _answer_challenge(self, response: httpx.Response, image: ImageReference) -> str:
        scheme, _, params = response.headers.get("WWW-Authenticate", "").partition(" ")
        login = self._credentials.for_registry(image.domain)
        if scheme.lower() == "basic":
            if login is None:
                raise ImageResolutionFailed(f"Registry {image.domain} needs a login (docker login)")
            return login.basic_header()
        if scheme.lower() != "bearer":
            raise ImageResolutionFailed(f"Registry {image.domain} asks for unsupported auth {scheme!r}")
        return f"Bearer {self._fetch_token(_challenge_params(params), login, image)}"

    def _fetch_token(self, challenge: dict[str, str], login: Login | None, image: ImageReference) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise ImageResolutionFailed(f"Registry {image.domain} sent a bearer challenge without a realm")
        query = {"scope": challenge.get("scope") or f"repository:{image.path}:pull"}
        if "service" in challenge:
            query["service"] = challenge["service"]
        headers = {"Authorization": login.basic_header()} if login else {}
        try:
            response = self._http.get(realm, params=query, headers=headers, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise ImageResolutionFailed(f"Token server of {image.domain} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ImageResolutionFailed(f"Token server of {image.domain} answered {response.status_code}")
        body = _json(response, image)
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ImageResolutionFailed(f"Token server of {image.domain} sent no token")
        return token


def _reference(image: ImageReference) -> str:
    return image.digest or image.tag or "latest"


def _raise_for_status(response: httpx.Response, image: ImageReference) -> None:
    if response.status_code == 404:
        raise ImageResolutionFailed(f"{image.repository} not found in its registry ({response.url.path})")
    if response.status_code != 200:
        raise ImageResolutionFailed(
            f"Registry {image.domain} answered {response.status_code} for {response.url.path}"
        )


def _json(response: httpx.Response, image: ImageReference) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ImageResolutionFailed(f"Registry {image.domain} sent malformed JSON") from exc
    if not isinstance(body, dict):
        raise ImageResolutionFailed(f"Registry {image.domain} sent unexpected JSON")
    return body


def _digest(container: Any, key: int | str) -> str | None:
    """`container[key]["digest"]` when the registry sent that shape, else None."""
    try:
        digest = container[key]["digest"]
    except (LookupError, TypeError):
        return None
    return digest if isinstance(digest, str) else None


def _challenge_params(params: str) -> dict[str, str]:
    return {m[1].lower(): m[2] if m[2] is not None else m[3]
            for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', params)}


def _hostname(domain: str) -> str:
    if domain.startswith("["):
        return domain[1:domain.find("]")]
    return domain.partition(":")[0]


def _config_host(host: str) -> str:
    """Docker config keys come as `ghcr.io` or `https://index.docker.io/v1/`; compare bare hosts."""
    host = re.sub(r"^[a-z]+://", "", host).partition("/")[0]
    return DEFAULT_DOMAIN if host in DOCKER_HUB_ALIASES else host
