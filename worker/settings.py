"""All settings, read from the environment (see the README's configuration table)."""

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    updater_settle_seconds: float = 10.0
    updater_health_timeout: float = 120.0
    updater_cleanup_images: bool = False
    updater_state_dir: Path = Path("/var/lib/hmm-updater")
    updater_job_timeout: int = 1800
    # Testing only: pause the update at this step (pulled, journaled, stopped, renamed, created, started,
    # health, healthy) so a fault-injection test can SIGKILL the process there.
    updater_debug_pause_at: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
