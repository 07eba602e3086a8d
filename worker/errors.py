"""Every error the updater raises roots at UpdaterError; each carries what a caller needs to report it."""


class UpdaterError(Exception):
    """Root of the updater's errors; str() is the one-line message shown to users."""


class InvalidRequest(UpdaterError):
    """Bad input: a malformed container name or image reference, an unknown field."""


class NotAllowed(UpdaterError):
    """The allow-lists forbid it: the container is not enabled for updates, or the image is not allowed."""


class ContainerNotFound(UpdaterError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Container '{name}' not found")
        self.name = name


class UpdateRefused(UpdaterError):
    """The update is not allowed (the updater's own container, an auto-remove container, a policy)."""


class ImageResolutionFailed(UpdaterError):
    """No `main-<sha>` image could be found for the container's repository."""


class ImagePullFailed(UpdaterError):
    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"Failed to pull {image}: {reason}")
        self.image = image
        self.reason = reason


class EngineError(UpdaterError):
    """The Docker engine refused or failed an operation."""


class HealthCheckFailed(UpdaterError):
    """The new container did not stay running or did not become healthy in time."""


class UpdateRolledBack(UpdaterError):
    """The update failed after the old container was stopped; the old container runs again."""

    def __init__(self, cause: str, image: str) -> None:
        super().__init__(f"{cause}; rolled back to {image}")
        self.cause = cause
        self.image = image


class RollbackFailed(UpdaterError):
    """The update failed and the old container could not be restored; the backup is kept."""


class UpdateInProgress(UpdaterError):
    def __init__(self, name: str, job_id: str) -> None:
        super().__init__(f"An update of '{name}' is already queued or running (job {job_id})")
        self.name = name
        self.job_id = job_id


class ServiceUnavailable(UpdaterError):
    """Redis is down or no worker is alive."""
