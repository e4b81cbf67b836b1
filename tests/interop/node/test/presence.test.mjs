// Who is here, through grpc-js and proto-loader: ConnectRequest.events, the
// `membership` and `typing` cases of ConnectResponse's `event` oneof (read
// by name, as `oneofs: true` gives it), ListGroupMembers and SendTyping.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Session, expectStatus, grpc, harness, unary } from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };
const BOTH = ['EVENT_TYPE_MEMBERSHIP', 'EVENT_TYPE_TYPING'];

/** Connects `username` asking for `events` (none: the field is left out, as
 * an old client sends it); resolves with its session once `connected` came. */
async function connectAsking(h, username, events) {
  const request = events === undefined ? { username } : { username, events };
  const session = new Session(h.client.Connect(request), username);
  h.sessions.push(session);
  const first = await session.nextEvent();
  assert.equal(first.event, 'connected', `${username}'s first event`);
  assert.equal(first.connected.username, username);
  return session;
}

/** The next event of `session`, which must be the oneof case `kind`; its
 * payload. */
async function next(session, kind) {
  const event = await session.nextEvent();
  assert.equal(event.event, kind, `${session.username}: expected ${kind}, got ${JSON.stringify(event)}`);
  return event[kind];
}

/** A membership event's fields but its time, after checking the time. */
async function membership(session) {
  const { at, ...rest } = await next(session, 'membership');
  assert.ok(Math.abs(Number(at.seconds) * 1000 - Date.now()) < 60_000, `at is now: ${JSON.stringify(at)}`);
  return rest;
}

/** Asserts nothing is waiting on `session`: the next event is a marker its
 * user sends itself now. */
async function nothingPending(h, session) {
  const { message_id: id } = await unary(
    h.client,
    'SendMessage',
    { recipient: session.username, text: 'marker' },
    session.username,
  );
  const { messages } = await next(session, 'delivery');
  assert.deepEqual(
    messages.map((m) => m.id),
    [id],
    `${session.username}: nothing before the marker`,
  );
}

const typing = (h, caller, recipient) => unary(h.client, 'SendTyping', { recipient }, caller);
const members = (h, caller, request) => unary(h.client, 'ListGroupMembers', request, caller);

