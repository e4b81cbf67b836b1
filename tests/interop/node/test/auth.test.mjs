// The `authorization` header: required on every RPC but Connect, bare or
// in the Bearer form, naming a connected user.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { expectStatus, grpc, harness, unary, User, waitFor } from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };

/** One valid-looking request per RPC besides Connect. */
function requests(group, recipient) {
  return [
    ['CreateGroupChat', { name: group }],
    ['JoinGroupChat', { name: group }],
    ['LeaveGroupChat', { name: group }],
    ['SendMessage', { recipient, text: 'hi' }],
    ['ListChannels', {}],
  ];
}

describe('authorization', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('UNAUTHENTICATED without the header, on every RPC but Connect', TEST, async (t) => {
    const h = harness(t, server);
    const { user } = await h.connect(h.name('alice'));
    const group = h.name('general');
    await user.create(group);
    for (const [method, request] of requests(group, user.name)) {
      await expectStatus(unary(h.client, method, request, undefined), grpc.status.UNAUTHENTICATED, method);
    }
  });

  test('UNAUTHENTICATED when the header names no connected user', TEST, async (t) => {
    const h = harness(t, server);
    const { user } = await h.connect(h.name('alice'));
    const group = h.name('general');
    await user.create(group);
    const values = ['', 'Bearer', 'Bearer ', h.name('ghost'), `Bearer ${h.name('ghost')}`, group, 'not a name'];
    for (const value of values) {
      for (const [method, request] of requests(group, user.name)) {
        await expectStatus(
          unary(h.client, method, request, value),
          grpc.status.UNAUTHENTICATED,
          `${method} with authorization ${JSON.stringify(value)}`,
        );
      }
    }
  });

  test('the Bearer form names the caller like the bare form', TEST, async (t) => {
    const h = harness(t, server);
    const { session, user: alice } = await h.connect(h.name('alice'));
    const bearer = new User(h.client, alice.name, `Bearer ${alice.name}`);
    const group = h.name('general');
    await bearer.create(group);
    const channels = await bearer.list();
    assert.deepEqual(
      channels.find((c) => c.name === group),
      { name: group, type: 'CHANNEL_TYPE_GROUP', member_count: 1, joined: true },
    );
    const response = await bearer.send(group, 'sent with Bearer');
    const message = await session.nextMessage();
    assert.equal(message.sender, alice.name);
    assert.equal(message.id, response.message_id);
    await bearer.leave(group);
    // An auth scheme is case-insensitive (RFC 9110, section 11.1).
    for (const value of [`bearer ${alice.name}`, `BEARER ${alice.name}`]) {
      await new User(h.client, alice.name, value).list();
    }
  });

  test('a user’s header stops working once its stream is closed', TEST, async (t) => {
    const h = harness(t, server);
    const { session, user } = await h.connect(h.name('alice'));
    await user.list();
    session.close();
    await waitFor(async () => {
      try {
        await user.list();
        return false;
      } catch (error) {
        if (error.code === grpc.status.UNAUTHENTICATED) {
          return true;
        }
        throw error;
      }
    }, `${user.name}'s header to be refused after disconnect`);
  });
});
