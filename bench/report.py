"""Turns the raw results into bench/results.md: tables, targets met or missed, and why."""

from __future__ import annotations

import statistics
from typing import Any

from bench.downtime import FLOOR, FLOWS, NAIVE, UPDATER
from bench.images import LARGE_PADDING_MB as LARGE_MB
from bench.images import SMALL_PADDING_MB as SMALL_MB
from bench.phases import PHASES
from bench.relay import CONNECT_BATCH
from bench.services import LIFTED_POOL as LIFTED

FLOW_NAMES = {UPDATER: "(a) this updater, POST /update?wait=true", NAIVE: "(b) naive: stop, rm, pull, run",
              FLOOR: "(c) floor: stop, rm, run (image present)"}
DOWNTIME_FLOOR_TARGET, DOWNTIME_NAIVE_TARGET = 1.2, 0.25
# Probes that hang at the stop itself add up to a few hundred ms; the proxy stall to the best part of a second.
PROXY_STALL_SECONDS = 0.5
RELAY_P99_TARGET_MS, RELAY_TARGET_CLIENTS = 50.0, 500
SPEEDUP_TARGET, SPEEDUP_WORKERS = 2.5, 4


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def downtime_stats(results: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """size -> flow -> medians, spread and (updater) median phases."""
    stats: dict[str, dict[str, dict[str, Any]]] = {}
    for sample in results.get("downtime", []):
        entry = stats.setdefault(sample["size"], {}).setdefault(sample["flow"], {"samples": []})
        entry["samples"].append(sample)
    for flows in stats.values():
        for entry in flows.values():
            samples = entry.pop("samples")
            down = [s["downtime"] for s in samples]
            entry |= {"runs": len(samples), "downtime": statistics.median(down), "min": min(down), "max": max(down),
                      "end_to_end": statistics.median(s["end_to_end"] for s in samples),
                      "stalled_runs": sum(1 for s in samples if s["stalled_seconds"] >= PROXY_STALL_SECONDS)}
            phased = [s["phases"] for s in samples if s["phases"]]
            if phased:
                entry["phases"] = {p: statistics.median(s[p] for s in phased) for p in PHASES}
            # From the stop until the new container has started: the job's swap phase, the CLI's wall time.
            entry["engine_window"] = entry["phases"]["swap"] if phased else entry["end_to_end"]
    return stats


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    stats = downtime_stats(results)
    rows = []
    size = "large" if "large" in stats else "small"
    down = stats.get(size, {})
    if {UPDATER, NAIVE, FLOOR} <= down.keys():
        a, b, c = (down[f]["downtime"] for f in (UPDATER, NAIVE, FLOOR))
        quick = "" if size == "large" else " (quick run: small image, the target is for the large one)"
        rows.append({"target": f"downtime ≤ {DOWNTIME_FLOOR_TARGET}× floor, large image", "measured":
                     f"{a / c:.2f}× ({_ms(a)} vs {_ms(c)}){quick}", "met": a <= DOWNTIME_FLOOR_TARGET * c,
                     "why": _why_floor(down)})
        rows.append({"target": f"downtime ≤ {DOWNTIME_NAIVE_TARGET}× naive, large image", "measured":
                     f"{a / b:.2f}× ({_ms(a)} vs {_ms(b)}){quick}", "met": a <= DOWNTIME_NAIVE_TARGET * b,
                     "why": _why_naive(down, results.get("images", {}).get(size, 0.0))})
    shipped = [r for run in results.get("relay", []) if run["setup"] == "as shipped" for r in run["results"]]
    most = max(shipped, key=lambda r: r["clients"], default=None)
    if most is not None:
        met = most["served"] >= RELAY_TARGET_CLIENTS and most["p99_ms"] <= RELAY_P99_TARGET_MS
        rows.append({"target": f"log relay p99 ≤ {RELAY_P99_TARGET_MS:g} ms with {RELAY_TARGET_CLIENTS} clients",
                     "measured": f"p99 {most['p99_ms']:.0f} ms, {most['served']} of {most['clients']} clients served",
                     "met": met, "why": _why_relay(results)})
    fan = {r["workers"]: r for r in results.get("throughput", [])}
    if 1 in fan and SPEEDUP_WORKERS in fan:
        speedup = fan[1]["wall_seconds"] / fan[SPEEDUP_WORKERS]["wall_seconds"]
        rows.append({"target": f"{SPEEDUP_WORKERS} workers ≥ {SPEEDUP_TARGET}× faster than 1, "
                               f"{fan[1]['containers']} containers",
                     "measured": f"{speedup:.2f}× ({fan[1]['wall_seconds']:.1f} s → "
                                 f"{fan[SPEEDUP_WORKERS]['wall_seconds']:.1f} s)",
                     "met": speedup >= SPEEDUP_TARGET, "why": _why_speedup(fan)})
    return rows


def _why_floor(down: dict[str, dict[str, Any]]) -> str:
    a, c = down[UPDATER]["engine_window"], down[FLOOR]["engine_window"]
    return (f"The updater's window is the old container's stop, its rename to the backup name, and the create and "
            f"start of the new one through the Engine API: {_ms(a)} (median swap phase, job log), against the "
            f"floor's three docker CLI calls, {_ms(c)}. Both downtimes carry the proxy stall. The spread under this "
            f"machine's background load was {_ms(down[UPDATER]['min'])}–{_ms(down[UPDATER]['max'])} for the "
            f"updater and {_ms(down[FLOOR]['min'])}–{_ms(down[FLOOR]['max'])} for the floor. To go below the floor, "
            "create the new container before stopping the old one (under a temporary name, renamed after the "
            "stop), so only the stop, two renames and the start remain in the window; the journal and recovery "
            "would have to know the temporary name.")


def _why_naive(down: dict[str, dict[str, Any]], megabytes: float) -> str:
    a, b, c = (down[f]["downtime"] for f in (UPDATER, NAIVE, FLOOR))
    pull = max(b - c, 0.001)
    needed = a / DOWNTIME_NAIVE_TARGET - c
    windows = down[UPDATER]["engine_window"] / down[NAIVE]["engine_window"]
    return (f"The naive flow is down for the pull too, and this registry is on loopback: {megabytes:.0f} MB in about "
            f"{pull:.1f} s ({megabytes / pull:.0f} MB/s; naive minus floor). What the updater does during the pull "
            f"does not count, so its ratio is its swap over the naive swap plus the pull: it reaches "
            f"{DOWNTIME_NAIVE_TARGET}× once the pull takes {needed:.1f} s or more, i.e. whenever the image "
            f"arrives at {megabytes / needed:.0f} MB/s ({megabytes * 8 / needed:.0f} Mbit/s) or slower, as it does "
            f"from a registry across the internet. Without the proxy stall, on the stop → started windows, the "
            f"ratio is {windows:.2f}×. On loopback only a shorter swap (see the row above) improves it.")


def _why_relay(results: dict[str, Any]) -> str:
    runs = {run["setup"]: run for run in results.get("relay", [])}
    shipped = runs.get("as shipped")
    lifted = next((run for setup, run in runs.items() if setup != "as shipped" and "deflate" not in setup), None)
    plain = next((run for setup, run in runs.items() if "deflate" in setup), None)
    parts = []
    if shipped and shipped["close_reasons"]:
        parts.append(f"As shipped, the API closed the clients past about 100 with `{shipped['close_reasons'][0]}`: "
                     "every /ws/logs client holds its own Redis pub/sub connection from the API's asyncio pool, "
                     f"and redis-py's ({results['environment'].get('redis_py')}) pool allows 100 by default.")
    if lifted and lifted["results"]:
        top = lifted["results"][-1]
        per_client = top["api_cpu_ms_per_message"] * 1000 / max(top["served"], 1)
        parts.append(f"With the pool limit lifted (`{lifted['setup']}`), {top['served']} clients were served with "
                     f"p50 {top['p50_ms']:.0f} ms and p99 {top['p99_ms']:.0f} ms; the API spent "
                     f"{top['api_cpu_ms_per_message']:.0f} ms of CPU per line ({per_client:.0f} µs per client: one "
                     "Redis read, json.loads, send_json re-encoding and permessage-deflate, per client), and this "
                     f"benchmark's clients {top['client_cpu_ms_per_message']:.0f} ms per line, on the same 2 cores.")
    if plain and plain["results"]:
        top = plain["results"][-1]
        parts.append(f"Without permessage-deflate the same {top['served']} clients saw p99 {top['p99_ms']:.0f} ms "
                     f"(API {top['api_cpu_ms_per_message']:.0f} ms CPU per line).")
    parts.append("Fix: one LOG_CHANNEL subscription per API process that fans each line out to per-client queues "
                 "(the broadcaster pattern), decoding it once and sending the raw JSON text, so the Redis connections "
                 "stop growing with the clients and the per-client work shrinks to a queue put and a frame write; "
                 "and a blocking pool (`redis.asyncio.BlockingConnectionPool`) for the API, so a burst of clients "
                 "reading the history at once waits for a connection instead of being closed.")
    return " ".join(parts)


def _why_speedup(fan: dict[int, dict[str, Any]]) -> str:
    one, many = fan[1], fan[SPEEDUP_WORKERS]
    grew = {p: (one["mean_phases"].get(p, 0.0), many["mean_phases"].get(p, 0.0)) for p in many["mean_phases"]}
    listing = ", ".join(f"{p} {a:.2f} → {b:.2f} s" for p, (a, b) in grew.items())
    return (f"A job took {one['mean_job_seconds']:.2f} s alone and {many['mean_job_seconds']:.2f} s with "
            f"{SPEEDUP_WORKERS} running at once (mean phases, 1 → {SPEEDUP_WORKERS} workers: {listing}). The "
            "health gate's settle time is a sleep and overlaps perfectly; the engine work (stop, create, start, and "
            "inspecting every container) is CPU in dockerd, containerd and runc, and this machine has 2 cores. "
            f"Submitting the {one['containers']} POSTs took {many['submit_seconds']:.1f} s of the wall time.")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def downtime_section(results: dict[str, Any]) -> str:
    stats = downtime_stats(results)
    parts = []
    for size, flows in stats.items():
        mb = results.get("images", {}).get(size, 0.0)
        rows = [[FLOW_NAMES[f], _ms(flows[f]["downtime"]), f"{_ms(flows[f]['min'])}–{_ms(flows[f]['max'])}",
                 _ms(flows[f]["engine_window"]), f"{flows[f]['stalled_runs']}/{flows[f]['runs']}",
                 f"{flows[f]['end_to_end']:.2f} s"] for f in FLOWS if f in flows]
        parts.append(f"**{size} image** ({mb:.0f} MB)\n\n" + _table(
            ["flow", "downtime (median)", "min–max", "stop → new one started", "runs with a proxy stall",
             "end to end (median)"], rows))
        if {UPDATER, NAIVE, FLOOR} <= flows.keys():
            a, b, c = (flows[f]["downtime"] for f in (UPDATER, NAIVE, FLOOR))
            e2e = flows[UPDATER]["end_to_end"] / flows[FLOOR]["end_to_end"]
            parts.append(f"Downtime a/c = **{a / c:.2f}×**, a/b = **{a / b:.2f}×**; end to end a/c = {e2e:.1f}×.")
        phases = flows.get(UPDATER, {}).get("phases")
        if phases:
            parts.append("Where the updater's end-to-end time goes (median seconds, from the job log): "
                         + ", ".join(f"{p} {v:.2f}" for p, v in phases.items()) + ".")
    if stats:
        parts.append(PROXY_STALL)
    return "\n\n".join(parts)


def relay_section(results: dict[str, Any]) -> str:
    rows = []
    for run in results.get("relay", []):
        for r in run["results"]:
            rows.append([run["setup"], str(r["clients"]), str(r["served"]),
                         f"{r['received']}/{r['clients'] * r['messages']}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                         f"{r['max_ms']:.1f}", f"{r['api_rss_mib']:.0f}", f"{r['api_cpu_ms_per_message']:.1f}",
                         f"{r['client_cpu_ms_per_message']:.1f}"])
    idle = "; ".join(f"{run['setup']}: {run['idle_rss_mib']:.0f} MiB" for run in results.get("relay", []))
    reasons = sorted({reason for run in results.get("relay", []) for reason in run["close_reasons"]})
    text = _table(["setup", "clients", "served", "lines received", "p50 ms", "p99 ms", "max ms", "API RSS MiB",
                   "API CPU ms/line", "client CPU ms/line"], rows)
    text += f"\n\nAPI RSS before the first client (a fresh API process per setup): {idle}."
    if reasons:
        text += " The API closed clients with: " + "; ".join(f"`{r}`" for r in reasons) + "."
    return text


def throughput_section(results: dict[str, Any]) -> str:
    fan = results.get("throughput", [])
    if not fan:
        return ""
    base = fan[0]["wall_seconds"] if fan[0]["workers"] == 1 else None
    rows = [[str(r["workers"]), str(r["containers"]), f"{r['wall_seconds']:.1f} s",
             f"{base / r['wall_seconds']:.2f}×" if base else "", f"{r['mean_job_seconds']:.2f} s",
             f"{r['submit_seconds']:.1f} s", f"{r['finished']}/{r['containers']}"] for r in fan]
    text = _table(["workers", "containers", "wall time", "speedup vs 1", "mean job", "POSTs took", "finished"], rows)
    phases = ("; ".join(f"{r['workers']} worker(s): " + ", ".join(f"{p} {v:.2f}" for p, v in r["mean_phases"].items())
                        for r in fan))
    text += f"\n\nMean phases of one job (seconds, from the job logs): {phases}."
    stops = results.get("worker_stops") or {}
    if stops.get("killed"):
        were = "was" if stops["killed"] == 1 else "were"
        text += (f"\n\n{stops['killed']} of the {stops['stopped']} worker processes this run stopped did not exit "
                 f"within {stops['grace_seconds']:g} s of SIGTERM and {were} killed. After a warm shutdown RQ stops "
                 "its pub/sub thread, and redis-py's `PubSubWorkerThread.stop()` joins that thread, which can sit "
                 "in `get_message(timeout=60)` (RQ's `sleep_time`) for up to a minute (redis-py "
                 f"{results['environment'].get('redis_py')}). The updates themselves were done; only the exit is late.")
    return text


def targets_section(results: dict[str, Any]) -> str:
    rows = targets(results)
    table = _table(["target", "measured", ""], [[t["target"], t["measured"], "met" if t["met"] else "**missed**"]
                                                for t in rows])
    notes = [f"- **{t['target']}**: {t['why']}" for t in rows if not t["met"]]
    return table + ("\n\nWhy the missed ones were missed, and what would fix them:\n\n" + "\n".join(notes)
                    if notes else "")


PROXY_STALL = """\
**The proxy stall.** In some runs of every flow, about 0.8 s of the downtime is not the update's: the probes
that reach docker-proxy after it has bound the port but before the new container's network answers are
accepted, then wait for TCP's 1-second SYN retransmission on the proxy's side, and all the probes in that
window are answered together about 1 s after the first. "Runs with a proxy stall" counts the runs whose
probes spent 0.5 s or more accepted but unanswered (a probe that meets the old container as it stops adds a
few hundred ms at most). How often it strikes varies from one run of the benchmark to the next. A client
that first connects after the container has started is answered at once: while building this benchmark, with
the prober paused until `docker run` returned, the first probe was answered immediately, 0.42–0.53 s after
the stop. The stall is the engine's userland proxy and hits all three flows alike; "stop → new one started"
is the downtime without it (the job's swap phase for the updater, the CLI's wall time for the others)."""


METHOD = """\
## How it is measured

- **Downtime**: a prober thread asks the app's published port on 127.0.0.1 for its page every 10 ms (HTTP/1.0
  over a fresh TCP connection, 250 ms timeout); the downtime is the longest time between two answers while one
  update runs. The three flows update the same container in turn, round after round, so background load
  falls on all three alike. The naive flow and the updater pull for real: the new image is deleted locally
  before each of their runs, and pulled from the private registry on loopback. The floor runs with the image
  present. The small image is busybox plus a {small} MB layer, the large one a {large} MB layer of random bytes
  that gzip cannot shrink; every layer above busybox differs between the two versions. The test app has no
  healthcheck, so the health gate only waits out the settle period.
- **End to end**: from the POST to its answer (`?wait=true` answers when the job has finished), against the
  wall time of the CLI commands. The updater runs with `UPDATER_SETTLE_SECONDS={settle}`: the settle period
  runs while the new container already serves, so it adds end-to-end time but no downtime.
- **Log relay**: a child process publishes log lines through `worker.joblog.JobLog.publish`, as the worker
  does, each carrying its CLOCK_MONOTONIC send time, {interval:g} s apart; WebSocket clients of the API's
  `/ws/logs` (all in one asyncio process, `websockets`, permessage-deflate offered as browsers do) note when
  each line arrives. Clients connect {batch} at a time and stay connected from one round to the next; the
  latency includes their own work on the same 2 cores. Three setups, each a fresh API process: as shipped;
  with `?{lifted}` on REDIS_URL, which lifts redis-py's connection pool limit without a code change; and
  that again with clients that do not offer permessage-deflate.
- **Fan-out**: {containers} containers of the small image, updated to the other version by {workers} workers;
  wall time from the first POST (no wait) until every job has finished or failed. The new image is present
  locally before the POSTs, so this measures the updates rather than one shared pull.
"""


def render(results: dict[str, Any]) -> str:
    env, plan = results["environment"], results["plan"]
    quick = plan["mode"] == "quick"
    head = ["# Benchmark results", ""]
    if quick:
        head += ["> **Quick run** (`--quick`): small image only, fewer rounds, fewer lines and containers. Not the "
                 "full benchmark; run `python3 -m bench.run` for that.", ""]
    head += [f"`python3 -m bench.run{' --quick' if quick else ''}` on {env['date']}, commit {env['commit']}: "
             f"{env['cores']} cores, Docker {env['docker']}, Python {env['python']}, kernel {env['kernel']}. "
             f"Load average before {_load(env['load_before'])}, after {_load(env.get('load_after'))}; "
             f"took {results.get('duration_seconds', 0):.0f} s. Run id `{results['run_id']}`; everything it created "
             + ("was removed." if not results.get("leftovers") else f"was removed except {results['leftovers']}."),
             ""]
    sections = ["## Targets", targets_section(results), "## Downtime and end to end", downtime_section(results),
                "## Log relay", relay_section(results), "## Fan-out", throughput_section(results),
                METHOD.format(batch=CONNECT_BATCH, small=SMALL_MB, large=LARGE_MB, settle=results["settle_seconds"],
                              interval=plan["relay_interval"], lifted=LIFTED, containers=plan["fan_out_containers"],
                              workers=", ".join(map(str, plan["fan_out_workers"])))]
    return "\n".join(head) + "\n" + "\n\n".join(sections) + "\n"


def summary(results: dict[str, Any]) -> str:
    """What the console shows: the targets and every table, without the method."""
    return "\n\n".join([targets_section(results).split("\n\nWhy")[0], downtime_section(results),
                        relay_section(results), throughput_section(results)])


def _load(load: list[float] | None) -> str:
    return " / ".join(f"{x:.2f}" for x in load) if load else "?"
