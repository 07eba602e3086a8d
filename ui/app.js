// HMM-Local Updater web UI: plain JavaScript, no framework, no build step.

const TOKEN_KEY = "hmm-updater-token";
const ACTIVE = new Set(["queued", "started", "deferred", "scheduled"]);
const DONE = new Set(["finished", "failed", "stopped", "canceled"]);
const LEVEL_ICONS = { INFO: "i-info", WARNING: "i-warning", ERROR: "i-error" };
const MAX_LOG_LINES = 2000;
const LATEST_MAX_AGE_MS = 5 * 60 * 1000;
const BACKUP_SUFFIX = "-hmm-backup";

const $ = (id) => document.getElementById(id);

const state = {
  config: { target_container: "hmm-local", tag_prefix: "main-", token_required: false },
  containers: [],
  containersError: null,
  jobs: [],
  latest: new Map(), // container name -> answer of GET /images/latest
  tracked: new Map(), // job id -> { container, step }
  starting: new Set(), // container names whose POST /update is in flight
};

// ---------- DOM helpers ----------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function icon(name, className = "icon") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#${name}`);
  svg.append(use);
  return svg;
}

function badge(text, tone) {
  return el("span", { class: "badge", dataset: { tone }, text });
}

// Rebuilding a list must not throw the keyboard user's focus away.
function replaceChildrenKeepingFocus(parent, children) {
  const key = document.activeElement?.dataset?.focusKey;
  parent.replaceChildren(...children);
  if (key) parent.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}

// ---------- Formatting ----------

function parseTime(iso) {
  if (!iso) return null;
  // Docker gives nanoseconds; Date wants at most milliseconds.
  const date = new Date(iso.replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(date.getTime()) || date.getFullYear() < 2000 ? null : date;
}

function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function timeAgo(date) {
  if (!date) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 45) return "just now";
  return `${formatDuration(seconds).replace(/ \d+ (s|min)$/, "")} ago`;
}

function clock(date) {
  return date ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }) : "";
}

function splitImage(ref) {
  if (!ref) return { repo: "", tag: "" };
  const at = ref.indexOf("@");
  if (at >= 0) return { repo: ref.slice(0, at), tag: ref.slice(at + 1, at + 20) + "…" };
  const colon = ref.lastIndexOf(":");
  if (colon > ref.lastIndexOf("/")) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: "latest" };
}

function stateTone(status) {
  if (status === "running") return "ok";
  if (status === "restarting" || status === "paused" || status === "created") return "warn";
  return "bad";
}

function healthText(health) {
  return health ? health : "no healthcheck";
}

function healthTone(health) {
  return { healthy: "ok", starting: "warn", unhealthy: "bad" }[health] || "muted";
}

function uptime(container) {
  const started = parseTime(container.started_at);
  return started && container.state === "running" ? formatDuration((Date.now() - started) / 1000) : "not running";
}

// ---------- API client ----------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `The API answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = "GET", json, allow = [] } = {}) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const token = localStorage.getItem(TOKEN_KEY);
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: json === undefined ? undefined : JSON.stringify(json), cache: "no-store",
    });
    if (response.status === 401) {
      await askForToken(Boolean(token));
      continue;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok && !allow.includes(response.status)) throw new ApiError(response.status, body);
    return { status: response.status, body };
  }
  throw new ApiError(401, { error: "The API token was not accepted" });
}

// ---------- Token ----------

let tokenPrompt = null;

function askForToken(rejected) {
  if (tokenPrompt) return tokenPrompt;
  const dialog = $("token-dialog");
  $("token-error").hidden = !rejected;
  $("token-input").value = "";
  tokenPrompt = new Promise((resolve) => {
    dialog.addEventListener("close", function saved() {
      const value = $("token-input").value.trim();
      if (!value) {
        dialog.showModal(); // the page cannot work without it; keep asking
        return;
      }
      dialog.removeEventListener("close", saved);
      localStorage.setItem(TOKEN_KEY, value);
      tokenPrompt = null;
      resolve();
    });
  });
  dialog.showModal();
  return tokenPrompt;
}

