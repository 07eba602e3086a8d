// HMM-Local Updater web UI: plain JavaScript modules, no framework, no build step.

import { ApiError, api, askForToken, storedToken } from "./api.js";
import { $, badge, el, icon, replaceChildrenKeepingFocus } from "./dom.js";
import { formatDuration, parseTime, plainMessage, splitImage, timeAgo } from "./format.js";
import { LiveLog, LogStream, logLine } from "./log.js";

const ACTIVE = new Set(["queued", "started", "deferred", "scheduled"]);
const DONE = new Set(["finished", "failed", "stopped", "canceled"]);
const FINAL_LINE = /^(✅|❌|↩️|🚨)/;
const LATEST_MAX_AGE_MS = 5 * 60 * 1000;
const BACKUP_SUFFIX = "-hmm-backup";
const JOB_STATUS = {
  finished: ["Succeeded", "ok"],
  failed: ["Failed", "bad"],
  started: ["Running", "accent"],
  queued: ["Queued", "muted"],
  deferred: ["Waiting", "muted"],
  scheduled: ["Scheduled", "muted"],
  stopped: ["Stopped", "warn"],
  canceled: ["Canceled", "warn"],
};

const state = {
  config: { target_container: "hmm-local", tag_prefix: "main-", token_required: false },
  containers: [],
  containersError: null,
  jobs: [],
  latest: new Map(), // container name -> answer of GET /images/latest
  tracked: new Map(), // job id -> { container, step }: jobs whose outcome the page waits for
  starting: new Set(), // container names whose POST /update is in flight
};

let liveLog;

// ---------- Service health ----------

function setChip(id, tone, text) {
  const chip = $(id);
  chip.dataset.tone = tone;
  chip.lastElementChild.textContent = text;
}

async function refreshHealth() {
  try {
    const { body } = await api("health", { allow: [503] });
    setChip("chip-redis", body.redis ? "ok" : "bad", body.redis ? "Redis: connected" : "Redis: unreachable");
    const workers = body.workers === 1 ? "1 worker" : `${body.workers} workers`;
    setChip("chip-workers", body.workers > 0 ? "ok" : "bad", body.workers > 0 ? workers : "No worker running");
    $("version").textContent = body.version ? `· v${body.version}` : "";
  } catch {
    setChip("chip-redis", "muted", "Redis: unknown");
    setChip("chip-workers", "bad", "API unreachable");
  }
}

function setStreamState(mode, delay = 0) {
  const label = $("log-state");
  if (mode === "live") {
    setChip("chip-stream", "ok", "Log: live");
    label.dataset.tone = "ok";
    label.textContent = "Live";
    return;
  }
  liveLog.markDisconnected();
  setChip("chip-stream", "warn", mode === "auth" ? "Log: token needed" : "Log: reconnecting…");
  label.dataset.tone = "warn";
  label.textContent = mode === "auth" ? "Token needed" : `Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s`;
}

// ---------- Containers ----------

function stateTone(status) {
  if (status === "running") return "ok";
  return ["restarting", "paused", "created"].includes(status) ? "warn" : "bad";
}

const healthText = (health) => health || "no healthcheck";
const healthTone = (health) => ({ healthy: "ok", starting: "warn", unhealthy: "bad" })[health] || "muted";

function uptime(container) {
  const started = parseTime(container.started_at);
  if (!started || container.state !== "running") return "not running";
  return formatDuration((Date.now() - started) / 1000);
}

const isTarget = (name) => name === state.config.target_container;
const hasMainTag = (image) => splitImage(image).tag.startsWith(state.config.tag_prefix);

function jobFor(name) {
  for (const [id, info] of state.tracked) if (info.container === name) return { id, ...info };
  return null;
}

const isBusy = (name) => Boolean(jobFor(name)) || state.starting.has(name);

async function refreshContainers() {
  try {
    const { status, body } = await api("containers", { allow: [503] });
    state.containersError = status === 200 ? null : body?.error || "The container list is not available";
    if (status === 200) state.containers = body.containers;
  } catch (error) {
    state.containersError = error instanceof ApiError ? error.message : "The API is not reachable";
  }
  renderContainers();
  checkLatestImages();
}

