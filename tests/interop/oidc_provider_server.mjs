// oidc-provider (npm), the reference OpenID Connect / OAuth server in Node,
// configured for the client credentials grant with ES256 JWT access tokens, so the
// benchmark can compare token endpoints side by side on this machine.
//
// Usage: node oidc_provider_server.mjs PORT CLIENT_ID CLIENT_SECRET
// Prints "listening on http://127.0.0.1:PORT" when ready.

import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const resource = 'https://bench.example';

// An ES256 signing key, so both servers sign the same kind of token.
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'bench.read',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  scopes: ['bench.read'],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'bench.read', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
    },
  },
});
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error(err));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
