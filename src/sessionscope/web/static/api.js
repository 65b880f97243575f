// The one RPC client of the dashboard: JSON-RPC 2.0 over POST /rpc.

export const RPC_ENDPOINT = "/rpc";
/** Abort an RPC call that has not answered within this many milliseconds. */
export const RPC_TIMEOUT_MS = 20000;
/** Where an unauthenticated browser is sent (the security work adds this page). */
export const LOGIN_PATH = "/login";

/** Cookie-authenticated calls must carry this header (CSRF defence, see web/auth.py). */
export const CSRF_HEADER = "X-Sessionscope-CSRF";
export const CSRF_VALUE = "1";

export const ERROR_INVALID_PARAMS = -32602; // also a key held by several tenants: data.tenants lists them
export const ERROR_NOT_FOUND = -32001;
export const ERROR_FORBIDDEN = -32003;

/** A JSON-RPC error (or a transport failure, with a negative pseudo code below). */
export class RpcError extends Error {
  constructor(code, message, data = null) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
}
export const ERROR_TIMEOUT = "timeout";
export const ERROR_NETWORK = "network";
export const ERROR_HTTP = "http";

/**
 * Hook called when the server answers HTTP 401. The default sends the browser to the login
 * page and brings it back here afterwards; tests or the login work may replace it.
 */
let unauthorizedHandler = () => {
  const next = location.pathname + location.search;
  location.assign(`${LOGIN_PATH}?next=${encodeURIComponent(next)}`);
};
export function setUnauthorizedHandler(fn) {
  unauthorizedHandler = fn;
}

let nextId = 1;

/**
 * Call `method` with `params`; resolve with its `result` or reject with an RpcError that
 * carries the server's message. `signal` lets a view drop a call it no longer needs.
 */
export async function rpc(method, params = {}, { signal, timeoutMs = RPC_TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(ERROR_TIMEOUT), timeoutMs);
  const onAbort = () => controller.abort(signal.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const id = nextId++;
  let response;
  try {
    response = await fetch(RPC_ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", [CSRF_HEADER]: CSRF_VALUE },
      credentials: "same-origin",
      body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
      signal: controller.signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    if (controller.signal.aborted) {
      throw new RpcError(ERROR_TIMEOUT, `The server did not answer ${method} within ${timeoutMs / 1000} s.`);
    }
    throw new RpcError(ERROR_NETWORK, `Could not reach the server (${err.message}).`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
  if (response.status === 401) {
    unauthorizedHandler();
    throw new RpcError(ERROR_HTTP, "You are signed out. Redirecting to the login page…", { status: 401 });
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new RpcError(ERROR_HTTP, `The server answered HTTP ${response.status} without a JSON-RPC body.`,
      { status: response.status });
  }
  if (body && body.error) {
    throw new RpcError(body.error.code, body.error.message || `Error ${body.error.code}`, body.error.data ?? null);
  }
  if (!response.ok || !body || !("result" in body)) {
    throw new RpcError(ERROR_HTTP, `The server answered HTTP ${response.status}.`, { status: response.status });
  }
  return body.result;
}

/** True when `err` is a request that a view cancelled itself (not worth showing). */
export function isAbort(err) {
  return err?.name === "AbortError" || (err instanceof DOMException && err.name === "AbortError");
}
