"""GET /config: what the web UI needs before its first call: the target container and whether a token is needed."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SettingsDep
from api.routes.health import service_version

router = APIRouter()


class UiConfig(BaseModel):
    target_container: str
    tag_prefix: str
    token_required: bool
    version: str


@router.get("/config", response_model=UiConfig)
def ui_config(settings: SettingsDep) -> UiConfig:
    return UiConfig(target_container=settings.target_container, tag_prefix=settings.updater_tag_prefix,
                    token_required=settings.updater_api_token is not None, version=service_version())
