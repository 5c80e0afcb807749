// A real OpenID provider for Clearance's tests: node-oidc-provider on loopback.
//   node provider.mjs PORT   (the signing keys, private JWKs, come as JSON on stdin)
// Each test user is a client of its own, issued JWT access tokens for the resource
// "clearance" through the client credentials grant; the token's sub is the user, and a
// user given groups (input.groups: user → names) has them in the token's "groups" claim.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const input = await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(JSON.parse(data)));
});

const groups = input.groups || {};
const provider = new Provider(issuer, {
  jwks: { keys: input.keys },
  clients: [...new Set([...input.users, ...Object.keys(groups)])].map((user) => ({
    client_id: user,
    client_secret: `secret-${user}`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  })),
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => input.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'search',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: input.alg || 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => (token.kind === 'ClientCredentials'
    ? { sub: token.clientId, ...(groups[token.clientId] ? { groups: groups[token.clientId] } : {}) }
    : undefined),
});
provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
