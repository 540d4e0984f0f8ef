// openid-client (npm), nobody here wrote it, authenticating with
// private_key_jwt (RFC 7523 §2.2) through its own PrivateKeyJwt: an agent's
// client registered (through the admin API) with the public half of an
// ES256 key made by WebCrypto, then token exchange (RFC 8693) for a task
// with a DPoP proof from openid-client's DPoP handle. Each request carries a
// fresh assertion addressed to the issuer.
//
// Usage: node task_openid_client_key.mjs ISSUER ADMIN_TOKEN PRINCIPAL RESOURCE
// Prints one JSON line per step ({"step": ..., ...}).

import * as client from 'openid-client';

const [issuer, adminToken, principal, resource] = process.argv.slice(2);
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const report = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const { privateKey, publicKey } = await crypto.subtle.generateKey(
  { name: 'ECDSA', namedCurve: 'P-256' },
  true,
  ['sign', 'verify'],
);
const jwk = await crypto.subtle.exportKey('jwk', publicKey);
const registration = await fetch(`${issuer}/v1/clients`, {
  method: 'POST',
  headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
  body: JSON.stringify({
    client_name: 'openid-client key agent',
    grant_types: ['client_credentials'],
    scope: 'notes.read',
    principal,
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [{ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }] },
  }),
});
const registered = await registration.json();
report('registered', { status: registration.status, client_id: registered.client_id, has_secret: 'client_secret' in registered });

const config = await client.discovery(
  new URL(issuer),
  registered.client_id,
  undefined,
  client.PrivateKeyJwt(privateKey),
  { execute: [client.allowInsecureRequests], algorithm: 'oauth2' },
);
const sent = [];
config[client.customFetch] = async (url, options) => {
  const body = new URLSearchParams(String(options.body ?? ''));
  sent.push({ url: String(url), assertion_type: body.get('client_assertion_type'), assertion: body.get('client_assertion') });
  return fetch(url, options);
};

const cc = await client.clientCredentialsGrant(config, { scope: 'notes.read', resource });
report('client_credentials', { token_type: cc.token_type, access_token: cc.access_token });

const keyPair = await client.randomDPoPKeyPair('ES256');
const DPoP = client.getDPoPHandle(config, keyPair);
const task = await client.genericGrantRequest(
  config,
  TOKEN_EXCHANGE,
  { scope: 'notes.read', resource, task_description: 'read the notes for a summary' },
  { DPoP },
);
report('exchange', { token_type: task.token_type, task_id: task.task_id, access_token: task.access_token });
const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());
report('assertions', {
  assertions: sent.map((s) => ({ type: s.assertion_type, aud: s.assertion ? decode(s.assertion.split('.')[1]).aud : null, jti: s.assertion ? decode(s.assertion.split('.')[1]).jti : null })),
});
