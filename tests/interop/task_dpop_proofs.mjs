// panva's `dpop` (npm), nobody here wrote it, making every DPoP proof
// (RFC 9449) of an agent that asks for a task over REST: its key pair, the
// proof of `POST /v1/tasks` (with the agent's lzat_ token), then proofs of
// the task's JWT at a gate that requires nonces: one without a nonce
// (refused with use_dpop_nonce), one with the gate's nonce (let through),
// and that same proof sent again (refused as replayed).
//
// Usage: node task_dpop_proofs.mjs ISSUER LZAT GATE_URL
// Prints one JSON line per step ({"step": ..., ...}).

import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';

const [issuer, lzat, gateUrl] = process.argv.slice(2);
const report = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const keypair = await generateKeyPair('ES256');
const jkt = await calculateThumbprint(keypair.publicKey);

// Ask for the task, retrying once if the server asks for its nonce.
const tasksUrl = `${issuer}/v1/tasks`;
const ask = async (nonce) =>
  fetch(tasksUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${lzat}`,
      dpop: await generateProof(keypair, tasksUrl, 'POST', nonce),
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      description: 'read the notes for a summary',
      permissions: ['notes.read'],
      resources: [gateUrl],
      ttl: '5m',
    }),
  });
let asked = await ask();
const serverNonce = asked.headers.get('dpop-nonce');
if (asked.status !== 201 && serverNonce) asked = await ask(serverNonce);
const task = await asked.json();
const app = (task.access_tokens ?? []).find((t) => t.resource.replace(/\/$/, '') === gateUrl.replace(/\/$/, ''));
const claims = app ? JSON.parse(Buffer.from(app.access_token.split('.')[1], 'base64url')) : {};
report('task', {
  status: asked.status,
  token_prefix: String(task.token).slice(0, 5),
  token_type: task.token_type,
  bound_jkt: task.task?.bound_to?.jkt ?? null,
  granted: task.granted,
  resources: (task.access_tokens ?? []).map((t) => t.resource),
  jwt_cnf_jkt: claims.cnf?.jkt ?? null,
  key_jkt: jkt,
  body: app ? undefined : task,
});
if (!app) process.exit(1);

// At the gate.
const htu = `${gateUrl}/notes/today`;
const call = (proof) =>
  fetch(htu, { headers: { authorization: `DPoP ${app.access_token}`, dpop: proof } });
const seen = async (response) => ({
  status: response.status,
  www_authenticate: response.headers.get('www-authenticate'),
  dpop_nonce: response.headers.get('dpop-nonce'),
  body: await response.text(),
});

const noNonce = await seen(await call(await generateProof(keypair, htu, 'GET', undefined, app.access_token)));
report('gate_without_nonce', noNonce);
const proof = await generateProof(keypair, htu, 'GET', noNonce.dpop_nonce ?? undefined, app.access_token);
report('gate_with_nonce', await seen(await call(proof)));
report('gate_replayed', await seen(await call(proof)));
