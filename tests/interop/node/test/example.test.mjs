// The README's client example, run against a real server from the
// repository root, as the README says to run it (it loads proto/ from there).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { runExample } from '../example.mjs';
import { harness, waitFor } from '../lib/chat.mjs';
import { REPO_ROOT, startServer } from '../lib/server.mjs';

process.chdir(REPO_ROOT);

test('runExample connects, creates a group, sends, receives and lists', { timeout: 15_000 }, async (t) => {
  const server = await startServer();
  const h = harness(t, server);
  t.after(() => server.stop());

  const result = await runExample(server.target);

  assert.equal(result.connected, 'grace');
  assert.match(result.sent.message_id, /^[1-9][0-9]*$/);
  assert.deepEqual(result.delivered, {
    id: result.sent.message_id,
    sender: 'grace',
    recipient: 'hall',
    recipient_type: 'CHANNEL_TYPE_GROUP',
    text: 'Hello, group!',
    sent_at: result.sent.sent_at,
    from_operator: false,
  });
  assert.deepEqual(result.channels, [
    { name: 'grace', type: 'CHANNEL_TYPE_USER', member_count: 0, joined: false },
    { name: 'hall', type: 'CHANNEL_TYPE_GROUP', member_count: 1, joined: true },
  ]);

  // The example ends its stream, so grace and her group go away and the
  // example can run again, here as a script.
  const { user: observer } = await h.connect('observer');
  await waitFor(
    async () => (await observer.list()).every((c) => c.name === 'observer'),
    'grace and hall to be gone after the example',
  );
  const script = fileURLToPath(new URL('../example.mjs', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script, server.target], {
    cwd: REPO_ROOT,
    timeout: 10_000,
  });
  const printed = JSON.parse(stdout);
  assert.equal(printed.connected, 'grace');
  assert.equal(printed.delivered.text, 'Hello, group!');
  assert.equal(printed.delivered.id, printed.sent.message_id);
  assert.deepEqual(
    printed.channels.map((c) => c.name),
    ['grace', 'observer', 'hall'],
  );
});
