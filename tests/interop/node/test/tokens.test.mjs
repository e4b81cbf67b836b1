// Token mode over TLS from Node: the README's secure example, tokens minted
// by `jsonwebtoken` refused with their own message, and a client that does
// not trust the server's CA. Certificates are made at test time with the
// openssl command; no key is committed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import jwt from 'jsonwebtoken';

import { mintToken, runSecureExample } from '../example-secure.mjs';
import { chatService, grpc, statusName } from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };
const SECRET = 'node-interop-secret-of-at-least-32-bytes';

/** A CA and a server certificate for 127.0.0.1 signed by it, in `dir`. */
function makeCerts(dir) {
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (name) => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`];
  openssl('req', '-x509', '-days', '2', '-subj', '/CN=node test CA', '-out', 'ca.pem', ...key('ca'));
  openssl('req', '-subj', '/CN=localhost', '-out', 'server.csr', ...key('server'));
  writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-extfile', 'server.ext', '-out', 'server.pem');
}

/** The status ListChannels with `token` fails with, as [name, details]. */
function refusal(client, token) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client.ListChannels({}, metadata, { deadline: Date.now() + 5000 }, (error) =>
      resolve(error ? [statusName(error.code), error.details] : ['OK', '']),
    );
  });
}

describe('token mode over TLS', () => {
  let dir;
  let server;
  let ca;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chat-node-tls-'));
    makeCerts(dir);
    ca = readFileSync(path.join(dir, 'ca.pem'));
    writeFileSync(path.join(dir, 'secret'), `${SECRET}\n`);
    server = await startServer([
      '--auth-token-secret-file', path.join(dir, 'secret'),
      '--tls-cert', path.join(dir, 'server.pem'),
      '--tls-key', path.join(dir, 'server.key'),
    ]);
  });
  after(async () => {
    await server?.stop();
    if (dir) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the README secure example chats as the token user', TEST, async () => {
    const result = await runSecureExample(server.target, ca, mintToken(SECRET, 'alice'));
    assert.equal(result.connected, 'alice');
    assert.equal(result.delivered.sender, 'alice');
    assert.equal(result.delivered.text, 'Hello over TLS');
    assert.equal(result.delivered.id, result.sent.message_id);
  });

  test('tokens minted by jsonwebtoken are refused with their own message', TEST, async () => {
    const Service = chatService();
    const client = new Service(server.target, grpc.credentials.createSsl(ca));
    const now = Math.floor(Date.now() / 1000);
    try {
      const cases = [
        [jwt.sign({ sub: 'alice', exp: now - 120 }, SECRET), 'token expired'],
        [jwt.sign({ sub: 'alice' }, SECRET, { algorithm: 'HS512', expiresIn: 60 }), 'token algorithm must be HS256'],
        [jwt.sign({ sub: 'alice' }, 'another-secret-of-at-least-32-bytes!', { expiresIn: 60 }), 'token signature does not verify'],
        [jwt.sign({ sub: 'alice' }, SECRET), 'token has no exp claim'],
        [jwt.sign({ sub: 'not a name' }, SECRET, { expiresIn: 60 }), 'token sub is not a valid username'],
      ];
      for (const [token, message] of cases) {
        assert.deepEqual(await refusal(client, token), ['UNAUTHENTICATED', message]);
      }
    } finally {
      client.close();
    }
  });

  test('a client that does not trust the CA gets nowhere', TEST, async () => {
    const Service = chatService();
    const client = new Service(server.target, grpc.credentials.createSsl());
    try {
      const [status] = await refusal(client, mintToken(SECRET, 'alice'));
      assert.equal(status, 'UNAVAILABLE');
    } finally {
      client.close();
    }
  });
});