function renderContainers() {
  renderTarget();
  const others = state.containers.filter((c) => !isTarget(c.name));
  $("containers-count").textContent = others.length ? String(others.length) : "";
  $("containers-empty").hidden = others.length > 0;
  $("containers-empty").textContent = state.containersError || "No other containers.";
  replaceChildrenKeepingFocus($("containers"), others.map(containerRow));
}

function renderTarget() {
  const name = state.config.target_container;
  const container = state.containers.find((c) => c.name === name);
  $("target-title").textContent = name;
  const stateBadge = $("target-state");
  if (container) {
    const { repo, tag } = splitImage(container.image);
    stateBadge.textContent = container.state;
    stateBadge.dataset.tone = stateTone(container.state);
    $("target-image").replaceChildren(el("span", { class: "mono", text: repo, title: container.image }));
    $("target-tag").replaceChildren(el("span", { class: "tag", text: tag }));
    $("target-health").replaceChildren(badge(healthText(container.health), healthTone(container.health)));
    $("target-uptime").textContent = uptime(container);
  } else {
    stateBadge.textContent = state.containersError ? "unknown" : "not found";
    stateBadge.dataset.tone = state.containersError ? "muted" : "bad";
    for (const id of ["target-image", "target-tag", "target-health", "target-uptime"]) $(id).textContent = "—";
  }
  renderAvailability($("target-latest"), container);

  const job = jobFor(name);
  $("target-progress").hidden = !isBusy(name);
  $("target-step").textContent = job ? job.step : "Starting the update…";
  $("update-target").disabled = isBusy(name);
  $("update-target").setAttribute("aria-busy", String(isBusy(name)));
}

function renderAvailability(node, container) {
  const prefix = state.config.tag_prefix;
  const latest = container && state.latest.get(container.name);
  let [tone, iconName, text] = ["muted", "i-info", ""];
  if (!container) {
    text = state.containersError || `No container named ${state.config.target_container} was found.`;
  } else if (!hasMainTag(container.image)) {
    text = `This image is not tagged ${prefix}<sha>, so there is no newer build to look for.`;
  } else if (!latest || latest.current_image !== container.image) {
    text = `Checking for a newer ${prefix}<sha> image…`;
  } else if (latest.update_available) {
    [tone, iconName] = ["accent", "i-update"];
    text = `Newer image available: ${splitImage(latest.latest_image).tag}`;
  } else if (latest.latest_image) {
    [tone, iconName] = ["ok", "i-check"];
    text = `Up to date: ${splitImage(latest.latest_image).tag} is the newest build.`;
  } else {
    text = `Could not check for a newer image: ${latest.detail}`;
  }
  node.dataset.tone = tone;
  node.replaceChildren(icon(iconName), el("span", { text }));
}

function containerRow(container) {
  const { name } = container;
  const { repo, tag } = splitImage(container.image);
  const latest = state.latest.get(name);
  const newer = latest?.current_image === container.image && latest.update_available;
  const job = jobFor(name);
  return el("li", { class: "container-row", dataset: { container: name } },
    el("div", { class: "container-name" },
      el("span", { text: name }),
      badge(container.state, stateTone(container.state)),
      newer ? badge(`${splitImage(latest.latest_image).tag} available`, "accent") : null,
      name.endsWith(BACKUP_SUFFIX) ? badge("backup", "warn") : null),
    el("button", {
      type: "button", class: "btn btn-small", disabled: isBusy(name), "aria-label": `Update ${name}`,
      dataset: { focusKey: `update:${name}` }, onclick: () => openConfirm(name),
    }, isBusy(name) ? "Updating…" : "Update…"),
    el("div", { class: "container-meta" },
      el("span", { class: "container-image", title: container.image },
        `${repo}:`, el("span", { class: "tag", text: tag })),
      el("span", { text: `Health: ${healthText(container.health)}` }),
      el("span", { text: container.state === "running" ? `Up ${uptime(container)}` : "Not running" })),
    job ? el("div", { class: "container-step progress" },
      el("span", { class: "spinner" }), el("span", { text: job.step })) : null);
}

let latestChecking = false;

