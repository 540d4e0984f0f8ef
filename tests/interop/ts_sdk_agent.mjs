// An unmodified MCP client (the official TypeScript SDK 1.x,
// @modelcontextprotocol/sdk) behind which a human consents headlessly. The
// SDK does all of OAuth as shipped: it discovers the authorization server
// from the gate's 401, registers, builds the authorization request, exchanges
// the code, and on `403 insufficient_scope` runs `auth()` again with the
// wider scope. This script only provides the OAuthClientProvider (memory
// storage, and a redirect that drives Laissez's sign-in and consent pages
// over HTTP with a cookie jar, as a browser would) and, as every SDK 1.x
// application does, answers the transport's UnauthorizedError by handing
// the code to `transport.finishAuth` and trying again.
//
// Usage: node ts_sdk_agent.mjs MCP_URL USERNAME PASSWORD
// Prints JSON lines, one per step: {"step": "...", ...}.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { formFields } from './html_form.mjs';

const [mcpUrl, username, password] = process.argv.slice(2);
const redirectUrl = 'http://127.0.0.1:41998/callback';

function report(step, fields = {}) {
  console.log(JSON.stringify({ step, ...fields }));
}

// What the SDK did, seen from the provider and the wire (observed, never changed).
const observed = { scopesAsked: [], prompts: [], refreshTokenReceived: false, refreshesTried: 0 };

function observingFetch(url, init) {
  const body = init?.body;
  if (body instanceof URLSearchParams && body.get('grant_type') === 'refresh_token') {
    observed.refreshesTried += 1;
  }
  return fetch(url, init);
}

// A tiny browser: follows nothing by itself, keeps cookies.
class Browser {
  jar = new Map();

  async go(url, init = {}) {
    const headers = new Headers(init.headers || {});
    if (this.jar.size) headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      this.jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return response;
  }
}

/** The human in a fresh browser: signs in, approves what the page offers, returns the code. */
async function signInAndApprove(authorizationUrl) {
  const browser = new Browser();
  const origin = new URL(authorizationUrl).origin;
  const login = await browser.go(authorizationUrl);
  if (login.status !== 200) throw new Error(`authorization page: HTTP ${login.status}: ${await login.text()}`);
  const loginFields = formFields(await login.text());
  loginFields.push(['username', username], ['password', password]);
  const signedIn = await browser.go(`${origin}/oauth/login`, { method: 'POST', body: new URLSearchParams(loginFields) });
  if (signedIn.status !== 303 && signedIn.status !== 302) throw new Error(`sign-in: HTTP ${signedIn.status}`);
  const page = await (await browser.go(new URL(signedIn.headers.get('location'), origin))).text();
  if (!page.includes('Allow access')) throw new Error(`no consent page: ${page}`);
  const fields = formFields(page);
  fields.push(['decision', 'approve']);
  const answer = await browser.go(`${origin}/oauth/consent`, { method: 'POST', body: new URLSearchParams(fields) });
  if (answer.status !== 303 && answer.status !== 302) throw new Error(`consent: HTTP ${answer.status}`);
  const back = new URL(answer.headers.get('location'));
  if (back.searchParams.has('error')) throw new Error(`authorization refused: ${back.search}`);
  return back.searchParams.get('code');
}

/** The OAuthClientProvider: storage in memory; the redirect is the human consenting. */
class HeadlessProvider {
  stored = {};
  pendingCode = undefined;

  get redirectUrl() {
    return redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: 'Interop Test Agent (mcp TypeScript SDK 1.x)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this.stored.client;
  }

  saveClientInformation(client) {
    this.stored.client = client;
  }

  tokens() {
    return this.stored.tokens;
  }

  saveTokens(tokens) {
    if (tokens.refresh_token) observed.refreshTokenReceived = true;
    this.stored.tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this.stored.verifier = verifier;
  }

  codeVerifier() {
    return this.stored.verifier;
  }

  async redirectToAuthorization(authorizationUrl) {
    observed.scopesAsked.push(authorizationUrl.searchParams.get('scope') ?? '');
    observed.prompts.push(authorizationUrl.searchParams.get('prompt'));
    this.pendingCode = await signInAndApprove(authorizationUrl.href);
  }

  /** The code the last redirect brought back, once. */
  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    if (!code) throw new Error('the SDK asked for authorization but no redirect happened');
    return code;
  }
}

const provider = new HeadlessProvider();
const transportOptions = { authProvider: provider, fetch: observingFetch };

/**
 * Runs `action`; when the SDK answers UnauthorizedError (it sent the human to
 * authorize), finishes the authorization with the code and runs it once more.
 */
async function authorizing(transport, action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(provider.takeCode());
    return await action();
  }
}

async function connect() {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), transportOptions);
  const client = new Client({ name: 'laissez-interop-ts-sdk', version: '1.0.0' });
  try {
    await client.connect(transport);
    return { client, transport };
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(provider.takeCode());
    // A transport starts once: connect again with a new one, as the SDK's examples do.
    const next = new StreamableHTTPClientTransport(new URL(mcpUrl), transportOptions);
    const again = new Client({ name: 'laissez-interop-ts-sdk', version: '1.0.0' });
    await again.connect(next);
    return { client: again, transport: next };
  }
}

// A client that gives up may also hang; report that instead of waiting forever.
setTimeout(() => {
  report('error', { message: 'timed out', name: 'Timeout' });
  summarize();
  process.exit(1);
}, 30_000).unref();

function summarize() {
  report('summary', {
    scopes_asked: observed.scopesAsked,
    prompts: observed.prompts,
    refresh_token_received: observed.refreshTokenReceived,
    refreshes_tried: observed.refreshesTried,
  });
}

const text = (result) => result.content?.[0]?.text;

try {
  const { client, transport } = await connect();
  const tools = await client.listTools();
  report('tools', { tools: tools.tools.map((t) => t.name).sort(), scopes_asked: [...observed.scopesAsked] });

  const note = await client.callTool({ name: 'read_note', arguments: { name: 'groceries' } });
  report('read', { note: text(note), is_error: note.isError ?? false });

  // Needs notes.write: the gate answers 403 insufficient_scope, and the SDK
  // runs auth() again with the scope the challenge names.
  const before = observed.scopesAsked.length;
  const written = await authorizing(transport, () =>
    client.callTool({ name: 'write_note', arguments: { name: 'todo', text: 'buy milk' } }),
  );
  report('step_up', {
    reauthorized: observed.scopesAsked.length > before,
    scope: observed.scopesAsked.at(-1),
  });
  report('write', { written: text(written), is_error: written.isError ?? false });
  await client.close();
} catch (error) {
  report('error', { message: String(error?.message ?? error), name: error?.name, code: error?.code });
  process.exitCode = 1;
} finally {
  summarize();
  // A client left connected (its event stream open) keeps Node running.
  process.exit();
}
