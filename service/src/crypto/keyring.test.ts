import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Envelopes } from './envelope.js';
import { kekId, loadKeyring } from './keyring.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function keyFile(): { file: string; old: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'rigbox-keyring-'));
  dirs.push(dir);
  const file = join(dir, 'master.key');
  const old = randomBytes(32);
  writeFileSync(file, `${old.toString('hex')}\n`, { mode: 0o600 });
  return { file, old };
}

const load = (file: string) =>
  loadKeyring({ env: { RIGBOX_MASTER_KEY_FILE: file }, dataDir: '/nonexistent', warn: () => {} });

it('a serving keyring seals with the primary that `kek rotate` put into the file, from the next seal on', () => {
  const { file, old } = keyFile();
  const serving = load(file);
  const envelopes = new Envelopes(serving);
  const before = envelopes.seal('workspace:ws_1', 'sk-proj-CANARY-keyring');
  expect(before.kekId).toBe(kekId(old));

  // `rigbox kek rotate`, another process: a new primary in the file, the old key after it.
  const added = load(file).addPrimaryToFile();
  const after = envelopes.seal('workspace:ws_2', 'sk-proj-CANARY-keyring');
  expect(after.kekId).toBe(added.id);
  expect(serving.ids).toEqual([added.id, kekId(old)]);
  // What was sealed before still opens, and re-wraps under the new primary.
  expect(envelopes.open('workspace:ws_1', before)).toBe('sk-proj-CANARY-keyring');
  expect(envelopes.rewrap('workspace:ws_1', before)?.kekId).toBe(added.id);
});

it('a key file that does not parse for a moment (a hand edit) leaves the keys in use as they were', () => {
  const { file, old } = keyFile();
  const serving = load(file);
  writeFileSync(file, 'not a key\n');
  expect(serving.primary.id).toBe(kekId(old));
});
