// The test harness itself: reading the port from the server's log line.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { listeningPort } from '../lib/server.mjs';

test('listeningPort reads the term and json listening lines, and nothing else', () => {
  assert.equal(
    listeningPort(
      'Nov 22 01:37:05.697 INFO listening, max_text_bytes: 4096, queue_depth: 1024, ' +
        'max_connections: 10000, threads: 2, port: 39593, address: 127.0.0.1:0',
    ),
    39593,
  );
  assert.equal(
    listeningPort('{"msg":"listening","level":"INFO","ts":"2026-11-22T01:37:05Z","port":39593,"address":"127.0.0.1:0"}'),
    39593,
  );
  assert.equal(listeningPort('Nov 22 01:37:05.697 INFO connected, peer: ipv4:127.0.0.1:50000, user: alice'), null);
  assert.equal(listeningPort('{"msg":"connected","port":1}'), null);
  assert.equal(listeningPort('{not json'), null);
});