describe('presence', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('membership events: JOINED, LEFT, DISCONNECTED in order with the messages', TEST, async (t) => {
    const h = harness(t, server);
    const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((base) => h.name(base));
    const aliceStream = await connectAsking(h, alice, BOTH);
    const bobStream = await connectAsking(h, bob, ['EVENT_TYPE_MEMBERSHIP']);
    const carolStream = await connectAsking(h, carol, []);
    const group = h.name('room');
    const joined = (user, count, position) => ({
      group,
      user,
      kind: 'MEMBERSHIP_CHANGE_KIND_JOINED',
      member_count: count,
      position,
    });

    await unary(h.client, 'CreateGroupChat', { name: group }, alice);
    assert.deepEqual(await membership(aliceStream), joined(alice, 1, '0'));
    assert.deepEqual(await unary(h.client, 'JoinGroupChat', { name: group }, bob), { position: '0' });
    // The joiner is told too.
    assert.deepEqual(await membership(aliceStream), joined(bob, 2, '0'));
    assert.deepEqual(await membership(bobStream), joined(bob, 2, '0'));

    const { message_id: id } = await unary(h.client, 'SendMessage', { recipient: group, text: 'hi' }, bob);
    await unary(h.client, 'LeaveGroupChat', { name: group }, bob);
    assert.deepEqual((await next(aliceStream, 'delivery')).messages.map((m) => m.id), [id]);
    assert.deepEqual(await membership(aliceStream), {
      group,
      user: bob,
      kind: 'MEMBERSHIP_CHANGE_KIND_LEFT',
      member_count: 1,
      position: id,
    });

    assert.deepEqual(await unary(h.client, 'JoinGroupChat', { name: group }, carol), { position: id });
    assert.deepEqual(await membership(aliceStream), joined(carol, 2, id));
    carolStream.close();
    assert.deepEqual(await membership(aliceStream), {
      group,
      user: carol,
      kind: 'MEMBERSHIP_CHANGE_KIND_DISCONNECTED',
      member_count: 1,
      position: id,
    });
    // bob left before his message went out, so he got it and nothing after.
    assert.deepEqual((await next(bobStream, 'delivery')).messages.map((m) => m.id), [id]);
    await nothingPending(h, bobStream);
    await nothingPending(h, aliceStream);
  });

  test('typing: direct and group, throttled, only to streams that asked', TEST, async (t) => {
    const h = harness(t, server);
    const [alice, bob, old] = ['alice', 'bob', 'old'].map((base) => h.name(base));
    const aliceStream = await connectAsking(h, alice, BOTH);
    const bobStream = await connectAsking(h, bob, ['EVENT_TYPE_TYPING']);
    const oldStream = await connectAsking(h, old, undefined);
    const group = h.name('room');
    await unary(h.client, 'CreateGroupChat', { name: group }, alice);
    await unary(h.client, 'JoinGroupChat', { name: group }, bob);
    await unary(h.client, 'JoinGroupChat', { name: group }, old);
    for (let i = 0; i < 3; i += 1) {
      await membership(aliceStream);
    }

    assert.deepEqual(await typing(h, bob, alice), {});
    assert.deepEqual(await next(aliceStream, 'typing'), {
      conversation: bob,
      conversation_type: 'CHANNEL_TYPE_USER',
      user: bob,
    });
    // Within 2 s the same sender and conversation is dropped (answered OK).
    assert.deepEqual(await typing(h, bob, alice), {});
    await typing(h, bob, group);
    assert.deepEqual(await next(aliceStream, 'typing'), {
      conversation: group,
      conversation_type: 'CHANNEL_TYPE_GROUP',
      user: bob,
    });
    await typing(h, old, group);
    assert.deepEqual(await next(aliceStream, 'typing'), {
      conversation: group,
      conversation_type: 'CHANNEL_TYPE_GROUP',
      user: old,
    });
    assert.equal((await next(bobStream, 'typing')).user, old);
    await typing(h, alice, old);
    await nothingPending(h, aliceStream);
    await nothingPending(h, bobStream);
    // A stream that asked for nothing got neither typing nor membership.
    await nothingPending(h, oldStream);

    await expectStatus(typing(h, alice, h.name('nobody')), grpc.status.NOT_FOUND, 'typing to nobody');
    const other = h.name('other');
    await unary(h.client, 'CreateGroupChat', { name: other }, old);
    await expectStatus(typing(h, alice, other), grpc.status.PERMISSION_DENIED, 'typing in a group one is not in');
    await expectStatus(typing(h, alice, 'a b'), grpc.status.INVALID_ARGUMENT, 'typing to a bad name');
    // Never stored.
    assert.deepEqual((await unary(h.client, 'GetHistory', { group }, alice)).messages, []);
  });

  test('ListGroupMembers: sorted pages, member_count and errors', TEST, async (t) => {
    const h = harness(t, server);
    const names = ['erin', 'carol', 'alice', 'dave', 'bob'].map((base) => h.name(base));
    for (const name of names) {
      await connectAsking(h, name, undefined);
    }
    const group = h.name('room');
    await unary(h.client, 'CreateGroupChat', { name: group }, names[0]);
    for (const name of names.slice(1)) {
      await unary(h.client, 'JoinGroupChat', { name: group }, name);
    }
    const outsider = h.name('zed');
    await connectAsking(h, outsider, undefined);
    const sorted = [...names].sort();

    assert.deepEqual(await members(h, outsider, { group }), {
      members: sorted,
      next_page_token: '',
      member_count: 5,
    });
    const pages = [];
    let page_token = '';
    do {
      const page = await members(h, outsider, { group, limit: 2, page_token });
      assert.equal(page.member_count, 5);
      pages.push(page.members);
      page_token = page.next_page_token;
    } while (page_token !== '');
    assert.deepEqual(pages, [sorted.slice(0, 2), sorted.slice(2, 4), sorted.slice(4)]);

    await expectStatus(members(h, outsider, { group: h.name('nowhere') }), grpc.status.NOT_FOUND, 'no such group');
    await expectStatus(members(h, outsider, { group: outsider }), grpc.status.NOT_FOUND, 'a user');
    await expectStatus(members(h, outsider, { group: 'a b' }), grpc.status.INVALID_ARGUMENT, 'a bad name');
    await expectStatus(members(h, outsider, { group, limit: 1001 }), grpc.status.INVALID_ARGUMENT, 'limit 1001');
    await expectStatus(
      members(h, outsider, { group, page_token: 'not a name!' }),
      grpc.status.INVALID_ARGUMENT,
      'a made-up token',
    );
    await expectStatus(members(h, undefined, { group }), grpc.status.UNAUTHENTICATED, 'no authorization');
  });
});
