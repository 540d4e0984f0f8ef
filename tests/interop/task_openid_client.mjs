// openid-client (npm), nobody here wrote it, as an agent asking for a task
// credential: discovery (RFC 8414), token exchange (RFC 8693) with client
// secret authentication and a DPoP proof (RFC 9449) from its own DPoP
// handle, then the task's JWT at a gate that requires DPoP nonces, where
// openid-client's own nonce handling retries once with the gate's nonce and
// keeps it for the next request; and the same token used as a bearer token.
//
// Usage: node task_openid_client.mjs ISSUER CLIENT_ID CLIENT_SECRET GATE_URL
// Prints one JSON line per step ({"step": ..., ...}); exits non-zero on
// anything unexpected.

import * as client from 'openid-client';

const [issuer, clientId, clientSecret, gateUrl] = process.argv.slice(2);
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const report = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const config = await client.discovery(
  new URL(issuer),
  clientId,
  clientSecret,
  client.ClientSecretBasic(clientSecret),
  { execute: [client.allowInsecureRequests], algorithm: 'oauth2' },
);
// Every request openid-client sends, with the answer, to show its retries.
const sent = [];
config[client.customFetch] = async (url, options) => {
  const response = await fetch(url, options);
  sent.push({
    url: String(url),
    authorization_scheme: new Headers(options.headers).get('authorization')?.split(' ')[0] ?? null,
    proof_nonce: proofNonce(new Headers(options.headers).get('dpop')),
    status: response.status,
    www_authenticate: response.headers.get('www-authenticate'),
    dpop_nonce: response.headers.get('dpop-nonce'),
  });
  return response;
};
const metadata = config.serverMetadata();
report('discovery', {
  issuer: metadata.issuer,
  token_endpoint: metadata.token_endpoint,
  grant_types_supported: metadata.grant_types_supported ?? [],
  dpop_signing_alg_values_supported: metadata.dpop_signing_alg_values_supported ?? [],
});

const keyPair = await client.randomDPoPKeyPair('ES256');
const DPoP = client.getDPoPHandle(config, keyPair);
const tokens = await client.genericGrantRequest(
  config,
  TOKEN_EXCHANGE,
  {
    scope: 'notes.read',
    resource: gateUrl,
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    task_description: 'read the notes for a summary',
    task_ttl: '300',
  },
  { DPoP },
);
const [header, claims] = tokens.access_token.split('.').slice(0, 2).map(decode);
report('exchange', {
  token_type: tokens.token_type,
  issued_token_type: tokens.issued_token_type,
  scope: tokens.scope,
  expires_in: tokens.expires_in,
  task_id: tokens.task_id,
  task_token_prefix: String(tokens.task_token).slice(0, 5),
  granted: tokens.granted,
  dropped: tokens.dropped,
  jwt_typ: header.typ,
  jwt_cnf_jkt: claims.cnf?.jkt ?? null,
  jwt_task: claims.task ?? null,
  jwt_aud: claims.aud,
  key_jkt: await thumbprint(keyPair.publicKey),
  requests: sent.splice(0),
});

// At the gate: the first proof has no nonce; the gate answers
// use_dpop_nonce with a DPoP-Nonce, and openid-client retries once with it.
const path = '/notes/today';
const first = await client.fetchProtectedResource(config, tokens.access_token, new URL(gateUrl + path), 'GET', undefined, undefined, { DPoP });
report('gate', { status: first.status, body: await first.json(), requests: sent.splice(0) });

// The nonce openid-client kept goes out with the next proof at once.
const second = await client.fetchProtectedResource(config, tokens.access_token, new URL(gateUrl + path), 'GET', undefined, undefined, { DPoP });
report('gate_again', { status: second.status, requests: sent.splice(0) });

// The same token as a bearer token (no proof) is what a thief would send.
try {
  const stolen = await client.fetchProtectedResource(config, tokens.access_token, new URL(gateUrl + path), 'GET');
  report('bearer', { status: stolen.status, requests: sent.splice(0) });
} catch (error) {
  report('bearer', { status: error.response?.status ?? error.status ?? null, error: error.code ?? error.name, requests: sent.splice(0) });
}

function decode(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function proofNonce(proof) {
  return proof ? (decode(proof.split('.')[1]).nonce ?? null) : null;
}

// RFC 7638 thumbprint of an EC public key, computed here, apart from any library.
async function thumbprint(publicKey) {
  const jwk = await crypto.subtle.exportKey('jwk', publicKey);
  const members = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(members));
  return Buffer.from(digest).toString('base64url');
}