// One container at a time: the API resolves through GitHub, whose unauthenticated rate limit is low.
async function checkLatestImages() {
  if (latestChecking) return;
  latestChecking = true;
  try {
    for (const container of state.containers) {
      // A backup lives only while an update runs: asking for it races its removal (a 404 in the console).
      if (!hasMainTag(container.image) || container.name.endsWith(BACKUP_SUFFIX)) continue;
      const known = state.latest.get(container.name);
      if (known?.current_image === container.image && Date.now() - known.fetched < LATEST_MAX_AGE_MS) continue;
      try {
        const { body } = await api(`images/latest?container=${encodeURIComponent(container.name)}`);
        state.latest.set(container.name, { ...body, fetched: Date.now() });
      } catch {
        continue; // the container went away or the API is down: the next refresh asks again
      }
      renderContainers();
    }
  } finally {
    latestChecking = false;
  }
}

// The worker republishes the container list every few seconds; until then the list shows the old container.
async function refreshContainersUntilSettled(job, tries = 10) {
  await refreshContainers();
  const container = state.containers.find((c) => c.name === job.container_name);
  const backupLeft = state.containers.some((c) => c.name === `${job.container_name}${BACKUP_SUFFIX}`);
  const replaced = job.status !== "finished" || !job.container_id || container?.id === job.container_id;
  if ((!container || backupLeft || !replaced) && tries > 1) {
    setTimeout(() => refreshContainersUntilSettled(job, tries - 1), 1500);
  }
}

// ---------- Starting an update ----------

function openConfirm(name) {
  const container = state.containers.find((c) => c.name === name);
  const latest = state.latest.get(name);
  const known = latest?.latest_image && latest.current_image === container?.image;
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = `Update ${name}?`;
  $("confirm-current").replaceChildren(el("span", { class: "mono", text: container?.image || "unknown" }));
  const newest = `the newest ${state.config.tag_prefix}<sha> image, resolved when the update starts`;
  $("confirm-new").dataset.default = known ? latest.latest_image : newest;
  $("confirm-new").textContent = $("confirm-new").dataset.default;
  $("confirm-image").value = "";
  dialog.returnValue = "";
  dialog.dataset.container = name;
  dialog.showModal();
}

function confirmClosed() {
  const dialog = $("confirm-dialog");
  if (dialog.returnValue === "confirm") startUpdate(dialog.dataset.container, $("confirm-image").value.trim() || null);
}

async function startUpdate(name, image) {
  state.starting.add(name);
  renderContainers();
  const request = { container_name: name };
  if (image) request.new_image = image;
  try {
    const { body } = await api("update", { method: "POST", json: request });
    hideBanner();
    track(body.job_id, name, `Queued: update to ${body.new_image || "the newest image"}`);
    refreshJobs();
  } catch (error) {
    if (error.status === 409 && error.body?.job_id) {
      track(error.body.job_id, name, "Already running");
      showBanner("warn", `An update of ${name} is already running`, [error.message]);
    } else {
      const reason = error instanceof ApiError ? error.message : "The API is not reachable.";
      showBanner("bad", `Could not start the update of ${name}`, [reason]);
    }
  } finally {
    state.starting.delete(name);
    renderContainers();
  }
}

// ---------- Following a job to its outcome ----------

const checkTimers = new Map();

function track(jobId, container, step) {
  if (!state.tracked.has(jobId)) state.tracked.set(jobId, { container, step: step || "Queued" });
  renderContainers();
  scheduleCheck(jobId, 1500);
}

function scheduleCheck(jobId, delay) {
  clearTimeout(checkTimers.get(jobId));
  checkTimers.set(jobId, setTimeout(() => checkJob(jobId), delay));
}

async function checkJob(jobId) {
  if (!state.tracked.has(jobId)) return;
  let job;
  try {
    job = (await api(`jobs/${encodeURIComponent(jobId)}`)).body;
  } catch (error) {
    if (error.status === 404) state.tracked.delete(jobId);
    else scheduleCheck(jobId, 3000); // the API is down or restarting: ask again
    renderContainers();
    return;
  }
  if (!DONE.has(job.status)) {
    scheduleCheck(jobId, 2500);
    return;
  }
  state.tracked.delete(jobId);
  checkTimers.delete(jobId);
  showOutcome(job);
  renderContainers();
  refreshContainersUntilSettled(job);
  refreshJobs();
}

