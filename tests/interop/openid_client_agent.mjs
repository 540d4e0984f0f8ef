// A generic OAuth client nobody here wrote (openid-client from npm) against
// the Laissez authorization server: discovery (RFC 8414), dynamic
// registration, authorization code with PKCE and resource, RFC 9207 `iss`
// checking, refresh, revocation, and the client credentials grant (with a
// client an administrator registered: a self-registered one is refused).
//
// Usage: node openid_client_agent.mjs ISSUER USERNAME PASSWORD MACHINE_ID MACHINE_SECRET
// Prints one JSON line with what it observed.

import * as client from 'openid-client';
import { formFields } from './html_form.mjs';

const [issuer, username, password, machineId, machineSecret] = process.argv.slice(2);
const redirectUri = 'http://127.0.0.1:41999/callback';
const resource = 'https://notes.example';
const options = { execute: [client.allowInsecureRequests], algorithm: 'oauth2' };

// A tiny browser: follows nothing by itself, keeps cookies.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return response;
}

async function consent(authorizationUrl) {
  const origin = new URL(authorizationUrl).origin;
  const login = await browse(authorizationUrl);
  const loginFields = formFields(await login.text());
  loginFields.push(['username', username], ['password', password]);
  const signedIn = await browse(`${origin}/oauth/login`, { method: 'POST', body: new URLSearchParams(loginFields) });
  if (signedIn.status !== 303 && signedIn.status !== 302) throw new Error(`login failed: ${signedIn.status}`);
  const page = await browse(signedIn.headers.get('location'));
  const fields = formFields(await page.text());
  fields.push(['decision', 'approve']);
  const answer = await browse(`${origin}/oauth/consent`, { method: 'POST', body: new URLSearchParams(fields) });
  return new URL(answer.headers.get('location'));
}

const observed = {};

// Public client: registration, code flow with PKCE, refresh, revocation.
const config = await client.dynamicClientRegistration(
  new URL(issuer),
  {
    client_name: 'openid-client interop',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  },
  client.None(),
  options,
);
observed.issuer = config.serverMetadata().issuer;
const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  // offline_access: a refresh token comes only with it.
  scope: 'notes.read offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  resource,
});
const callback = await consent(authorizationUrl.href);
const tokens = await client.authorizationCodeGrant(
  config,
  callback,
  { pkceCodeVerifier: verifier, expectedState: state },
  { resource },
);
observed.token_type = tokens.token_type;
observed.scope = tokens.scope;
observed.has_refresh = typeof tokens.refresh_token === 'string' && tokens.refresh_token.startsWith('lzrt_');
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
observed.rotated = refreshed.refresh_token !== tokens.refresh_token;
try {
  await client.refreshTokenGrant(config, tokens.refresh_token);
  observed.reuse_refused = false;
} catch (e) {
  observed.reuse_refused = e.error === 'invalid_grant';
}
await client.tokenRevocation(config, refreshed.access_token);
observed.revoked = true;

// A tampered iss in the authorization response is refused (RFC 9207).
const forged = new URL(callback);
forged.searchParams.set('iss', 'https://evil.example');
try {
  await client.authorizationCodeGrant(config, forged, { pkceCodeVerifier: verifier, expectedState: state });
  observed.forged_iss_refused = false;
} catch {
  observed.forged_iss_refused = true;
}

// Client credentials: a self-registered client may not use them...
try {
  await client.dynamicClientRegistration(
    new URL(issuer),
    { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'reports.read' },
    undefined,
    options,
  );
  observed.self_registered_client_credentials_refused = false;
} catch {
  observed.self_registered_client_credentials_refused = true;
}
// ...a client an administrator registered may.
const machine = await client.discovery(
  new URL(issuer),
  machineId,
  machineSecret,
  client.ClientSecretBasic(machineSecret),
  options,
);
const machineTokens = await client.clientCredentialsGrant(machine, { scope: 'reports.read', resource });
observed.client_credentials = machineTokens.token_type === 'bearer' || machineTokens.token_type === 'Bearer';

console.log(JSON.stringify(observed));
