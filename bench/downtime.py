"""Downtime and end-to-end time of one update: this updater, the seed's naive CLI flow, and the CLI floor."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import docker

from bench.images import ImageBuilder, ImagePair
from bench.phases import job_phases
from bench.prober import Prober, ask_version
from bench.services import Updater, app_labels
from tests import testbed

UPDATER, NAIVE, FLOOR = "updater", "naive", "floor"
FLOWS = (UPDATER, NAIVE, FLOOR)
QUIET_BEFORE = 0.3  # seconds of answers before the update starts, so the prober has a baseline


@dataclass
class Sample:
    flow: str
    size: str
    downtime: float
    end_to_end: float
    stalled_seconds: float  # spent in probes docker-proxy accepted but answered late or never
    phases: dict[str, float] = field(default_factory=dict)  # updater only: where the time went


@dataclass
class Target:
    """The app container every flow updates in turn, on a fixed published port."""

    client: docker.DockerClient
    name: str
    port: int
    run_id: str
    version: str = ""

    def create(self, ref: str, version: str) -> None:
        self.client.containers.run(ref, name=self.name, detach=True, labels=app_labels(self.run_id),
                                   ports={"8080/tcp": ("127.0.0.1", self.port)})
        self.version = version
        testbed.wait_for(lambda: ask_version(self.port) == version, what=f"{self.name} serving")

    def cli_run_args(self, ref: str) -> list[str]:
        labels = [arg for key, value in app_labels(self.run_id).items() for arg in ("--label", f"{key}={value}")]
        return ["docker", "run", "-d", "--name", self.name, *labels, "-p", f"127.0.0.1:{self.port}:8080", ref]


def _docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def naive_update(target: Target, ref: str) -> None:
    """The seed's flow: the app is down from the stop until the pulled image runs."""
    _docker("stop", target.name)
    _docker("rm", target.name)
    _docker("pull", "-q", ref)
    _docker(*target.cli_run_args(ref)[1:])


def floor_update(target: Target, ref: str) -> None:
    """The least any recreation can cost: stop, remove, run an image already present."""
    _docker("stop", target.name)
    _docker("rm", target.name)
    _docker(*target.cli_run_args(ref)[1:])


def updater_update(updater: Updater, target: Target, ref: str) -> dict[str, float]:
    """POST /update?wait=true; returns the job's phases (seconds) read from its log."""
    posted = time.time()
    response = updater.http.post(f"{updater.url}/update", params={"wait": "true"}, timeout=600,
                                 json={"container_name": target.name, "new_image": ref})
    answered = time.time()
    body = response.json()
    if response.status_code != 200 or not body.get("updated"):
        raise RuntimeError(f"update of {target.name} to {ref} failed: {response.status_code} {body}")
    job = updater.get(f"/jobs/{body['job_id']}")
    return job_phases(job.get("log") or [], posted, answered)


def measure(target: Target, version: str, update: Callable[[], dict[str, float] | None]) -> Sample:
    prober = Prober(target.port)
    prober.start()
    prober.wait_for(target.version)
    time.sleep(QUIET_BEFORE)
    started = time.monotonic()
    phases = update()
    end_to_end = time.monotonic() - started
    prober.wait_for(version)
    target.version = version
    downtime = prober.finish()
    return Sample("", "", downtime, end_to_end, round(prober.stalled_seconds, 3), phases or {})


def run_round(flow: str, target: Target, pair: ImagePair, images: ImageBuilder, updater: Updater) -> Sample:
    """Update the target to the other version with one flow; the naive and updater flows pull for real."""
    version = pair.other(target.version)
    ref = pair.refs[version]
    if flow == FLOOR:
        if not images.present(ref):
            images.pull(ref)
        sample = measure(target, version, lambda: floor_update(target, ref))
    else:
        images.remove_local(ref)
        if flow == NAIVE:
            sample = measure(target, version, lambda: naive_update(target, ref))
        else:
            sample = measure(target, version, lambda: updater_update(updater, target, ref))
    sample.flow, sample.size = flow, pair.size
    return sample


def downtime_bench(client: docker.DockerClient, updater: Updater, images: ImageBuilder, pair: ImagePair,
                   runs: int, progress: Callable[[str], None]) -> list[Sample]:
    """`runs` rounds of floor, naive and updater in turn on one container, so background load hits all three."""
    target = Target(client, f"{images.prefix}-{pair.size}-app", testbed.free_port(), images.run_id)
    first = next(iter(pair.refs))
    target.create(pair.refs[first], first)
    testbed.wait_for(lambda: any(c["name"] == target.name for c in updater.get("/containers")["containers"]),
                     timeout=30, what=f"{target.name} in the inventory")
    samples = []
    try:
        for run in range(runs):
            for flow in FLOWS:
                sample = run_round(flow, target, pair, images, updater)
                samples.append(sample)
                progress(f"{pair.size} #{run + 1} {flow}: down {sample.downtime * 1000:.0f} ms, "
                         f"end to end {sample.end_to_end:.2f} s, {sample.stalled_seconds:.2f} s in stalled probes")
    finally:
        subprocess.run(["docker", "rm", "-f", target.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
    return samples
