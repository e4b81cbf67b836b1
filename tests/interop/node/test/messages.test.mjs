// SendMessage: direct and group deliveries, the ids and timestamps the
// sender gets back, and the refusals.
//
// "Did not arrive" is checked without sleeping: after the message under
// test, the same sender sends a marker to the user in question. One
// sender's messages to one recipient arrive in send order, so if the first
// message that user receives is the marker, the earlier one was not
// delivered to them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { expectStatus, grpc, harness } from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };

/** Asserts `message` is what `sender` sent, as `response` described it. */
function assertDelivered(message, { response, sender, recipient, type, text }) {
  assert.deepEqual(message, {
    id: response.message_id,
    sender,
    recipient,
    recipient_type: type,
    text,
    sent_at: response.sent_at,
    from_operator: false,
  });
}

/** Asserts the next message `session` receives is the marker `text` from `from`. */
async function assertNextIsMarker(session, from, text) {
  const next = await session.nextMessage();
  assert.equal(next.sender, from, `${session.username} got an unexpected message: ${JSON.stringify(next)}`);
  assert.equal(next.text, text, `${session.username} got an unexpected message: ${JSON.stringify(next)}`);
}

describe('SendMessage', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('a direct message reaches the recipient only', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const bob = await h.connect(h.name('bob'));
    const carol = await h.connect(h.name('carol'));

    const response = await alice.user.send(bob.user.name, 'hello bob');
    assert.match(response.message_id, /^[1-9][0-9]*$/);
    assert.ok(Number(response.sent_at.seconds) > 1_600_000_000, `sent_at ${JSON.stringify(response.sent_at)}`);
    assertDelivered(await bob.session.nextMessage(), {
      response,
      sender: alice.user.name,
      recipient: bob.user.name,
      type: 'CHANNEL_TYPE_USER',
      text: 'hello bob',
    });

    // Neither the sender nor a bystander got it.
    await alice.user.send(alice.user.name, 'marker for alice');
    await assertNextIsMarker(alice.session, alice.user.name, 'marker for alice');
    await alice.user.send(carol.user.name, 'marker for carol');
    await assertNextIsMarker(carol.session, alice.user.name, 'marker for carol');
  });

  test('a message to oneself arrives once', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const response = await alice.user.send(alice.user.name, 'note to self');
    assertDelivered(await alice.session.nextMessage(), {
      response,
      sender: alice.user.name,
      recipient: alice.user.name,
      type: 'CHANNEL_TYPE_USER',
      text: 'note to self',
    });
    await alice.user.send(alice.user.name, 'second note');
    await assertNextIsMarker(alice.session, alice.user.name, 'second note');
  });

  test('one sender’s direct messages arrive in order with increasing ids', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const bob = await h.connect(h.name('bob'));
    const responses = [];
    for (let i = 0; i < 20; i += 1) {
      responses.push(await alice.user.send(bob.user.name, `message ${i}`));
    }
    const received = await bob.session.messages(20);
    assert.deepEqual(
      received.map((m) => [m.id, m.text]),
      responses.map((r, i) => [r.message_id, `message ${i}`]),
    );
    const ids = responses.map((r) => BigInt(r.message_id));
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `ids increase: ${ids}`);
  });

  test('a group message reaches every member, the sender included, with the returned id', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const bob = await h.connect(h.name('bob'));
    const carol = await h.connect(h.name('carol'));
    const outsider = await h.connect(h.name('dave'));
    const group = h.name('general');
    await alice.user.create(group);
    await bob.user.join(group);
    await carol.user.join(group);

    const response = await bob.user.send(group, 'hello group');
    for (const member of [alice, bob, carol]) {
      assertDelivered(await member.session.nextMessage(), {
        response,
        sender: bob.user.name,
        recipient: group,
        type: 'CHANNEL_TYPE_GROUP',
        text: 'hello group',
      });
    }
    await bob.user.send(outsider.user.name, 'marker for dave');
    await assertNextIsMarker(outsider.session, bob.user.name, 'marker for dave');
  });

  test('every member sees a group’s messages in the same order', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const bob = await h.connect(h.name('bob'));
    const group = h.name('general');
    await alice.user.create(group);
    await bob.user.join(group);
    // Two senders at once, so the server decides the order.
    const sends = [];
    for (let i = 0; i < 10; i += 1) {
      sends.push(alice.user.send(group, `from alice ${i}`), bob.user.send(group, `from bob ${i}`));
    }
    const responses = await Promise.all(sends);
    const seenByAlice = await alice.session.messages(20);
    const seenByBob = await bob.session.messages(20);
    assert.deepEqual(seenByAlice, seenByBob);
    const byId = (a, b) => (BigInt(a) < BigInt(b) ? -1 : 1);
    assert.deepEqual(
      seenByAlice.map((m) => m.id).sort(byId),
      responses.map((r) => r.message_id).sort(byId),
    );
    // Ids increase in the order the server accepted the messages, which is
    // the order a group delivers them in.
    const ids = seenByAlice.map((m) => BigInt(m.id));
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `delivered ids increase: ${ids}`);
  });

  test('a member who left gets no more of the group’s messages', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const bob = await h.connect(h.name('bob'));
    const group = h.name('general');
    await alice.user.create(group);
    await bob.user.join(group);
    await bob.user.leave(group);
    await alice.user.send(group, 'after bob left');
    assert.equal((await alice.session.nextMessage()).text, 'after bob left');
    await alice.user.send(bob.user.name, 'marker for bob');
    await assertNextIsMarker(bob.session, alice.user.name, 'marker for bob');
  });

  test('PERMISSION_DENIED when sending to a group one is not in', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const bob = await h.connect(h.name('bob'));
    const group = h.name('general');
    await alice.user.create(group);
    await expectStatus(bob.user.send(group, 'let me in'), grpc.status.PERMISSION_DENIED, 'a non-member sending');
    // And alice got nothing from it.
    await alice.user.send(alice.user.name, 'marker');
    await assertNextIsMarker(alice.session, alice.user.name, 'marker');
  });

  test('NOT_FOUND when no connected user or group has the name', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    await expectStatus(alice.user.send(h.name('nobody'), 'hi'), grpc.status.NOT_FOUND, 'sending to nobody');
  });

  test('INVALID_ARGUMENT for blank or too long texts and invalid recipients', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const self = alice.user.name;
    for (const text of ['', ' ', ' \t\n ', 'x'.repeat(4097), 'é'.repeat(2049)]) {
      await expectStatus(
        alice.user.send(self, text),
        grpc.status.INVALID_ARGUMENT,
        `sending a text of ${Buffer.byteLength(text)} bytes`,
      );
    }
    for (const recipient of ['', 'no spaces', 'r'.repeat(65)]) {
      await expectStatus(
        alice.user.send(recipient, 'hi'),
        grpc.status.INVALID_ARGUMENT,
        `sending to ${JSON.stringify(recipient)}`,
      );
    }
    // The limit is 4096 bytes of UTF-8: exactly that is accepted, as sent.
    for (const text of ['y'.repeat(4096), 'é'.repeat(2048), ' padded text ']) {
      await alice.user.send(self, text);
      assert.equal((await alice.session.nextMessage()).text, text);
    }
  });

  test('RESOURCE_EXHAUSTED for a request over 64 KiB, and the connection goes on', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    await expectStatus(
      alice.user.send(alice.user.name, 'z'.repeat(65 * 1024)),
      grpc.status.RESOURCE_EXHAUSTED,
      'a 65 KiB SendMessage',
    );
    await alice.user.send(alice.user.name, 'still here');
    assert.equal((await alice.session.nextMessage()).text, 'still here');
  });
});
