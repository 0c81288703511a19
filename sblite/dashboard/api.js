// The root JSON API, called with the session cookie: the public key and, on every change, the CSRF token.

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
let current = null;

/** An answer that was not 2xx: its status and the server's plain-text message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The signed-in session ({pk, email, csrf, devMode}) or null. */
export function session() {
  return current;
}

export function setSession(value) {
  current = value;
}

/** Call `path` with `method` (and a JSON `body`); the decoded JSON answer, or an ApiError. */
export async function api(method, path, body) {
  const headers = {};
  if (current) {
    headers["SB-PUBLIC-KEY"] = current.pk;
    if (!SAFE.has(method)) headers["X-CSRF-Token"] = current.csrf;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Is sblite still running?");
  }
  const text = await resp.text();
  if (!resp.ok) throw new ApiError(resp.status, text.trim() || `${resp.status} ${resp.statusText}`);
  return text ? JSON.parse(text) : null;
}
