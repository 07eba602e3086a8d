"""Finds the newest `main-<sha7>` image: by GitHub's commit order, else by the registry's build dates."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from worker.errors import ImageResolutionFailed
from worker.reference import ImageReference, parse_image_reference
from worker.registry import RegistryClient, RegistryCredentials
from worker.settings import Settings

logger = logging.getLogger(__name__)

BRANCH = "main"
COMMITS_TO_CHECK = 30
HTTP_TIMEOUT = 15.0
_SHA = re.compile(r"[0-9a-f]{7,40}")


class _GitHubUnavailable(Exception):
    """GitHub could not answer (network, 5xx, rate limit); the registry alone must decide."""


class ImageResolver:
    def __init__(self, http: httpx.Client, *, github_api_url: str, github_repository: str,
                 github_token: str | None, tag_prefix: str = "main-",
                 credentials: RegistryCredentials | None = None) -> None:
        self._http = http
        self._owns_http = False
        self._commits_url = f"{github_api_url.rstrip('/')}/repos/{github_repository}/commits"
        self._github_repository = github_repository
        self._github_token = github_token
        self._tag_prefix = tag_prefix
        self._tag_pattern = re.compile(rf"{re.escape(tag_prefix)}[0-9a-f]{{7,40}}")
        self._registry = RegistryClient(http, credentials)

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client | None = None) -> ImageResolver:
        token = settings.github_token.get_secret_value() if settings.github_token else None
        resolver = cls(http or httpx.Client(timeout=HTTP_TIMEOUT), github_api_url=settings.github_api_url,
                       github_repository=settings.github_repository, github_token=token,
                       tag_prefix=settings.updater_tag_prefix,
                       credentials=RegistryCredentials.from_docker_config())
        resolver._owns_http = http is None
        return resolver

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def latest(self, current_image: str) -> str:
        """The full reference of the newest `<prefix><sha7>` image in `current_image`'s repository."""
        image = parse_image_reference(current_image)
        try:
            shas = self._recent_commits()
        except _GitHubUnavailable as exc:
            logger.warning("GitHub unavailable (%s); choosing the newest %s tag by build date",
                           exc, self._tag_prefix)
            return str(self._newest_by_creation(image))
        if not shas:
            raise ImageResolutionFailed(f"GitHub lists no commits on {self._github_repository}@{BRANCH}")
        for sha in shas:
            # The newest commits may still be building; their images appear minutes later.
            candidate = image.with_tag(f"{self._tag_prefix}{sha[:7]}")
            if self._registry.manifest_exists(candidate):
                return str(candidate)
        raise ImageResolutionFailed(
            f"None of the last {len(shas)} commits on {self._github_repository}@{BRANCH} "
            f"has an image {image.name}:{self._tag_prefix}<sha7>"
        )

    def _recent_commits(self) -> list[str]:
        """Commit shas on the branch, newest first."""
        headers = {"Accept": "application/vnd.github+json"}
        if self._github_token:
            headers["Authorization"] = f"Bearer {self._github_token}"
        params = {"sha": BRANCH, "per_page": str(COMMITS_TO_CHECK)}
        try:
            response = self._http.get(self._commits_url, params=params, headers=headers,
                                      follow_redirects=True)
        except httpx.HTTPError as exc:
            raise _GitHubUnavailable(f"{type(exc).__name__}: {exc}") from exc
        # GitHub reports an exhausted rate limit as 403 or 429.
        if response.status_code >= 500 or response.status_code in (403, 429):
            raise _GitHubUnavailable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise ImageResolutionFailed(
                f"GitHub answered {response.status_code} for the commits of {self._github_repository}; "
                "check GITHUB_REPOSITORY and GITHUB_TOKEN"
            )
        try:
            commits: Any = response.json()
            shas = [commit["sha"] for commit in commits]
        except (ValueError, TypeError, KeyError) as exc:
            raise _GitHubUnavailable("malformed commit list") from exc
        return [sha for sha in shas if isinstance(sha, str) and _SHA.fullmatch(sha)]

    def _newest_by_creation(self, image: ImageReference) -> ImageReference:
        tags = [tag for tag in self._registry.tags(image) if self._tag_pattern.fullmatch(tag)]
        dated = [(created, tag) for tag in tags
                 if (created := self._registry.created(image.with_tag(tag))) is not None]
        if not dated:
            raise ImageResolutionFailed(
                f"GitHub is unavailable and {image.repository} has no dated {self._tag_prefix}<sha> tags"
            )
        return image.with_tag(max(dated)[1])
