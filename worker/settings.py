"""All settings, read from the environment (see the README's configuration table)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


# A comma-separated list in the environment, e.g. UPDATER_ALLOWED_IMAGES=ghcr.io/acme/*,redis:7*
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    redis_url: str = "redis://localhost:6379/0"
    updater_host: str = "0.0.0.0"
    updater_port: int = 8081
    target_container: str = "hmm-local"

    github_api_url: str = "https://api.github.com"
    github_repository: str = "renegadeuk/hmm-local"
    github_token: SecretStr | None = None
    updater_tag_prefix: str = "main-"

    # Security: the bearer token of the API, and what may be updated to what (see worker/policy.py).
    updater_api_token: SecretStr | None = None
    updater_allowed_containers: CommaList = ()  # empty: TARGET_CONTAINER and dgb-local-stack
    updater_allowed_images: CommaList = ()  # fnmatch patterns allowed besides the container's own repository
    updater_allowed_origins: CommaList = ()  # browser origins allowed besides the page's own

    updater_settle_seconds: float = 10.0
    updater_health_timeout: float = 120.0
    updater_cleanup_images: bool = False
    updater_state_dir: Path = Path("/var/lib/hmm-updater")
    updater_job_timeout: int = 1800
    # Seconds the engine may stay silent on one call; a pull that stalls this long fails.
    updater_engine_timeout: int = 300
    # Testing only: pause the update at this step (pulled, journaled, stopped, renamed, created, started,
    # health, healthy) so a fault-injection test can SIGKILL the process there.
    updater_debug_pause_at: str | None = None

    @field_validator("updater_api_token", "github_token", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
