// Connect: the `connected` event, refusals, the name coming free again, the
// connection limit, and shutdown.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  connect,
  expectStatus,
  grpc,
  harness,
  newClient,
  User,
  waitFor,
} from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };

describe('Connect', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('the first event is `connected` with the username, and RPCs work after it', TEST, async (t) => {
    const h = harness(t, server);
    const name = h.name('alice');
    // connect() asserts the first event is `connected` with exactly the username,
    // a resume token, the epoch and RESUME_STATUS_UNSPECIFIED.
    const { session, user } = await h.connect(name);
    assert.equal(session.events.length, 0, 'nothing but `connected` arrives unasked');
    const channels = await user.list();
    assert.ok(channels.some((c) => c.name === name && c.type === 'CHANNEL_TYPE_USER'));
  });

  test('names of 1 and 64 characters from [A-Za-z0-9_.-] are accepted', TEST, async (t) => {
    const h = harness(t, server);
    const serial = h.name('n').slice(2);
    await h.connect('x');
    await h.connect(`Aa0_.-${serial}`.padEnd(64, 'z'));
  });

  test('ALREADY_EXISTS when the name is held by a connected user', TEST, async (t) => {
    const h = harness(t, server);
    const name = h.name('bob');
    await h.connect(name);
    await expectStatus(connect(h.client, name), grpc.status.ALREADY_EXISTS, 'a second Connect');
  });

  test('ALREADY_EXISTS when the name is held by a group', TEST, async (t) => {
    const h = harness(t, server);
    const { user } = await h.connect(h.name('carol'));
    const group = h.name('room');
    await user.create(group);
    await expectStatus(connect(h.client, group), grpc.status.ALREADY_EXISTS, 'Connect as a group name');
  });

  test('INVALID_ARGUMENT for invalid usernames', TEST, async (t) => {
    const h = harness(t, server);
    for (const bad of ['', 'a'.repeat(65), 'with space', 'slash/name', 'émile', 'a:b', 'tab\t']) {
      await expectStatus(
        connect(h.client, bad),
        grpc.status.INVALID_ARGUMENT,
        `Connect as ${JSON.stringify(bad)}`,
      );
    }
  });

  test('names are case-sensitive', TEST, async (t) => {
    const h = harness(t, server);
    const name = h.name('dave');
    await h.connect(name);
    await h.connect(name.toUpperCase());
  });

  test('after the stream is cancelled the name is free again', TEST, async (t) => {
    const h = harness(t, server);
    const name = h.name('erin');
    const { session } = await h.connect(name);
    session.close();
    // The server frees the name promptly but asynchronously: retry until it
    // takes the name, within a deadline.
    const again = await waitFor(async () => {
      try {
        return await connect(h.client, name);
      } catch (error) {
        if (error.code === grpc.status.ALREADY_EXISTS) {
          return null;
        }
        throw error;
      }
    }, `${name} to be free after its stream was cancelled`);
    h.sessions.push(again);
  });
});

test('RESOURCE_EXHAUSTED past --max-connections, and a freed slot is reusable', TEST, async (t) => {
  const server = await startServer(['--max-connections', '2']);
  const h = harness(t, server); // closed first: after hooks run in order
  t.after(() => server.stop());
  const { session: first } = await h.connect('one');
  await h.connect('two');
  await expectStatus(connect(h.client, 'three'), grpc.status.RESOURCE_EXHAUSTED, 'a third Connect');
  first.close();
  const third = await waitFor(async () => {
    try {
      return await connect(h.client, 'three');
    } catch (error) {
      if (error.code === grpc.status.RESOURCE_EXHAUSTED) {
        return null;
      }
      throw error;
    }
  }, 'a connection slot to come free');
  h.sessions.push(third);
});

test('SIGTERM ends open streams with UNAVAILABLE and the server exits 0', TEST, async () => {
  const server = await startServer();
  const client = newClient(server.target);
  try {
    const session = await connect(client, 'frank');
    await new User(client, 'frank').create('frank-room');
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null, killed: false }, `server log:\n${server.log}`);
    const error = await session.waitForEnd();
    assert.equal(error?.code, grpc.status.UNAVAILABLE, `stream ended with ${error?.code}: ${error?.details}`);
  } finally {
    client.close();
    await server.stop();
  }
});
