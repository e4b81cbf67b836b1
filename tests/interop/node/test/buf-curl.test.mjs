// buf curl against the real server: the commands of ../buf-curl-commands.mjs,
// run with bash exactly as written there but for the port.
//
// The commands discover the API through server reflection
// (grpc.reflection.v1, or v1alpha), so they pass only on a server that
// serves it; the tests marked "(no reflection)" read the schema from the
// repository's protos instead (--schema .).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  CREATE_GROUP,
  HEALTH_CHECK,
  LIST_CHANNELS,
  LIST_METHODS,
  withPort,
} from '../buf-curl-commands.mjs';
import { connect, newClient, User } from '../lib/chat.mjs';
import { REPO_ROOT, startServer } from '../lib/server.mjs';

const TEST = { timeout: 30_000 };
const BIN_DIR = fileURLToPath(new URL('../node_modules/.bin', import.meta.url));

/** Runs `command` with bash, `buf` being the npm package's binary. */
function run(command) {
  return new Promise((resolve) => {
    const env = { ...process.env, PATH: `${BIN_DIR}${path.delimiter}${process.env.PATH}` };
    execFile('bash', ['-c', command], { env, cwd: REPO_ROOT, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr, command });
    });
  });
}

/** Asserts `result` succeeded, explaining the failure otherwise. */
function assertSucceeded(result, needsReflection = true) {
  const hint = needsReflection
    ? '\n(this command discovers the API through server reflection: ' +
      'does the server serve grpc.reflection.v1?)'
    : '';
  assert.equal(
    result.code,
    0,
    `\`${result.command}\` exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}${hint}`,
  );
}

describe('buf curl', () => {
  let server;
  let client;
  let alice;
  before(async () => {
    server = await startServer();
    client = newClient(server.target);
    alice = await connect(client, 'alice');
  });
  after(async () => {
    alice?.close();
    client?.close();
    await server?.stop();
  });

  test('--list-methods lists every chat.v1.ChatService method (reflection)', TEST, async () => {
    const result = await run(withPort(LIST_METHODS, server.port));
    assertSucceeded(result);
    const methods = result.stdout.split('\n').filter(Boolean);
    for (const rpc of ['Connect', 'CreateGroupChat', 'JoinGroupChat', 'LeaveGroupChat', 'SendMessage', 'ListChannels', 'GetHistory']) {
      assert.ok(methods.includes(`chat.v1.ChatService/${rpc}`), `${rpc} missing from:\n${result.stdout}`);
    }
  });

  test('ListChannels as alice prints JSON listing alice (reflection)', TEST, async () => {
    const result = await run(withPort(LIST_CHANNELS, server.port));
    assertSucceeded(result);
    const { channels } = JSON.parse(result.stdout);
    // JSON leaves out default values: member_count 0 and joined false.
    assert.deepEqual(channels.find((c) => c.name === 'alice'), { name: 'alice', type: 'CHANNEL_TYPE_USER' });
  });

  test('CreateGroupChat with a JSON body creates the group (reflection)', TEST, async () => {
    const result = await run(withPort(CREATE_GROUP, server.port));
    assertSucceeded(result);
    assert.deepEqual(JSON.parse(result.stdout), {});
    const channels = await new User(client, 'alice').list();
    assert.deepEqual(channels.find((c) => c.name === 'general'), {
      name: 'general',
      type: 'CHANNEL_TYPE_GROUP',
      member_count: 1,
      joined: true,
    });
  });

  test('the health check reports chat.v1.ChatService SERVING (reflection)', TEST, async () => {
    const result = await run(withPort(HEALTH_CHECK, server.port));
    assertSucceeded(result);
    assert.deepEqual(JSON.parse(result.stdout), { status: 'SERVING' });
  });

  test('ListChannels with the schema from the repository (no reflection)', TEST, async () => {
    const command = withPort(LIST_CHANNELS, server.port).replace('buf curl', 'buf curl --schema .');
    const result = await run(command);
    assertSucceeded(result, false);
    const { channels } = JSON.parse(result.stdout);
    assert.deepEqual(channels.find((c) => c.name === 'alice'), { name: 'alice', type: 'CHANNEL_TYPE_USER' });
  });

  test('an RPC error comes back as a status code (no reflection)', TEST, async () => {
    const command = withPort(LIST_CHANNELS, server.port)
      .replace('buf curl', 'buf curl --schema .')
      .replace("'authorization: alice'", "'authorization: nobody'");
    const result = await run(command);
    assert.notEqual(result.code, 0, 'buf curl fails on an error status');
    assert.equal(JSON.parse(result.stderr).code, 'unauthenticated', result.stderr);
  });
});
