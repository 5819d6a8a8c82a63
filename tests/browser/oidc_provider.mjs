// A real OpenID provider for the browser tests' sign-in (npm oidc-provider): one public client,
// the web app, with the authorization code flow and PKCE; access tokens are JWTs (RS256, the
// provider's JWKS at /jwks) for the resource DUEFLOW's API checks: iss, aud, sub, email.
// Usage: node oidc_provider.mjs <port> <redirect uri> <audience>. Prints "ready <issuer>".
import Provider from "oidc-provider";

const [port, redirect, audience] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: "dueflow-web",
    token_endpoint_auth_method: "none",
    redirect_uris: [redirect],
    post_logout_redirect_uris: [redirect],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  scopes: ["openid", "email", "tasks"],
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@example.com`, email_verified: true }),
  }),
  features: {
    devInteractions: { enabled: true }, // the provider's own login and consent pages
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: "tasks", audience, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } }),
    },
  },
  extraTokenClaims: (_ctx, token) => (token.kind === "AccessToken" ? { email: `${token.accountId}@example.com` } : undefined),
  clientBasedCORS: () => true,
  pkce: { required: () => true },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => console.log(`ready ${issuer}`));
