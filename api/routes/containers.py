"""GET /containers: the containers that may be updated, from the inventory the worker publishes into Redis."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RedisDep, SettingsDep
from api.schemas import ContainerList, ContainerPublic, error_responses
from worker.errors import ServiceUnavailable
from worker.inventory import read_inventory
from worker.policy import container_allowed

router = APIRouter()


@router.get("/containers", response_model=ContainerList, responses=error_responses(503))
def list_containers(redis: RedisDep, settings: SettingsDep) -> ContainerList:
    inventory = read_inventory(redis)
    if inventory is None:
        raise ServiceUnavailable("No worker has published the container list recently: is a worker running?")
    containers = [ContainerPublic.model_validate(c, from_attributes=False) for c in inventory
                  if container_allowed(c["name"], c["labels"], settings)]
    return ContainerList(containers=sorted(containers, key=lambda c: c.name))
