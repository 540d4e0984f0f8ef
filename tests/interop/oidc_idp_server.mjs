// oidc-provider (npm) as an organization's identity provider: the upstream
// OpenID Connect provider Laissez federates sign-in to. Its development
// interactions render a sign-in form (any login, any password: the login
// becomes the subject and preferred_username) and a consent form, which the
// federation tests fill in over HTTP like a person at a browser.
//
// Usage: node oidc_idp_server.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
// Prints "listening on http://127.0.0.1:PORT" when ready.

import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

// RS256, the algorithm most providers sign ID tokens with.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'idp-1' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
  },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({
      sub: id,
      preferred_username: id,
      name: id,
      email: `${id}@example.com`,
      email_verified: true,
    }),
  }),
  cookies: { keys: ['laissez-interop-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error(err));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
