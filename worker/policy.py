"""What may be updated to what: the container and image allow-lists, checked by the API and again by the worker."""

from __future__ import annotations

from fnmatch import fnmatchcase

from worker.errors import InvalidRequest, NotAllowed
from worker.reference import parse_image_reference, same_repository
from worker.settings import Settings

ENABLE_LABEL = "hmm-updater.enable"
ALWAYS_ALLOWED = ("dgb-local-stack",)  # besides TARGET_CONTAINER, when UPDATER_ALLOWED_CONTAINERS is unset


def allowed_names(settings: Settings) -> frozenset[str]:
    if settings.updater_allowed_containers:
        return frozenset(settings.updater_allowed_containers)
    return frozenset((settings.target_container, *ALWAYS_ALLOWED))


def container_allowed(name: str, labels: dict[str, str] | None, settings: Settings) -> bool:
    enabled = (labels or {}).get(ENABLE_LABEL, "").strip().lower() == "true"
    return enabled or name in allowed_names(settings)


def check_container(name: str, labels: dict[str, str] | None, settings: Settings) -> None:
    if not container_allowed(name, labels, settings):
        raise NotAllowed(f"Container '{name}' may not be updated: add it to UPDATER_ALLOWED_CONTAINERS or label it "
                         f"{ENABLE_LABEL}=true")


def image_allowed(current_image: str, new_image: str, patterns: tuple[str, ...]) -> bool:
    """True when `new_image` is in `current_image`'s repository or matches one of `patterns`.

    A pattern is matched against the image as written and normalised, with and without its tag, so
    `ghcr.io/acme/app` allows every tag of that repository and `redis:7*` every 7.x tag of Docker Hub's redis."""
    try:
        new = parse_image_reference(new_image)
    except InvalidRequest:
        return False
    try:
        if same_repository(current_image, new):
            return True
    except InvalidRequest:  # the container runs an image id: no repository to compare with
        pass
    suffix = new_image[len(new.name):]
    forms = {new_image, new.name, new.repository, new.repository + suffix}
    return any(fnmatchcase(form, pattern) for pattern in patterns for form in forms)


def check_image(name: str, current_image: str, new_image: str, settings: Settings) -> None:
    if not image_allowed(current_image, new_image, settings.updater_allowed_images):
        raise NotAllowed(f"Image {new_image} is not allowed for '{name}': it is not in the repository of its "
                         f"current image {current_image} and matches no UPDATER_ALLOWED_IMAGES pattern")
