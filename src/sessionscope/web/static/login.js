// The login page: POST the token to /auth/login, which starts a login session and sets its
// HttpOnly cookie. A link such as /login?token=ss_… (printed by `sessionscope serve`) first asks
// for one click ("Log in as NAME"), so a cross-site link cannot log anyone in silently.

const LOGIN_ENDPOINT = "/auth/login";
const IDENTIFY_ENDPOINT = "/auth/identify";
const LOGOUT_ENDPOINT = "/auth/logout";
const RPC_ENDPOINT = "/rpc";
/** The header and value every cookie-authenticated RPC call must carry (see web/auth.py). */
export const CSRF_HEADER = "X-Sessionscope-CSRF";
export const CSRF_VALUE = "1";
const DEFAULT_NEXT = "/sessions";

const $ = (id) => document.getElementById(id);

/**
 * Only a path on this origin, judged the way the browser will resolve it: `new URL(next, origin)`
 * must stay on this origin (so `/%09/evil.example/`, `//evil.example`, `/\\evil` and their
 * tab, CR and LF variants all fall back to the dashboard).
 */
export function safeNext(value, origin = location.origin) {
  if (!value || !value.startsWith("/")) return DEFAULT_NEXT;
  let url;
  try {
    url = new URL(value, origin);
  } catch {
    return DEFAULT_NEXT;
  }
  if (url.origin !== origin) return DEFAULT_NEXT;
  return url.pathname + url.search + url.hash;
}

function showError(message) {
  const box = $("login-error");
  box.textContent = message;
  box.hidden = !message;
}

function postToken(endpoint, token) {
  return fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ token }),
  });
}

/** A login link: say whose token it is and wait for one click before logging in. */
async function confirmLink(token, next) {
  try {
    const response = await postToken(IDENTIFY_ENDPOINT, token);
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.ok) {
      showError(body.error || `This login link does not work (HTTP ${response.status}).`);
      return;
    }
    const where = body.tenant ? `tenant ${body.tenant}` : "every tenant";
    $("login-confirm-button").textContent = `Log in as ${body.token_name}`;
    $("login-confirm-who").textContent = `${body.role}, ${where}`;
    $("login-confirm").hidden = false;
    $("login-confirm-button").addEventListener("click", () => logIn(token, next), { once: true });
  } catch (err) {
    showError(`Could not reach the server (${err.message}).`);
  }
}

async function logIn(token, next) {
  showError("");
  $("login-submit").disabled = true;
  try {
    const response = await postToken(LOGIN_ENDPOINT, token);
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.ok) {
      showError(body.error || `Login failed (HTTP ${response.status}).`);
      return;
    }
    location.replace(next);
  } catch (err) {
    showError(`Could not reach the server (${err.message}).`);
  } finally {
    $("login-submit").disabled = false;
  }
}

async function whoami() {
  try {
    const response = await fetch(RPC_ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", [CSRF_HEADER]: CSRF_VALUE },
      credentials: "same-origin",
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "auth.whoami", params: {} }),
    });
    if (!response.ok) return null;
    const body = await response.json();
    return body.result || null;
  } catch {
    return null;
  }
}

async function logOut() {
  await fetch(LOGOUT_ENDPOINT, { method: "POST", headers: { Accept: "application/json" }, credentials: "same-origin" });
  location.replace("/login");
}

async function main() {
  const params = new URLSearchParams(location.search);
  const next = safeNext(params.get("next"));
  const token = params.get("token");
  if (token) {
    // Drop the token from the address bar and history before anything else.
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
    await confirmLink(token, next);
    return;
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("login-token").value.trim();
    if (value) logIn(value, next);
  });
  $("login-logout").addEventListener("click", logOut);
  const me = await whoami();
  if (me && me.auth) {
    const where = me.tenant ? `tenant ${me.tenant}` : "every tenant";
    $("login-who").textContent = `${me.token_name} (${me.role}, ${where})`;
    $("login-signed-in").hidden = false;
  }
}

main();
