// Turning the API's timestamps, durations and image references into short, readable text.

export function parseTime(iso) {
  if (!iso) return null;
  // Docker gives nanoseconds; Date wants at most milliseconds.
  const date = new Date(iso.replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(date.getTime()) || date.getFullYear() < 2000 ? null : date;
}

export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function timeAgo(date) {
  if (!date) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 45) return "just now";
  return `${formatDuration(seconds).replace(/ \d+ (s|min)$/, "")} ago`;
}

export function clock(date) {
  if (!date) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

export function splitImage(ref) {
  if (!ref) return { repo: "", tag: "" };
  const at = ref.indexOf("@");
  if (at >= 0) return { repo: ref.slice(0, at), tag: `${ref.slice(at + 1, at + 20)}…` };
  const colon = ref.lastIndexOf(":");
  if (colon > ref.lastIndexOf("/")) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: "latest" };
}

// The worker starts most messages with an emoji; the page draws its own icons, which need no emoji font.
const EMOJI = String.raw`\p{Extended_Pictographic}|\p{Regional_Indicator}`;
const LEADING_EMOJI = new RegExp(String.raw`^(?:${EMOJI})[\u{FE0F}\u{200D}\p{Extended_Pictographic}]*\s*`, "u");

export function plainMessage(message) {
  return (message || "").replace(LEADING_EMOJI, "");
}
