// Calls to the updater's HTTP API, with the bearer token the API may require (asked once, kept in the browser).

import { $ } from "./dom.js";

const TOKEN_KEY = "hmm-updater-token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `The API answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

// `allow` lists error statuses whose body the caller wants instead of an exception (503 from /health).
export async function api(path, { method = "GET", json, allow = [] } = {}) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const token = storedToken();
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const body = json === undefined ? undefined : JSON.stringify(json);
    const response = await fetch(path, { method, headers, body, cache: "no-store" });
    if (response.status === 401) {
      await askForToken(Boolean(token));
      continue;
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok && !allow.includes(response.status)) throw new ApiError(response.status, answer);
    return { status: response.status, body: answer };
  }
  throw new ApiError(401, { error: "The API token was not accepted" });
}

let tokenPrompt = null;

// One prompt however many requests were refused; resolves once a token is saved.
export function askForToken(rejected) {
  if (tokenPrompt) return tokenPrompt;
  const dialog = $("token-dialog");
  $("token-error").hidden = !rejected;
  $("token-input").value = "";
  tokenPrompt = new Promise((resolve) => {
    dialog.addEventListener("close", function saved() {
      const value = $("token-input").value.trim();
      if (!value) {
        dialog.showModal(); // the page cannot work without it: keep asking
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
