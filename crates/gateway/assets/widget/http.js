// JSON over fetch, shared by the widget and the agent console. Both talk only
// to Palisade's own origin, so every path here is absolute and same-origin.

/** A non-2xx answer, carrying the API's stable error code. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : {};
    super(error.message || `request failed with status ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.requestId = error.request_id || null;
  }
}

/**
 * Sends `body` (if any) as JSON and returns the parsed answer, or null for
 * 204. Throws ApiError for an error status; network failures throw TypeError.
 */
export async function fetchJson(method, path, { body, headers = {}, credentials = "omit" } = {}) {
  const init = {
    method,
    credentials,
    cache: "no-store",
    headers: { accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }

  const response = await fetch(path, init);
  if (response.status === 204) return null;

  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** The ws: or wss: URL for a path on this page's own host. */
export function socketUrl(path) {
  const scheme = location.protocol === "http:" ? "ws:" : "wss:";
  return `${scheme}//${location.host}${path}`;
}