// ---------- Status chips ----------

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

// ---------- Containers ----------

async function refreshContainers() {
  try {
    const { status, body } = await api("containers", { allow: [503] });
    if (status === 200) {
      state.containers = body.containers;
      state.containersError = null;
    } else {
      state.containersError = body?.error || "The container list is not available";
    }
  } catch (error) {
    state.containersError = error instanceof ApiError ? error.message : "The API is not reachable";
  }
  renderContainers();
  checkLatestImages();
}

function targetContainer() {
  return state.containers.find((c) => c.name === state.config.target_container);
}

function jobFor(name) {
  for (const [id, info] of state.tracked) if (info.container === name) return { id, ...info };
  return null;
}

function renderContainers() {
  renderTarget();
  const others = state.containers.filter((c) => c.name !== state.config.target_container);
  $("containers-count").textContent = others.length ? String(others.length) : "";
  const empty = $("containers-empty");
  empty.hidden = others.length > 0;
  empty.textContent = state.containersError || "No other containers.";
  replaceChildrenKeepingFocus($("containers"), others.map(containerRow));
}

function renderTarget() {
  const name = state.config.target_container;
  const container = targetContainer();
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
  const busy = Boolean(job) || state.starting.has(name);
  $("target-progress").hidden = !busy;
  $("target-step").textContent = job ? job.step : "Starting the update…";
  const button = $("update-target");
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
}

function renderAvailability(node, container) {
  const prefix = state.config.tag_prefix;
  const latest = container && state.latest.get(container.name);
  let tone = "muted";
  let text;
  let iconName = "i-info";
  if (!container) {
    text = state.containersError || `No container named ${state.config.target_container} was found.`;
  } else if (!splitImage(container.image).tag.startsWith(prefix)) {
    text = `This image is not tagged ${prefix}<sha>, so there is no newer build to look for.`;
  } else if (!latest || latest.current_image !== container.image) {
    text = `Checking for a newer ${prefix}<sha> image…`;
  } else if (latest.update_available) {
    tone = "accent";
    iconName = "i-update";
    text = `Newer image available: ${splitImage(latest.latest_image).tag}`;
  } else if (latest.latest_image) {
    tone = "ok";
    iconName = "i-check";
    text = `Up to date: ${splitImage(latest.latest_image).tag} is the newest build.`;
  } else {
    text = `Could not check for a newer image: ${latest.detail}`;
  }
  node.dataset.tone = tone;
  node.replaceChildren(icon(iconName), el("span", { text }));
}

function containerRow(container) {
  const { repo, tag } = splitImage(container.image);
  const latest = state.latest.get(container.name);
  const job = jobFor(container.name);
  const busy = Boolean(job) || state.starting.has(container.name);
  const newer = latest && latest.current_image === container.image && latest.update_available;
  return el("li", { class: "container-row", dataset: { container: container.name } },
    el("div", { class: "container-name" },
      el("span", { text: container.name }),
      badge(container.state, stateTone(container.state)),
      newer ? badge(`${splitImage(latest.latest_image).tag} available`, "accent") : null,
      container.name.endsWith(BACKUP_SUFFIX) ? badge("backup", "warn") : null),
    el("button", {
      type: "button", class: "btn btn-small", disabled: busy, "aria-label": `Update ${container.name}`,
      dataset: { focusKey: `update:${container.name}` }, onclick: () => openConfirm(container.name),
    }, busy ? "Updating…" : "Update…"),
    el("div", { class: "container-meta" },
      el("span", { class: "container-image", title: container.image }, `${repo}:`, el("span", { class: "tag", text: tag })),
      el("span", { text: `Health: ${healthText(container.health)}` }),
      el("span", { text: container.state === "running" ? `Up ${uptime(container)}` : "Not running" })),
    job ? el("div", { class: "container-step progress" }, el("span", { class: "spinner" }), el("span", { text: job.step })) : null);
}

