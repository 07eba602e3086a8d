"""`python3 -m bench.run [--quick]`: every benchmark in one run on the real engine; writes results.md/json.

It starts its own Redis, registry, API and workers on loopback ports, names everything it creates
hmmb-<run>-..., and removes all of it at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import redis

from bench import report
from bench.downtime import downtime_bench
from bench.images import LARGE_PADDING_MB, SMALL_PADDING_MB, ImageBuilder, ImagePair
from bench.relay import RelayRun, relay_bench
from bench.services import LIFTED_POOL, REPO, SETTLE_SECONDS, STOP_GRACE_SECONDS, Updater
from bench.throughput import throughput_bench
from tests import testbed

LIFTED_SETUP = f"REDIS_URL ?{LIFTED_POOL}"


@dataclass(frozen=True)
class Plan:
    mode: str
    sizes: tuple[str, ...]
    downtime_runs: int
    relay_clients: tuple[int, ...]
    relay_messages: int
    relay_interval: float
    fan_out_containers: int
    fan_out_workers: tuple[int, ...]


FULL = Plan("full", ("small", "large"), 7, (1, 100, 500), 100, 0.1, 20, (1, 2, 4))
QUICK = Plan("quick", ("small",), 3, (1, 100, 500), 30, 0.1, 8, (1, 4))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return result.stdout.strip()


def _environment(client: docker.DockerClient) -> dict[str, Any]:
    dirty = " with uncommitted changes" if _git("status", "--porcelain") else ""
    commit = _git("rev-parse", "--short", "HEAD") + dirty
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
            "cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "docker": client.version().get("Version"), "redis_py": redis.__version__, "load_before": os.getloadavg()}


def run(plan: Plan, run_id: str, client: docker.DockerClient, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"plan": dataclasses.asdict(plan), "run_id": run_id, "settle_seconds": SETTLE_SECONDS,
                               "environment": _environment(client)}
    started = time.monotonic()
    images = ImageBuilder(client, "", run_id)
    try:
        with testbed.private_services() as (redis_service, registry_service):
            images.registry = f"127.0.0.1:{registry_service.port}"
            redis_url = f"redis://127.0.0.1:{redis_service.port}/0"
            log("building and pushing the test images")
            base = images.base()
            pairs = [images.pair(base, size, LARGE_PADDING_MB if size == "large" else SMALL_PADDING_MB)
                     for size in plan.sizes]
            results["images"] = {p.size: round(p.megabytes, 1) for p in pairs}
            results |= _service_benches(plan, run_id, client, images, pairs, redis_url, workdir)
    finally:
        results["leftovers"] = _clean_up(client, images, run_id)
    results["environment"]["load_after"] = os.getloadavg()
    results["duration_seconds"] = round(time.monotonic() - started, 1)
    return results


def _service_benches(plan: Plan, run_id: str, client: docker.DockerClient, images: ImageBuilder,
                     pairs: list[ImagePair], redis_url: str, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    updater = Updater(redis_url, workdir / "updater")
    try:
        updater.workdir.mkdir()
        updater.start_api()
        updater.start_workers(1)
        samples = []
        for pair in pairs:
            log(f"downtime, {pair.size} image ({pair.megabytes:.0f} MB), {plan.downtime_runs} rounds")
            samples += downtime_bench(client, updater, images, pair, plan.downtime_runs, log)
        results["downtime"] = [dataclasses.asdict(s) for s in samples]
        updater.stop_workers()
        results["relay"] = [dataclasses.asdict(r) for r in _relay_benches(plan, run_id, redis_url, workdir)]
        log(f"fan-out: {plan.fan_out_containers} containers")
        fan_out = throughput_bench(client, updater, images, pairs[0], plan.fan_out_workers,
                                   plan.fan_out_containers, log)
        results["throughput"] = [dataclasses.asdict(r) for r in fan_out]
        results["worker_stops"] = {"stopped": updater.stopped_workers, "killed": updater.killed_workers,
                                   "grace_seconds": STOP_GRACE_SECONDS}
    finally:
        updater.stop()
    return results


def _relay_benches(plan: Plan, run_id: str, redis_url: str, workdir: Path) -> list[RelayRun]:
    """Each setup gets a fresh API process, so its memory is its own."""
    setups = [("as shipped", redis_url, plan.relay_clients, True),
              (LIFTED_SETUP, f"{redis_url}?{LIFTED_POOL}", plan.relay_clients[1:], True),
              (f"{LIFTED_SETUP}, no permessage-deflate", f"{redis_url}?{LIFTED_POOL}", plan.relay_clients[-1:], False)]
    runs = []
    for index, (setup, url, clients, deflate) in enumerate(setups):
        log(f"log relay, {setup}")
        api = Updater(url, workdir / f"relay-{index}")
        try:
            api.workdir.mkdir()
            api.start_api()
            runs.append(relay_bench(api, setup, clients, plan.relay_messages, plan.relay_interval, run_id, log,
                                    deflate=deflate))
        finally:
            api.stop()
    return runs


def _clean_up(client: docker.DockerClient, images: ImageBuilder, run_id: str) -> list[str]:
    """Remove everything named hmmb-<run> or labelled with the run; returns what is still there."""
    prefix = f"hmmb-{run_id}"
    testbed.remove_prefixed(client, prefix, label=f"hmmb.run={run_id}")
    left = [f"image {i}" for i in images.remove_all()]
    left += [f"container {c.name}" for c in client.containers.list(all=True, filters={"label": f"hmmb.run={run_id}"})]
    left += [f"container {c.name}" for c in client.containers.list(all=True, filters={"name": prefix})]
    left += [f"volume {v.name}" for v in client.volumes.list(filters={"name": prefix})]
    left += [f"network {n.name}" for n in client.networks.list(names=[prefix])]
    left += [f"image {t}" for i in client.images.list() for t in i.tags if prefix in t]
    return sorted(set(left))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="small image only, fewer rounds and containers (about 2 minutes); "
                             "writes bench/.cache/quick/ unless --out is given")
    parser.add_argument("--out", type=Path, help="directory for results.md and results.json")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = args.out or (REPO / "bench" / ".cache" / "quick" if args.quick else REPO / "bench")
    run_id = secrets.token_hex(3)
    client = docker.from_env(timeout=300)
    workdir = Path(tempfile.mkdtemp(prefix=f"hmmb-{run_id}-"))
    log(f"run {run_id}, {plan.mode} mode; logs of the API and workers in {workdir}")
    try:
        results = run(plan, run_id, client, workdir)
    except BaseException:
        log(f"failed; the service logs are kept in {workdir}")
        raise
    finally:
        client.close()
    shutil.rmtree(workdir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.render(results)
    (out / "results.md").write_text(markdown)
    print(report.summary(results))
    log(f"wrote {out / 'results.md'} and {out / 'results.json'} in {results['duration_seconds']:.0f} s")
    if results["leftovers"]:
        log(f"could not remove: {', '.join(results['leftovers'])}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
