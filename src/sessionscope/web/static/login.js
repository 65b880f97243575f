// The login page: POST the token to /auth/login, which sets an HttpOnly session cookie.
// A link such as /login?token=ss_… (printed by `sessionscope serve`) logs in at once.

const LOGIN_ENDPOINT = "/auth/login";
const LOGOUT_ENDPOINT = "/auth/logout";
const RPC_ENDPOINT = "/rpc";
/** The header and value every cookie-authenticated RPC call must carry (see web/auth.py). */
export const CSRF_HEADER = "X-Sessionscope-CSRF";
export const CSRF_VALUE = "1";
const DEFAULT_NEXT = "/sessions";

const $ = (id) => document.getElementById(id);

/** Only a local path, so a crafted link cannot send the browser elsewhere after login. */
function safeNext(value) {
  if (!value || !value.startsWith("/") || value.startsWith("//") || value.includes("\\")) return DEFAULT_NEXT;
  return value;
}

function showError(message) {
  const box = $("login-error");
  box.textContent = message;
  box.hidden = !message;
}

async function logIn(token, next) {
  showError("");
  $("login-submit").disabled = true;
  try {
    const response = await fetch(LOGIN_ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ token }),
    });
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
    await logIn(token, next);
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
