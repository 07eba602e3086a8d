"""Operators inspect jobs in rq-dashboard: it shows our queue, and a job's description, status and meta."""

from __future__ import annotations

import json
import warnings

import redis
from rq import Queue

from api.updates import PlannedUpdate, enqueue_update
from worker import keys
from worker.settings import Settings


def test_rq_dashboard_lists_our_queue_and_job(redis_url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rq-dashboard still imports six and other legacy shims
        from rq_dashboard.cli import make_flask_app
        from rq_dashboard.web import setup_rq_connection
    client = redis.Redis.from_url(redis_url)
    plan = PlannedUpdate("hmm-local", "ghcr.io/renegadeuk/hmm-local:main-2222222",
                         "ghcr.io/renegadeuk/hmm-local:main-1111111", force=False)
    job = enqueue_update(client, Queue(keys.QUEUE_NAME, connection=client), plan, Settings())
    app = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    setup_rq_connection(app)
    dashboard = app.test_client()

    queues = dashboard.get("/0/data/queues.json").get_json()["queues"]
    assert {"name": keys.QUEUE_NAME, "count": 1} in [{"name": q["name"], "count": q["count"]} for q in queues]
    shown = dashboard.get(f"/0/data/job/{job.id}.json").get_json()
    assert shown["status"] == "queued"
    assert shown["description"] == "Update hmm-local → ghcr.io/renegadeuk/hmm-local:main-2222222"
    meta = json.loads(shown["metadata"])
    assert meta["container_name"] == "hmm-local" and meta["old_image"].endswith("main-1111111")
    client.close()
