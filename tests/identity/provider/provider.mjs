// A real OpenID provider for Clearance's tests: node-oidc-provider on loopback.
//   node provider.mjs PORT   (the signing keys, private JWKs, come as JSON on stdin)
// Each test user is a client of its own, issued JWT access tokens for the resource
// "clearance" through the client credentials grant; the token's sub is the user, and a
// user given groups (input.groups: user → names) has them in the token's "groups" claim.
// Web clients (input.web_clients: [{client_id, redirect_uris}]) are public clients of the
// authorization code grant with PKCE (S256): the same users sign in at the login form of
// /interaction/UID (fields "login" and "password", the password being "secret-USER"; an
// unknown user or a wrong password is refused), consent is given without asking (these are
// the organisation's own pages), and the access token is a JWT for the requested resource,
// with sub the user who signed in and their groups, as above.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const input = await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(JSON.parse(data)));
});

const groups = input.groups || {};
const people = new Set([...input.users, ...Object.keys(groups)]);
const withGroups = (user) => (groups[user] ? { groups: groups[user] } : {});
const provider = new Provider(issuer, {
  jwks: { keys: input.keys },
  clients: [
    ...[...people].map((user) => ({
      client_id: user,
      client_secret: `secret-${user}`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    })),
    ...(input.web_clients || []).map(({ client_id, redirect_uris }) => ({
      client_id,
      redirect_uris,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
  ],
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  findAccount: (ctx, id) => (people.has(id)
    ? { accountId: id, claims: () => ({ sub: id }) }
    : undefined),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // The web clients' own origins may call the token endpoint from a page (the default's rule).
  clientBasedCORS: (ctx, origin, client) => origin !== 'null'
    && client.clientAuthMethod === 'none'
    && client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin),
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
  extraTokenClaims: (ctx, token) => {
    if (token.kind === 'ClientCredentials') return { sub: token.clientId, ...withGroups(token.clientId) };
    if (token.kind === 'AccessToken') return withGroups(token.accountId);
    return undefined;
  },
});

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const loginPage = (uid, clientId, error) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><main><h1>Sign in to ${escape(clientId)}</h1>
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}">
<label for="login">Username</label> <input id="login" name="login" autocomplete="username" required>
<label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></main></body></html>
`;

const formBody = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => resolve(new URLSearchParams(data)));
  req.on('error', reject);
});

function send(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

// Everything the provider asks before its redirect back: everything requested is granted.
async function consent(req, res, { grantId, session, params, prompt: { details } }) {
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true });
}

async function interaction(req, res) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return send(res, 400, 'no sign-in in progress (start again at the client)\n');
  }
  const { uid, prompt, params } = details;
  if (prompt.name === 'consent') return consent(req, res, details);
  if (prompt.name !== 'login') return send(res, 501, `prompt ${escape(prompt.name)} is not implemented\n`);
  if (req.method !== 'POST') return send(res, 200, loginPage(uid, params.client_id));
  const form = await formBody(req);
  const user = form.get('login') || '';
  if (!people.has(user) || form.get('password') !== `secret-${user}`) {
    return send(res, 401, loginPage(uid, params.client_id, 'Unknown user or wrong password.'));
  }
  return provider.interactionFinished(req, res, { login: { accountId: user } },
    { mergeWithLastSubmission: false });
}

const callback = provider.callback();
createServer((req, res) => {
  if (new URL(req.url, issuer).pathname.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => send(res, 500, `${escape(error.message)}\n`));
  } else {
    callback(req, res);
  }
}).listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