function onLogEntry(entry) {
  if (!liveLog.add(entry)) return;
  const tracked = state.tracked.get(entry.job_id);
  if (tracked) {
    tracked.step = plainMessage(entry.message);
    scheduleCheck(entry.job_id, FINAL_LINE.test(entry.message) ? 200 : 2500);
    renderContainers();
  } else if (!state.jobs.some((job) => job.id === entry.job_id)) {
    refreshJobsSoon(); // an update started elsewhere: follow it too
  }
}

function rollbackOutcome(log) {
  const messages = log.map((entry) => entry.message);
  const failed = messages.find((m) => m.includes("ROLLBACK FAILED"));
  if (failed) return { tone: "bad", text: plainMessage(failed) };
  const rolledBack = messages.findLast((m) => m.startsWith("↩️") || /runs .* again/.test(m));
  if (rolledBack) return { tone: "ok", text: plainMessage(rolledBack) };
  if (!messages.some((m) => m.includes("Stopping"))) {
    return { tone: "ok", text: "Nothing was changed: the old container was never stopped." };
  }
  return { tone: "warn", text: "The outcome is unknown: check the container." };
}

function showOutcome(job) {
  const name = job.container_name || "the container";
  if (job.status === "finished") {
    const result = job.result || {};
    if (result.updated === false) {
      showBanner("ok", `${name} is already up to date`, [result.message || ""]);
      return;
    }
    const id = result.container_id || job.container_id || "";
    showBanner("ok", `${name} updated`, [
      el("span", {}, "New container id ", el("span", { class: "mono", title: id, text: id.slice(0, 12) })),
      el("span", {}, "Now running ", el("span", { class: "mono", text: result.new_image || job.new_image || "" })),
    ]);
    return;
  }
  const outcome = rollbackOutcome(job.log || []);
  showBanner("bad", `Update of ${name} failed`, [
    el("span", { text: job.error || `The job ended as ${job.status}.` }),
    el("span", { class: "banner-rollback", dataset: { tone: outcome.tone } },
      el("strong", { text: "Rollback: " }), outcome.text),
  ]);
}

const BANNER_ICONS = { ok: "#i-check", bad: "#i-error", warn: "#i-warning" };

function showBanner(tone, title, lines) {
  const banner = $("banner");
  banner.dataset.tone = tone;
  banner.querySelector(".banner-icon use").setAttribute("href", BANNER_ICONS[tone]);
  $("banner-title").textContent = title;
  const nodes = lines.map((line) => (typeof line === "string" ? el("span", { text: line }) : line));
  $("banner-text").replaceChildren(...nodes);
  banner.hidden = false;
  // The banner appears rather than changes, so screen readers hear about it through a standing live region.
  $("announcer").textContent = `${title}. ${$("banner-text").textContent}`;
}

function hideBanner() {
  $("banner").hidden = true;
}

// ---------- Job history ----------

function jobDuration(job) {
  const start = parseTime(job.started_at);
  if (!start) return "";
  const end = parseTime(job.ended_at);
  return end ? formatDuration((end - start) / 1000) : `running ${formatDuration((Date.now() - start) / 1000)}`;
}

function imageChange(job) {
  const from = job.old_image ? splitImage(job.old_image).tag : "?";
  const to = job.new_image ? splitImage(job.new_image).tag : "newest";
  return `${from} → ${to}`;
}

async function refreshJobs() {
  try {
    state.jobs = (await api("jobs?limit=30")).body.jobs;
  } catch {
    return;
  }
  for (const job of state.jobs) {
    if (ACTIVE.has(job.status) && !state.tracked.has(job.id)) track(job.id, job.container_name, plainMessage(job.step));
  }
  renderJobs();
}

let jobsRefreshTimer = null;

function refreshJobsSoon() {
  clearTimeout(jobsRefreshTimer);
  jobsRefreshTimer = setTimeout(refreshJobs, 500);
}

function renderJobs() {
  $("jobs-count").textContent = state.jobs.length ? String(state.jobs.length) : "";
  $("jobs-empty").hidden = state.jobs.length > 0;
  replaceChildrenKeepingFocus($("jobs"), state.jobs.map(jobRow));
}

