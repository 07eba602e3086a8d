// The live log pane and the WebSocket that feeds it. The socket reconnects on its own and the server replays
// its history on every connect, so lines are told apart by id: none is missed and none is shown twice.

import { api, askForToken, storedToken } from "./api.js";
import { el, icon } from "./dom.js";
import { clock, parseTime, plainMessage } from "./format.js";

const LEVEL_ICONS = { INFO: "i-info", WARNING: "i-warning", ERROR: "i-error" };
const MAX_LINES = 2000;
const FOLLOW_SLACK_PX = 24;
const AUTH_CLOSE_CODES = new Set([1008, 4401, 4403]);

function lineLook(entry) {
  const level = LEVEL_ICONS[entry.level] ? entry.level : "INFO";
  if (level === "WARNING" && /^(⏪|↩)/.test(entry.message)) return { level, icon: "i-undo" };
  if (level === "INFO" && /^✅/.test(entry.message)) return { level, icon: "i-check", outcome: "success" };
  return { level, icon: LEVEL_ICONS[level] };
}

export function logLine(entry) {
  const look = lineLook(entry);
  const when = parseTime(entry.time);
  return el("li", { class: "log-line", dataset: { level: look.level, job: entry.job_id, outcome: look.outcome } },
    el("time", { class: "log-time", datetime: entry.time, text: when ? clock(when) : entry.timestamp }),
    el("span", { class: "log-level", title: look.level },
      icon(look.icon), el("span", { class: "sr-only", text: `${look.level}: ` })),
    el("span", { class: "log-text", text: plainMessage(entry.message) }));
}

function jobHeader(entry) {
  return el("li", { class: "log-job", dataset: { job: entry.job_id } },
    icon("i-box"),
    el("span", { class: "log-job-name", text: entry.container_name || "updater" }),
    el("span", { class: "log-job-id", text: `job ${(entry.job_id || "").slice(0, 8)}` }));
}

export class LiveLog {
  constructor(list, { empty, followButton, followText }) {
    this.list = list;
    this.empty = empty;
    this.followButton = followButton;
    this.followText = followText;
    this.seen = new Set();
    this.cutoff = ""; // lines older than this ISO time are not shown: before the first one shown, or cleared
    this.pending = [];
    this.flushTimer = null;
    this.follow = true; // stick to the newest line until the reader scrolls up
    this.unseen = 0;
    this.divider = null;
    this.lastJob = null; // a header names the container whenever the job changes
    list.addEventListener("scroll", () => this.onScroll(), { passive: true });
    followButton.addEventListener("click", () => this.jumpToLatest());
  }

  // Queues the entry for display; false when it was shown before or is older than the view.
  add(entry) {
    if (!entry?.id || this.seen.has(entry.id)) return false;
    if (this.cutoff && entry.time && entry.time < this.cutoff) return false;
    this.seen.add(entry.id);
    this.pending.push(entry);
    // A replay brings hundreds of lines at once: draw them in one go.
    this.flushTimer ??= setTimeout(() => this.flush(), 30);
    return true;
  }

  flush() {
    this.flushTimer = null;
    const entries = this.pending.splice(0);
    if (!entries.length) return;
    if (!this.cutoff) this.cutoff = entries[0].time || "";
    const fragment = document.createDocumentFragment();
    for (const entry of entries) {
      if (entry.job_id !== this.lastJob) fragment.append(jobHeader(entry));
      this.lastJob = entry.job_id;
      fragment.append(logLine(entry));
    }
    this.list.append(fragment);
    while (this.list.children.length > MAX_LINES) this.list.firstElementChild.remove();
    this.empty.hidden = true;
    if (this.follow) {
      this.list.scrollTop = this.list.scrollHeight;
    } else {
      this.unseen += entries.length;
      this.updateFollowButton();
    }
  }

  onScroll() {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < FOLLOW_SLACK_PX;
    if (atBottom === this.follow) return;
    this.follow = atBottom;
    if (atBottom) this.unseen = 0;
    this.updateFollowButton();
  }

  updateFollowButton() {
    this.followButton.hidden = this.follow;
    const count = this.unseen;
    this.followText.textContent = count ? `${count} new line${count === 1 ? "" : "s"}` : "Jump to latest";
  }

  jumpToLatest() {
    this.follow = true;
    this.unseen = 0;
    this.list.scrollTop = this.list.scrollHeight;
    this.updateFollowButton();
    this.list.focus();
  }

  clear() {
    const last = [...this.list.querySelectorAll(".log-line time")].pop()?.getAttribute("datetime");
    this.cutoff = last || new Date().toISOString();
    this.list.replaceChildren();
    this.divider = null;
    this.lastJob = null;
    this.empty.hidden = false;
    this.jumpToLatest();
  }

  markDisconnected() {
    if (this.divider || !this.list.children.length) return;
    const text = `Connection lost at ${clock(new Date())}; reconnecting…`;
    this.divider = el("li", { class: "log-divider", role: "separator", text });
    this.list.append(this.divider);
    this.lastJob = null;
    if (this.follow) this.list.scrollTop = this.list.scrollHeight;
  }

  markReconnected() {
    if (!this.divider) return;
    const lost = this.divider.textContent.replace(/; reconnecting…$/, "");
    this.divider.textContent = `${lost}. Reconnected at ${clock(new Date())}; lines missed meanwhile follow.`;
    this.divider = null;
  }
}

export class LogStream {
  constructor({ onEntry, onState, onReconnect, tokenRequired }) {
    this.onEntry = onEntry;
    this.onState = onState; // ("live" | "reconnecting" | "auth", delay in ms)
    this.onReconnect = onReconnect;
    this.tokenRequired = tokenRequired;
    this.attempts = 0;
    this.connectedOnce = false;
  }

  url() {
    const url = new URL("ws/logs", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // After a drop ask for more history than at first: whatever was shown already is dropped as a duplicate.
    url.searchParams.set("limit", this.connectedOnce ? "1000" : "300");
    const token = storedToken();
    if (token) url.searchParams.set("token", token);
    return url;
  }

  connect() {
    const socket = new WebSocket(this.url());
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      const reconnected = this.connectedOnce;
      this.attempts = 0;
      this.connectedOnce = true;
      this.onState("live");
      if (reconnected) this.onReconnect();
    });
    socket.addEventListener("message", (event) => {
      let entry;
      try {
        entry = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onEntry(entry);
    });
    socket.addEventListener("close", (event) => this.closed(event, opened));
  }

  async closed(event, opened) {
    if (AUTH_CLOSE_CODES.has(event.code)) {
      this.onState("auth");
      await askForToken(Boolean(storedToken()));
      this.connect();
      return;
    }
    if (!opened && this.tokenRequired()) {
      // A refused handshake looks like any network error; an API call tells a wrong token apart (and asks).
      await api("jobs?limit=1").catch(() => null);
    }
    const delay = Math.min(10000, 500 * 2 ** this.attempts) + Math.random() * 250;
    this.attempts += 1;
    this.onState("reconnecting", delay);
    setTimeout(() => this.connect(), delay);
  }
}
