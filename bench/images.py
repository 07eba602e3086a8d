"""The bench's images: two versions of the busybox test app, small and large, in the private registry."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import docker
from docker.errors import ImageNotFound

from tests import testbed

SMALL_PADDING_MB = 2  # unique bytes per version, so even the small pull moves a layer
LARGE_PADDING_MB = 160  # random, so the registry's gzip cannot shrink it


@dataclass(frozen=True)
class ImagePair:
    """Two versions of one app; every layer above the base differs between them."""

    size: str  # "small" or "large"
    refs: dict[str, str]  # version ("small-a") -> registry reference
    megabytes: float

    def other(self, version: str) -> str:
        return next(v for v in self.refs if v != version)


@dataclass
class ImageBuilder:
    client: docker.DockerClient
    registry: str
    run_id: str
    created: set[str] = field(default_factory=set)  # ids of images this run added (not cache hits)
    existing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.existing = {str(image.id) for image in self.client.images.list(all=True)}

    @property
    def prefix(self) -> str:
        return f"hmmb-{self.run_id}"

    def base(self) -> str:
        tag = testbed.build_base_image(self.client, f"{self.prefix}-base:latest")
        self._track(tag)
        return tag

    def pair(self, base: str, size: str, padding_mb: int) -> ImagePair:
        refs = {}
        for letter in ("a", "b"):
            version = f"{size}-{letter}"
            ref = f"{self.registry}/{self.prefix}/app:{version}"
            app = testbed.AppVersion(version, labels={"hmmb.run": self.run_id}, volumes=(), healthcheck=None)
            testbed.build_app_image(self.client, base, app, ref, padding_mb=padding_mb)
            testbed.push(self.client, ref)
            self._track(ref)
            refs[version] = ref
        megabytes = self.client.images.get(refs[f"{size}-a"]).attrs["Size"] / 1e6
        return ImagePair(size, refs, megabytes)

    def _track(self, ref: str) -> None:
        image_id: str | None = self.client.images.get(ref).id
        while image_id:  # the legacy builder keeps a parent image per Dockerfile step
            if image_id not in self.existing:
                self.created.add(image_id)
            image_id = self.client.api.inspect_image(image_id).get("Parent") or None  # type: ignore[no-untyped-call]

    def pull(self, ref: str) -> None:
        repository, tag = ref.rsplit(":", 1)
        self.client.images.pull(repository, tag=tag)
        self._track(ref)

    def remove_local(self, ref: str) -> None:
        """Delete the local copy so the next pull is a real download from the registry."""
        with contextlib.suppress(ImageNotFound):
            self.client.images.remove(ref)

    def present(self, ref: str) -> bool:
        try:
            self.client.images.get(ref)
        except ImageNotFound:
            return False
        return True

    def remove_all(self) -> list[str]:
        """Untag every image of this run; returns the ids it added that are still there.

        Removal goes by tag without force, so an image another build shares through the cache stays."""
        for image in self.client.images.list():
            for tag in image.tags:
                if self.prefix in tag:
                    with contextlib.suppress(docker.errors.APIError):
                        self.client.images.remove(tag)
        remaining = {i for i in self.created if self._exists(i)}
        for _ in range(len(remaining)):  # children before parents: retry until nothing moves
            for image_id in sorted(remaining):
                with contextlib.suppress(docker.errors.APIError):
                    self.client.images.remove(image_id)
            remaining = {i for i in remaining if self._exists(i)}
            if not remaining:
                break
        return sorted(remaining)

    def _exists(self, image_id: str) -> bool:
        try:
            self.client.images.get(image_id)
        except ImageNotFound:
            return False
        return True