let latestChecking = false;

async function checkLatestImages() {
  if (latestChecking) return;
  latestChecking = true;
  try {
    for (const container of state.containers) {
      if (!splitImage(container.image).tag.startsWith(state.config.tag_prefix)) continue;
      const known = state.latest.get(container.name);
      const fresh = known && known.current_image === container.image && Date.now() - known.fetched < LATEST_MAX_AGE_MS;
      if (fresh) continue;
      try {
        const { body } = await api(`images/latest?container=${encodeURIComponent(container.name)}`);
        state.latest.set(container.name, { ...body, fetched: Date.now() });
      } catch {
        continue; // the container went away or the API is down: try again on the next refresh
      }
      renderContainers();
    }
  } finally {
    latestChecking = false;
  }
}

// ---------- Updates ----------

function openConfirm(name) {
  const container = state.containers.find((c) => c.name === name);
  const latest = state.latest.get(name);
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = `Update ${name}?`;
  $("confirm-current").replaceChildren(el("span", { class: "mono", text: container ? container.image : "unknown" }));
  const newest = latest && latest.latest_image && latest.current_image === container?.image
    ? latest.latest_image : `the newest ${state.config.tag_prefix}<sha> image, resolved when the update starts`;
  $("confirm-new").replaceChildren(el("span", { class: "mono", text: newest }));
  $("confirm-image").value = "";
  dialog.returnValue = "";
  dialog.dataset.container = name;
  dialog.showModal();
}

