// ListChannels' contents and order, and the cleanup a disconnect does.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertListOrder, harness, only, waitFor } from '../lib/chat.mjs';
import { startServer } from '../lib/server.mjs';

const TEST = { timeout: 15_000 };

const user = (name) => ({ name, type: 'CHANNEL_TYPE_USER', member_count: 0, joined: false });
const group = (name, memberCount, joined) => ({
  name,
  type: 'CHANNEL_TYPE_GROUP',
  member_count: memberCount,
  joined,
});

test('a fresh server lists just the caller', TEST, async (t) => {
  const fresh = await startServer();
  const h = harness(t, fresh); // closed first: after hooks run in order
  t.after(() => fresh.stop());
  const { user: zed } = await h.connect('zed');
  assert.deepEqual(await zed.list(), [user('zed')]);
});

describe('ListChannels', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('users first, then groups, each sorted by name, with counts and joined as the caller sees them', TEST, async (t) => {
    const h = harness(t, server);
    // Names chosen so that sorting by name differs from creation order and
    // mixes upper and lower case (sorted by byte: 'B' < 'a').
    const tag = h.name('t');
    const names = {
      mike: `mike-${tag}`,
      Bravo: `Bravo-${tag}`,
      alpha: `alpha-${tag}`,
      zulu: `zulu-${tag}`,
      Kilo: `Kilo-${tag}`,
      echo: `echo-${tag}`,
    };
    const mike = (await h.connect(names.mike)).user;
    const bravo = (await h.connect(names.Bravo)).user;
    const alpha = (await h.connect(names.alpha)).user;
    await mike.create(names.zulu);
    await bravo.create(names.Kilo);
    await alpha.create(names.echo);
    await bravo.join(names.zulu);
    await alpha.join(names.zulu);
    await mike.join(names.Kilo);

    const all = Object.values(names);
    const seenByMike = await mike.list();
    assertListOrder(seenByMike);
    assert.deepEqual(only(seenByMike, all), [
      user(names.Bravo),
      user(names.alpha),
      user(names.mike),
      group(names.Kilo, 2, true),
      group(names.echo, 1, false),
      group(names.zulu, 3, true),
    ]);

    const seenByAlpha = await alpha.list();
    assertListOrder(seenByAlpha);
    assert.deepEqual(only(seenByAlpha, all), [
      user(names.Bravo),
      user(names.alpha),
      user(names.mike),
      group(names.Kilo, 2, false),
      group(names.echo, 1, true),
      group(names.zulu, 3, true),
    ]);
  });

  test('a disconnect removes the user from the list and from every group', TEST, async (t) => {
    const h = harness(t, server);
    const alice = await h.connect(h.name('alice'));
    const bob = await h.connect(h.name('bob'));
    const shared = h.name('shared');
    const bobsOwn = h.name('bobs-own');
    await alice.user.create(shared);
    await bob.user.join(shared);
    await bob.user.create(bobsOwn);
    const names = [alice.user.name, bob.user.name, shared, bobsOwn];
    assert.deepEqual(only(await alice.user.list(), names), [
      user(alice.user.name),
      user(bob.user.name),
      group(bobsOwn, 1, false),
      group(shared, 2, true),
    ]);

    bob.session.close();
    const expected = [user(alice.user.name), group(shared, 1, true)];
    let seen;
    await waitFor(async () => {
      seen = only(await alice.user.list(), names);
      try {
        assert.deepEqual(seen, expected);
        return true;
      } catch {
        return false;
      }
    }, `bob to be gone from the list, from ${shared} and with ${bobsOwn}`).catch((error) => {
      error.message += `\nlast listing: ${JSON.stringify(seen)}`;
      throw error;
    });

    // bob's name and his deleted group's name are free again.
    await h.connect(bob.user.name);
    await alice.user.create(bobsOwn);
  });
});
