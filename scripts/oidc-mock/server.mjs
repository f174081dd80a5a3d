// scripts/oidc-mock/server.mjs — local identity providers for Marquee's
// OAuth/OIDC tests and for the demo (`./scripts/run.sh`), built on the npm
// package oauth2-mock-server (installed by `scripts/stack.sh install` under
// .stack/oidc-mock; pass its entry point in OIDC_MOCK_MODULE).
//
// One process serves three providers on loopback, each on its own port:
//   google     OIDC, RS256 keys      (stands in for Google and Apple)
//   microsoft  OIDC, ES256 keys      (stands in for Microsoft)
//   github     plain OAuth 2.0: code exchange, then GET /user and
//              GET /user/emails like GitHub's API (also the Facebook shape)
//
// Who signs in is chosen by the authorization request's login_hint, e.g.
//   login_hint=sub=alice-1;email=alice@example.com;verified=true;name=Alice
// (a real provider would show its login page instead). The hint travels with
// the code to the token endpoint, whose tokens (and the user-info answers)
// then describe that user. Special hints: refuse=1 makes the token endpoint
// answer 400 invalid_grant.
//
// Usage: node server.mjs --out FILE [--secret-github S] [--secret-google S]
// Writes FILE (JSON) once listening: {"google": "http://127.0.0.1:PORT", …}.
// Exits on SIGTERM/SIGINT.
import { writeFileSync, renameSync } from 'node:fs';
import http from 'node:http';

const mod = process.env.OIDC_MOCK_MODULE;
if (!mod) {
  console.error('OIDC_MOCK_MODULE must name oauth2-mock-server/dist/index.mjs');
  process.exit(2);
}
const { OAuth2Server } = await import(mod);

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = arg('--out');
if (!out) {
  console.error('usage: server.mjs --out FILE');
  process.exit(2);
}

function parseHint(hint) {
  const claims = {};
  for (const part of String(hint || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) claims[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return claims;
}

async function provider(name, alg, secret) {
  const srv = new OAuth2Server();
  await srv.issuer.keys.generate(alg);
  const byCode = new Map();
  const byAccessToken = new Map();
  srv.service.on('beforeAuthorizeRedirect', (redirect, req) => {
    const code = redirect.url.searchParams.get('code');
    if (code) byCode.set(code, parseHint(req.query.login_hint));
  });
  srv.service.on('beforeTokenSigning', (token, req) => {
    const c = byCode.get(req.body && req.body.code);
    if (!c) return;
    if (c.sub) token.payload.sub = c.sub;
    if (c.email) token.payload.email = c.email;
    if (c.verified !== undefined) token.payload.email_verified = c.verified === 'true';
    if (c.name) token.payload.name = c.name;
  });
  srv.service.on('beforeResponse', (resp, req) => {
    const body = req.body || {};
    const c = byCode.get(body.code);
    let given = body.client_secret;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization || '');
    if (basic) given = Buffer.from(basic[1], 'base64').toString().split(':').slice(1).join(':');
    if (secret && given !== secret) {
      resp.statusCode = 401;
      resp.body = { error: 'invalid_client' };
    } else if (c && c.refuse) {
      resp.statusCode = 400;
      resp.body = { error: 'invalid_grant' };
    } else if (c && resp.body && resp.body.access_token) {
      byAccessToken.set(resp.body.access_token, c);
    }
    if (body.code) byCode.delete(body.code);
  });
  srv.service.on('beforeUserinfo', (resp, req) => {
    const tok = (req.headers.authorization || '').replace(/^Bearer /, '');
    const c = byAccessToken.get(tok);
    if (!c) {
      resp.statusCode = 401;
      resp.body = { error: 'invalid_token' };
      return;
    }
    resp.body = { sub: c.sub, email: c.email, email_verified: c.verified === 'true', name: c.name };
  });
  // GitHub-shaped API on the same port: GET /user, GET /user/emails.
  const inner = srv.service.requestHandler;
  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && (path === '/user' || path === '/user/emails')) {
      const tok = (req.headers.authorization || '').replace(/^Bearer /, '');
      const c = byAccessToken.get(tok);
      res.setHeader('content-type', 'application/json');
      if (!c) {
        res.statusCode = 401;
        res.end(JSON.stringify({ message: 'Bad credentials' }));
        return;
      }
      if (path === '/user') {
        // GitHub: numeric id; e-mail null unless public.
        res.end(JSON.stringify({ id: Number(c.sub) || c.sub, login: c.name || 'user', name: c.name || null,
                                 email: c.public_email || null }));
      } else {
        const list = [];
        if (c.email) list.push({ email: c.email, primary: true, verified: c.verified === 'true', visibility: null });
        list.push({ email: `${c.sub}@users.noreply.example`, primary: false, verified: true, visibility: null });
        res.end(JSON.stringify(list));
      }
      return;
    }
    inner(req, res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  srv.issuer.url = url;
  return { name, url, server };
}

const providers = [
  await provider('google', 'RS256', arg('--secret-google')),
  await provider('microsoft', 'ES256', arg('--secret-microsoft')),
  await provider('github', 'RS256', arg('--secret-github')),
];
const result = Object.fromEntries(providers.map((p) => [p.name, p.url]));
writeFileSync(`${out}.tmp`, JSON.stringify(result));
renameSync(`${out}.tmp`, out);
console.log(`oidc-mock listening: ${JSON.stringify(result)}`);

const stop = () => {
  for (const p of providers) p.server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
