// CreateGroupChat, JoinGroupChat and LeaveGroupChat, and their status codes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { expectStatus, grpc, harness, only } from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };

/** The group `name` as `user` lists it, or undefined. */
async function groupAsSeenBy(user, name) {
  return (await user.list()).find((c) => c.name === name && c.type === 'CHANNEL_TYPE_GROUP');
}

describe('groups', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('CreateGroupChat makes the caller its only member', TEST, async (t) => {
    const h = harness(t, server);
    const { user: alice } = await h.connect(h.name('alice'));
    const group = h.name('general');
    assert.deepEqual(await alice.create(group), {});
    assert.deepEqual(await groupAsSeenBy(alice, group), {
      name: group,
      type: 'CHANNEL_TYPE_GROUP',
      member_count: 1,
      joined: true,
    });
  });

  test('CreateGroupChat: ALREADY_EXISTS for an existing group or a connected user', TEST, async (t) => {
    const h = harness(t, server);
    const { user: alice } = await h.connect(h.name('alice'));
    const { user: bob } = await h.connect(h.name('bob'));
    const group = h.name('general');
    await alice.create(group);
    await expectStatus(bob.create(group), grpc.status.ALREADY_EXISTS, 'creating an existing group');
    await expectStatus(alice.create(group), grpc.status.ALREADY_EXISTS, 'creating it again as its member');
    await expectStatus(alice.create(bob.name), grpc.status.ALREADY_EXISTS, "creating a group named as a user");
    await expectStatus(alice.create(alice.name), grpc.status.ALREADY_EXISTS, "creating a group named as oneself");
  });

  test('CreateGroupChat: INVALID_ARGUMENT for invalid names', TEST, async (t) => {
    const h = harness(t, server);
    const { user } = await h.connect(h.name('alice'));
    for (const bad of ['', 'g'.repeat(65), 'two words', 'ünï', 'a,b']) {
      await expectStatus(user.create(bad), grpc.status.INVALID_ARGUMENT, `creating ${JSON.stringify(bad)}`);
    }
  });

  test('JoinGroupChat adds the caller; member_count and joined follow', TEST, async (t) => {
    const h = harness(t, server);
    const { user: alice } = await h.connect(h.name('alice'));
    const { user: bob } = await h.connect(h.name('bob'));
    const { user: carol } = await h.connect(h.name('carol'));
    const group = h.name('general');
    await alice.create(group);
    // The group has no message yet: the joiner's position is 0.
    assert.deepEqual(await bob.join(group), { position: '0' });
    assert.deepEqual(await groupAsSeenBy(bob, group), {
      name: group,
      type: 'CHANNEL_TYPE_GROUP',
      member_count: 2,
      joined: true,
    });
    assert.deepEqual(await groupAsSeenBy(carol, group), {
      name: group,
      type: 'CHANNEL_TYPE_GROUP',
      member_count: 2,
      joined: false,
    });
  });

  test('JoinGroupChat: NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT', TEST, async (t) => {
    const h = harness(t, server);
    const { user: alice } = await h.connect(h.name('alice'));
    const { user: bob } = await h.connect(h.name('bob'));
    const group = h.name('general');
    await alice.create(group);
    await expectStatus(alice.join(h.name('nowhere')), grpc.status.NOT_FOUND, 'joining a missing group');
    await expectStatus(alice.join(bob.name), grpc.status.NOT_FOUND, 'joining a user as a group');
    await expectStatus(alice.join(group), grpc.status.ALREADY_EXISTS, 'the creator joining again');
    await bob.join(group);
    await expectStatus(bob.join(group), grpc.status.ALREADY_EXISTS, 'a member joining again');
    await expectStatus(bob.join('bad name'), grpc.status.INVALID_ARGUMENT, 'joining an invalid name');
    await expectStatus(bob.join(''), grpc.status.INVALID_ARGUMENT, 'joining an empty name');
  });

  test('LeaveGroupChat removes the caller; the last one out deletes the group', TEST, async (t) => {
    const h = harness(t, server);
    const { user: alice } = await h.connect(h.name('alice'));
    const { user: bob } = await h.connect(h.name('bob'));
    const group = h.name('general');
    await alice.create(group);
    await bob.join(group);

    assert.deepEqual(await alice.leave(group), {});
    assert.deepEqual(await groupAsSeenBy(alice, group), {
      name: group,
      type: 'CHANNEL_TYPE_GROUP',
      member_count: 1,
      joined: false,
    });

    await bob.leave(group);
    assert.equal(await groupAsSeenBy(alice, group), undefined, 'the empty group is deleted');
    await expectStatus(bob.join(group), grpc.status.NOT_FOUND, 'joining the deleted group');
    // Its name is free again, for a group or for a user.
    await bob.create(group);
    await bob.leave(group);
    await h.connect(group);
  });

  test('LeaveGroupChat: FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT', TEST, async (t) => {
    const h = harness(t, server);
    const { user: alice } = await h.connect(h.name('alice'));
    const { user: bob } = await h.connect(h.name('bob'));
    const group = h.name('general');
    await alice.create(group);
    await expectStatus(bob.leave(group), grpc.status.FAILED_PRECONDITION, 'a non-member leaving');
    await bob.join(group);
    await bob.leave(group);
    await expectStatus(bob.leave(group), grpc.status.FAILED_PRECONDITION, 'leaving twice');
    await expectStatus(bob.leave(h.name('nowhere')), grpc.status.NOT_FOUND, 'leaving a missing group');
    await expectStatus(bob.leave(alice.name), grpc.status.NOT_FOUND, 'leaving a user as a group');
    await expectStatus(bob.leave('a/b'), grpc.status.INVALID_ARGUMENT, 'leaving an invalid name');
    // The refusals changed nothing.
    assert.deepEqual(only(await alice.list(), [group]), [
      { name: group, type: 'CHANNEL_TYPE_GROUP', member_count: 1, joined: true },
    ]);
  });
});
