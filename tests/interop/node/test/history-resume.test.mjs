// Group history and session resume through grpc-js and proto-loader: the
// fields the dynamic code must carry (Connected.resume_token, epoch and
// resume_status; JoinGroupChatResponse.position; GetHistory's request and
// response; ConnectRequest.resume), with uint64 ids as strings.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, expectStatus, grpc, harness, waitFor } from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };

/** Connects `name` once the server has seen its last stream end: a Connect
 * refused with ALREADY_EXISTS changes nothing, so it is tried again. */
async function reconnect(h, name, resume) {
  const session = await waitFor(async () => {
    try {
      return await connect(h.client, name, undefined, resume);
    } catch (error) {
      if (error.code === grpc.status.ALREADY_EXISTS) {
        return null;
      }
      throw error;
    }
  }, `${name} to connect again`);
  h.sessions.push(session);
  return session;
}

describe('GetHistory and resume', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('Connected carries a resume token, the epoch and the resume status', TEST, async (t) => {
    const h = harness(t, server);
    const { session: alice } = await h.connect(h.name('alice'));
    const { session: bob } = await h.connect(h.name('bob'));
    // connect() checked each has exactly these four fields, set.
    assert.equal(alice.connected.resume_status, 'RESUME_STATUS_UNSPECIFIED');
    assert.notEqual(alice.connected.resume_token, bob.connected.resume_token);
    assert.equal(alice.connected.epoch, bob.connected.epoch);
  });

  test('JoinGroupChat answers the position; GetHistory pages around it', TEST, async (t) => {
    const h = harness(t, server);
    const { user: alice } = await h.connect(h.name('alice'));
    const { user: bob, session: bobSession } = await h.connect(h.name('bob'));
    const group = h.name('room');
    await alice.create(group);
    const sent = [];
    for (const text of ['one', 'two', 'three']) {
      sent.push((await alice.send(group, text)).message_id);
    }

    const { position } = await bob.join(group);
    assert.equal(typeof position, 'string', 'uint64 as a string');
    assert.equal(position, sent[2]);

    const backward = await bob.history(group, { before_id: (BigInt(position) + 1n).toString() });
    assert.deepEqual(
      backward.messages.map((m) => [m.id, m.sender, m.recipient, m.recipient_type, m.text]),
      sent.map((id, i) => [id, alice.name, group, 'CHANNEL_TYPE_GROUP', ['one', 'two', 'three'][i]]),
    );
    assert.equal(backward.more, false);
    assert.equal(backward.truncated, false);

    const forward = await bob.history(group, { after_id: sent[0], limit: 1 });
    assert.deepEqual(forward.messages.map((m) => m.id), [sent[1]]);
    assert.equal(forward.more, true);
    assert.equal(forward.truncated, false);

    // What the stream delivers after the join lies above the position.
    const { message_id: later } = await alice.send(group, 'four');
    const live = await bobSession.nextMessage();
    assert.equal(live.id, later);
    assert.ok(BigInt(live.id) > BigInt(position));

    const { user: carol } = await h.connect(h.name('carol'));
    await expectStatus(carol.history(group), grpc.status.PERMISSION_DENIED, 'a non-member');
    await expectStatus(bob.history(h.name('nowhere')), grpc.status.NOT_FOUND, 'a missing group');
    await expectStatus(bob.history(group, { limit: 501 }), grpc.status.INVALID_ARGUMENT, 'limit 501');
  });

  test('a resumed session replays what its stream did not deliver', TEST, async (t) => {
    const h = harness(t, server);
    const name = h.name('alice');
    const { session: alice } = await h.connect(name);
    const { user: bob } = await h.connect(h.name('bob'));
    const sent = [];
    for (const text of ['read', 'unread 1', 'unread 2']) {
      sent.push((await bob.send(name, text)).message_id);
    }
    assert.equal((await alice.nextMessage()).id, sent[0]);
    alice.close();

    const resumed = await reconnect(h, name, { token: alice.connected.resume_token, after_id: sent[0] });
    assert.equal(resumed.connected.resume_status, 'RESUME_STATUS_RESUMED');
    assert.equal(resumed.connected.epoch, alice.connected.epoch);
    const replay = await resumed.messages(2);
    assert.deepEqual(replay.map((m) => [m.id, m.text]), [
      [sent[1], 'unread 1'],
      [sent[2], 'unread 2'],
    ]);

    // The token is used up.
    resumed.close();
    const again = await reconnect(h, name, { token: alice.connected.resume_token, after_id: '0' });
    assert.equal(again.connected.resume_status, 'RESUME_STATUS_UNKNOWN');
  });
});
