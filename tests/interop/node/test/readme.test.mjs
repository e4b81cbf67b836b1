// The README shows the buf curl lines this suite runs: keep them identical.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { COMMANDS } from '../buf-curl-commands.mjs';

const README = fileURLToPath(new URL('../../../../README.md', import.meta.url));

test('the README quotes every buf curl command the tests run', () => {
  const lines = readFileSync(README, 'utf8').split('\n');
  for (const [name, command] of Object.entries(COMMANDS)) {
    assert.ok(lines.includes(command), `${name} is not in README.md: ${command}`);
  }
});
