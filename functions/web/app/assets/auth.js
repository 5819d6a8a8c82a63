// Sign-in. The access token lives in this tab's sessionStorage, never in localStorage: from the
// URL fragment (#access_token=…, for a host app that embeds the page), from the development
// sign-in (make run), or from OpenID Connect (authorization code + PKCE, oidc-client-ts).
const KEY = "dueflow.token";
let settings = { dev_sign_in: false, oidc: null };
let manager = null;

export const accessToken = () => sessionStorage.getItem(KEY);
export const signInSettings = () => settings;

// The user's id and e-mail as the token says (display only: the API checks the token).
export function claims() {
  try {
    const payload = accessToken().split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

export async function startAuth() {
  settings = await (await fetch("/config.json")).json();
  if (settings.oidc && window.oidc) {
    const here = `${location.origin}/`;
    manager = new window.oidc.UserManager({
      authority: settings.oidc.authority,
      client_id: settings.oidc.client_id,
      scope: settings.oidc.scope,
      redirect_uri: here,
      post_logout_redirect_uri: here,
      response_type: "code",
      automaticSilentRenew: false,
      // PKCE verifier and tokens: this tab only
      userStore: new window.oidc.WebStorageStateStore({ store: sessionStorage }),
      stateStore: new window.oidc.WebStorageStateStore({ store: sessionStorage }),
    });
  }
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("access_token")) {
    sessionStorage.setItem(KEY, fragment.get("access_token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const query = new URLSearchParams(location.search);
  if (query.has("error") && query.has("state")) {
    history.replaceState(null, "", location.pathname);
    throw new Error(`Sign-in failed: ${query.get("error_description") || query.get("error")}`);
  }
  if (manager && query.has("code") && query.has("state")) {
    const user = await manager.signinRedirectCallback();
    sessionStorage.setItem(KEY, user.access_token);
    history.replaceState(null, "", location.pathname);
  }
}

export async function devSignIn(user) {
  const response = await fetch("/auth/dev-token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.title);
  sessionStorage.setItem(KEY, body.access_token);
}

export const oidcSignIn = () => manager.signinRedirect();

export function signOut() {
  sessionStorage.removeItem(KEY);
  manager?.removeUser();
  document.dispatchEvent(new CustomEvent("signed-out"));
}
