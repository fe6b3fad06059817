// The agent API as the console uses it.
//
// The session itself is an HttpOnly cookie the page cannot read. The CSRF
// token from login (or /me) is kept here in memory only, never in storage,
// and sent on every request that changes something.

import { ApiError, fetchJson } from "/widget/http.js";

export { ApiError };

let csrfToken = null;
let onExpired = () => {};

export function setCsrfToken(token) {
  csrfToken = token;
}

/** `fn` runs when a signed-in request is refused with 401. */
export function whenSessionExpires(fn) {
  onExpired = fn;
}

export async function api(method, path, body) {
  const headers = {};
  if (method !== "GET" && csrfToken) headers["x-csrf-token"] = csrfToken;

  try {
    return await fetchJson(method, path, { body, headers, credentials: "same-origin" });
  } catch (err) {
    // Only a session we had can expire; a 401 before sign-in is expected.
    if (err instanceof ApiError && err.status === 401 && csrfToken) onExpired();
    throw err;
  }
}

/** `/v1/agent/conversations/{id}` followed by `rest`. */
export function conversationPath(id, rest = "") {
  return `/v1/agent/conversations/${encodeURIComponent(id)}${rest}`;
}

/** A sentence for the user about a failed request. */
export function describeError(err) {
  if (err instanceof ApiError) return err.message;
  return "Can't reach the server. Check the connection and try again.";
}
