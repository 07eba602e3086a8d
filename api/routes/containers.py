"""GET /containers: the containers the worker can update, from the inventory it publishes into Redis."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RedisDep
from api.schemas import ContainerList, ContainerPublic
from worker.errors import ServiceUnavailable
from worker.inventory import read_inventory

router = APIRouter()


@router.get("/containers", response_model=ContainerList)
def list_containers(redis: RedisDep) -> ContainerList:
    inventory = read_inventory(redis)
    if inventory is None:
        raise ServiceUnavailable("No worker has published the container list recently: is a worker running?")
    containers = [ContainerPublic.model_validate(c, from_attributes=False) for c in inventory]
    return ContainerList(containers=sorted(containers, key=lambda c: c.name))