function confirmClosed() {
  const dialog = $("confirm-dialog");
  if (dialog.returnValue !== "confirm") return;
  startUpdate(dialog.dataset.container, $("confirm-image").value.trim() || null);
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
  const info = state.tracked.get(jobId);
  if (!info) return;
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

// The worker republishes the container list every few seconds: until it does, the list shows the old container.
async function refreshContainersUntilSettled(job, tries = 10) {
  await refreshContainers();
  const container = state.containers.find((c) => c.name === job.container_name);
  const backupLeft = state.containers.some((c) => c.name === `${job.container_name}${BACKUP_SUFFIX}`);
  const replaced = job.status !== "finished" || !job.container_id || container?.id === job.container_id;
  if ((!container || backupLeft || !replaced) && tries > 1) {
    setTimeout(() => refreshContainersUntilSettled(job, tries - 1), 1500);
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
  return { tone: "warn", text: "The rollback outcome is unknown: check the container." };
}

function showOutcome(job) {
  const name = job.container_name || "the container";
  if (job.status === "finished") {
    const result = job.result || {};
    const id = result.container_id || job.container_id || "";
    if (result.updated === false) {
      showBanner("ok", `${name} is already up to date`, [result.message || ""]);
      return;
    }
    showBanner("ok", `${name} updated`, [
      el("span", {}, "New container id ", el("span", { class: "mono", title: id, "data-container-id": id, text: id.slice(0, 12) })),
      el("span", {}, "Now running ", el("span", { class: "mono", text: result.new_image || job.new_image || "" })),
    ]);
    return;
  }
  const outcome = rollbackOutcome(job.log || []);
  showBanner("bad", `Update of ${name} failed`, [
    el("span", { text: job.error || `The job ended as ${job.status}.` }),
    el("span", { class: "banner-rollback" }, el("strong", { text: "Rollback: " }), outcome.text),
  ]);
}

function showBanner(tone, title, lines) {
  const banner = $("banner");
  banner.hidden = false;
  banner.dataset.tone = tone;
  banner.setAttribute("role", tone === "bad" ? "alert" : "status");
  banner.querySelector(".banner-icon use").setAttribute("href", tone === "ok" ? "#i-check" : tone === "bad" ? "#i-error" : "#i-warning");
  $("banner-title").textContent = title;
  $("banner-text").replaceChildren(...lines.map((line) => (typeof line === "string" ? el("span", { text: line }) : line)));
}

function hideBanner() {
  $("banner").hidden = true;
}

// ---------- Job history ----------

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

function renderJobs() {
  $("jobs-count").textContent = state.jobs.length ? String(state.jobs.length) : "";
  $("jobs-empty").hidden = state.jobs.length > 0;
  replaceChildrenKeepingFocus($("jobs"), state.jobs.map((job) => {
    const [label, tone] = JOB_STATUS[job.status] || [job.status, "muted"];
    const when = parseTime(job.enqueued_at);
    const duration = jobDuration(job);
    return el("li", {},
      el("button", {
        type: "button", class: "job-row", dataset: { focusKey: `job:${job.id}`, job: job.id },
        title: `${job.old_image || "?"} → ${job.new_image || "newest"}`, onclick: () => openJob(job.id),
        "aria-label": `${label}: ${job.container_name}, ${imageChange(job)}${duration ? `, ${duration}` : ""}. Show the log.`,
      },
      badge(label, tone),
      el("span", { class: "job-main" },
        el("span", { class: "job-name", text: job.container_name || job.description || job.id }),
        el("span", { class: "job-images", text: imageChange(job) })),
      el("span", { class: "job-when" }, el("span", { text: duration }), el("br"), el("span", { text: timeAgo(when) }))));
  }));
}

async function openJob(jobId) {
  const dialog = $("job-dialog");
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
    ["From", job.old_image], ["To", job.new_image], ["Started", parseTime(job.started_at)?.toLocaleString()],
    ["Duration", jobDuration(job)], ["New container id", job.container_id?.slice(0, 12)], ["Job id", job.id],
  ];
  const wide = new Set(["From", "To"]);
  $("job-facts").replaceChildren(...facts.filter(([, value]) => value).map(([term, value]) =>
    el("div", { class: wide.has(term) ? "wide" : undefined }, el("dt", { text: term }), el("dd", { class: "mono", text: value }))));
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error || "";
  const lines = job.log.map((entry) => logLine(entry));
  $("job-log").replaceChildren(...(lines.length ? lines : [el("li", { class: "log-divider", text: "This job has no log lines." })]));
  dialog.showModal();
}

// ---------- Live log ----------

const logView = {
  list: null,
  seen: new Set(),
  cutoff: "", // entries older than this ISO time are not shown again (before the first one, or cleared)
  pending: [],
  flushTimer: null,
  follow: true,
  unseen: 0,
  divider: null,
  lastJob: null, // a header names the container whenever the job changes
};

// The worker starts most messages with an emoji; the page draws its own icons, which need no emoji font.
const LEADING_EMOJI = /^(?:\p{Extended_Pictographic}|\p{Regional_Indicator})[\u{FE0F}\u{200D}\p{Extended_Pictographic}]*\s*/u;

function plainMessage(message) {
  return (message || "").replace(LEADING_EMOJI, "");
}

function lineLook(entry) {
  const level = LEVEL_ICONS[entry.level] ? entry.level : "INFO";
  if (level === "WARNING" && /^(⏪|↩)/.test(entry.message)) return { level, icon: "i-undo" };
  if (level === "INFO" && /^✅/.test(entry.message)) return { level, icon: "i-check", outcome: "success" };
  return { level, icon: LEVEL_ICONS[level] };
}

function logLine(entry) {
  const look = lineLook(entry);
  const when = parseTime(entry.time);
  return el("li", { class: "log-line", dataset: { level: look.level, job: entry.job_id, outcome: look.outcome } },
    el("time", { class: "log-time", datetime: entry.time, text: when ? clock(when) : entry.timestamp }),
    el("span", { class: "log-level", title: look.level }, icon(look.icon), el("span", { class: "sr-only", text: `${look.level}: ` })),
    el("span", { class: "log-text", text: plainMessage(entry.message) }));
}

function jobHeader(entry) {
  return el("li", { class: "log-job", dataset: { job: entry.job_id } },
    icon("i-box"), el("span", { class: "log-job-name", text: entry.container_name || "updater" }),
    el("span", { class: "log-job-id", text: `job ${(entry.job_id || "").slice(0, 8)}` }));
}

function receiveEntry(entry) {
  if (!entry || !entry.id || logView.seen.has(entry.id)) return;
  if (logView.cutoff && entry.time && entry.time < logView.cutoff) return;
  logView.seen.add(entry.id);
  logView.pending.push(entry);
  if (!logView.flushTimer) logView.flushTimer = setTimeout(flushLog, 30);

  const tracked = state.tracked.get(entry.job_id);
  if (tracked) {
    tracked.step = plainMessage(entry.message);
    scheduleCheck(entry.job_id, /^(✅|❌|↩️|🚨)/.test(entry.message) ? 200 : 2500);
    renderContainers();
  } else if (!state.jobs.some((job) => job.id === entry.job_id)) {
    refreshJobsSoon(); // an update someone started elsewhere: follow it too
  }
}

let jobsRefreshTimer = null;

function refreshJobsSoon() {
  clearTimeout(jobsRefreshTimer);
  jobsRefreshTimer = setTimeout(refreshJobs, 500);
}

function flushLog() {
  logView.flushTimer = null;
  const entries = logView.pending.splice(0);
  if (!entries.length) return;
  if (!logView.cutoff) logView.cutoff = entries[0].time || "";
  const list = logView.list;
  const fragment = document.createDocumentFragment();
  for (const entry of entries) {
    if (entry.job_id !== logView.lastJob) fragment.append(jobHeader(entry));
    logView.lastJob = entry.job_id;
    fragment.append(logLine(entry));
  }
  list.append(fragment);
  while (list.children.length > MAX_LOG_LINES) list.firstElementChild.remove();
  $("log-empty").hidden = true;
  if (logView.follow) {
    list.scrollTop = list.scrollHeight;
  } else {
    logView.unseen += entries.length;
    updateFollowButton();
  }
}

function updateFollowButton() {
  const button = $("log-follow");
  button.hidden = logView.follow;
  $("log-follow-text").textContent = logView.unseen ? `${logView.unseen} new line${logView.unseen === 1 ? "" : "s"}` : "Jump to latest";
}

function onLogScroll() {
  const list = logView.list;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  if (atBottom !== logView.follow) {
    logView.follow = atBottom;
    if (atBottom) logView.unseen = 0;
    updateFollowButton();
  }
}

function jumpToLatest() {
  logView.follow = true;
  logView.unseen = 0;
  logView.list.scrollTop = logView.list.scrollHeight;
  updateFollowButton();
  logView.list.focus();
}

function clearLog() {
  const last = logView.list.lastElementChild?.querySelector("time")?.getAttribute("datetime");
  logView.cutoff = last || new Date().toISOString();
  logView.list.replaceChildren();
  logView.divider = null;
  logView.lastJob = null;
  $("log-empty").hidden = false;
  jumpToLatest();
}

function markDisconnected() {
  if (logView.divider || !logView.list.children.length) return;
  logView.divider = el("li", { class: "log-divider", role: "separator", text: `Connection lost at ${clock(new Date())}; reconnecting…` });
  logView.list.append(logView.divider);
  logView.lastJob = null;
  if (logView.follow) logView.list.scrollTop = logView.list.scrollHeight;
}

function markReconnected() {
  if (!logView.divider) return;
  logView.divider.textContent = `${logView.divider.textContent.replace(/; reconnecting…$/, "")}. Reconnected at ${clock(new Date())}; lines missed meanwhile follow.`;
  logView.divider = null;
}

class LogStream {
  constructor() {
    this.attempts = 0;
    this.connectedOnce = false;
    this.socket = null;
  }

  url() {
    const url = new URL("ws/logs", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // After a drop, ask for more history: the dedupe drops what was already shown.
    url.searchParams.set("limit", this.connectedOnce ? "1000" : "300");
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) url.searchParams.set("token", token);
    return url;
  }

  connect() {
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener("open", () => {
      const reconnected = this.connectedOnce;
      this.attempts = 0;
      this.connectedOnce = true;
      setStreamState("live");
      if (reconnected) onReconnected();
    });
    socket.addEventListener("message", (event) => {
      try {
        receiveEntry(JSON.parse(event.data));
      } catch {
        // not a log entry: ignore
      }
    });
    socket.addEventListener("close", (event) => {
      this.socket = null;
      markDisconnected();
      if (event.code === 1008 || event.code === 4401 || event.code === 4403) {
        setStreamState("auth");
        askForToken(Boolean(localStorage.getItem(TOKEN_KEY))).then(() => this.connect());
        return;
      }
      this.reconnectLater();
    });
  }

  reconnectLater() {
    const delay = Math.min(10000, 500 * 2 ** this.attempts) + Math.random() * 250;
    this.attempts += 1;
    setStreamState("reconnecting", delay);
    setTimeout(() => this.connect(), delay);
  }
}

function setStreamState(mode, delay = 0) {
  const badgeNode = $("log-state");
  if (mode === "live") {
    setChip("chip-stream", "ok", "Log: live");
    badgeNode.dataset.tone = "ok";
    badgeNode.textContent = "Live";
  } else if (mode === "auth") {
    setChip("chip-stream", "warn", "Log: token needed");
    badgeNode.dataset.tone = "warn";
    badgeNode.textContent = "Token needed";
  } else {
    const seconds = Math.max(1, Math.round(delay / 1000));
    setChip("chip-stream", "warn", "Log: reconnecting…");
    badgeNode.dataset.tone = "warn";
    badgeNode.textContent = `Reconnecting in ${seconds} s`;
  }
}

function onReconnected() {
  markReconnected();
  refreshHealth();
  refreshContainers();
  refreshJobs();
  for (const jobId of state.tracked.keys()) scheduleCheck(jobId, 200);
}

// ---------- Start ----------

async function loadConfig() {
  try {
    const { body } = await api("config");
    state.config = { ...state.config, ...body };
  } catch {
    // an older API without GET /config: keep the defaults
  }
  $("target-title").textContent = state.config.target_container;
  for (const node of document.querySelectorAll(".prefix")) node.textContent = state.config.tag_prefix;
}

function wireEvents() {
  logView.list = $("log");
  logView.list.addEventListener("scroll", onLogScroll, { passive: true });
  $("log-follow").addEventListener("click", jumpToLatest);
  $("log-clear").addEventListener("click", clearLog);
  $("banner-close").addEventListener("click", hideBanner);
  $("update-target").addEventListener("click", () => openConfirm(state.config.target_container));
  $("confirm-dialog").addEventListener("close", confirmClosed);
  $("confirm-image").addEventListener("keydown", (event) => {
    // Enter in the field means "go", not the form's first button (Cancel).
    if (event.key === "Enter") {
      event.preventDefault();
      $("confirm-form").requestSubmit($("confirm-go"));
    }
  });
  $("token-dialog").addEventListener("cancel", (event) => event.preventDefault());
}

async function start() {
  wireEvents();
  await loadConfig();
  if (state.config.token_required && !localStorage.getItem(TOKEN_KEY)) await askForToken(false);
  new LogStream().connect();
  await Promise.allSettled([refreshHealth(), refreshContainers(), refreshJobs()]);
  setInterval(refreshHealth, 10000);
  setInterval(refreshContainers, 10000);
  setInterval(refreshJobs, 20000);
}

start();