function jobRow(job) {
  const [label, tone] = JOB_STATUS[job.status] || [job.status, "muted"];
  const duration = jobDuration(job);
  const summary = `${label}: ${job.container_name}, ${imageChange(job)}${duration ? `, ${duration}` : ""}`;
  return el("li", {},
    el("button", {
      type: "button", class: "job-row", dataset: { focusKey: `job:${job.id}`, job: job.id },
      title: `${job.old_image || "?"} → ${job.new_image || "newest"}`, "aria-label": `${summary}. Show its log.`,
      onclick: () => openJob(job.id),
    },
    badge(label, tone),
    el("span", { class: "job-main" },
      el("span", { class: "job-name", text: job.container_name || job.description || job.id }),
      el("span", { class: "job-images", text: imageChange(job) })),
    el("span", { class: "job-when" },
      el("span", { text: duration }), el("br"), el("span", { text: timeAgo(parseTime(job.enqueued_at)) }))));
}

async function openJob(jobId) {
  let job;
  try {
    job = (await api(`jobs/${encodeURIComponent(jobId)}`)).body;
  } catch (error) {
    showBanner("bad", "Could not load the job", [error.message]);
    return;
  }
  const [label] = JOB_STATUS[job.status] || [job.status];
  $("job-title").textContent = `${label}: ${job.container_name || job.id}`;
  const facts = [
    ["From", job.old_image, "wide"], ["To", job.new_image, "wide"],
    ["Started", parseTime(job.started_at)?.toLocaleString()], ["Duration", jobDuration(job)],
    ["New container id", job.container_id?.slice(0, 12)], ["Job id", job.id],
  ];
  $("job-facts").replaceChildren(...facts.filter(([, value]) => value).map(([term, value, wide]) =>
    el("div", { class: wide }, el("dt", { text: term }), el("dd", { class: "mono", text: value }))));
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error || "";
  const lines = job.log.map(logLine);
  $("job-log").replaceChildren(...(lines.length ? lines : [el("li", { class: "log-divider", text: "No log lines." })]));
  $("job-dialog").showModal();
}

// ---------- Start ----------

async function loadConfig() {
  try {
    state.config = { ...state.config, ...(await api("config")).body };
  } catch {
    // an API without GET /config: keep the defaults
  }
  $("target-title").textContent = state.config.target_container;
  for (const node of document.querySelectorAll(".prefix")) node.textContent = state.config.tag_prefix;
}

function onReconnected() {
  liveLog.markReconnected();
  refreshHealth();
  refreshContainers();
  refreshJobs();
  for (const jobId of state.tracked.keys()) scheduleCheck(jobId, 200);
}

function wireEvents() {
  liveLog = new LiveLog($("log"), {
    empty: $("log-empty"), followButton: $("log-follow"), followText: $("log-follow-text"),
  });
  $("log-clear").addEventListener("click", () => liveLog.clear());
  $("banner-close").addEventListener("click", hideBanner);
  $("update-target").addEventListener("click", () => openConfirm(state.config.target_container));
  $("confirm-dialog").addEventListener("close", confirmClosed);
  $("confirm-image").addEventListener("input", (event) => {
    const override = event.target.value.trim();
    $("confirm-new").textContent = override || $("confirm-new").dataset.default;
  });
  $("confirm-image").addEventListener("keydown", (event) => {
    // Enter in the field means "go", not the form's first button (Cancel).
    if (event.key !== "Enter") return;
    event.preventDefault();
    $("confirm-form").requestSubmit($("confirm-go"));
  });
  $("token-dialog").addEventListener("cancel", (event) => event.preventDefault());
}

async function start() {
  wireEvents();
  await loadConfig();
  if (state.config.token_required && !storedToken()) await askForToken(false);
  new LogStream({
    onEntry: onLogEntry, onState: setStreamState, onReconnect: onReconnected,
    tokenRequired: () => state.config.token_required,
  }).connect();
  await Promise.allSettled([refreshHealth(), refreshContainers(), refreshJobs()]);
  setInterval(refreshHealth, 10000);
  setInterval(refreshContainers, 10000);
  setInterval(refreshJobs, 20000);
}

start();
