import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scanForKeys } from '../scripts/demo/scan.js';

// The scan `npm run demo` ends with: it must find a key wherever one is, or its "0 occurrences"
// would mean nothing.
describe('the demo key scan', () => {
  const dirs: string[] = [];
  const folder = () => {
    const dir = mkdtempSync(join(tmpdir(), 'rigbox-demo-scan-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('finds each key in nested files, binary ones included, and in the texts, counting every occurrence', () => {
    const dir = folder();
    const keys = ['sk-proj-DEMO-FAKE-KEY-not-real-aaaa', 'sk-ant-api03-DEMO-FAKE-KEY-not-real-bbbb'];
    mkdirSync(join(dir, 'cdktf.out/stacks/s'), { recursive: true });
    writeFileSync(
      join(dir, 'cdktf.out/stacks/s/terraform.tfstate'),
      `{"v": "${keys[0]}", "w": "${keys[0]}"}`,
    );
    writeFileSync(join(dir, 'db.sqlite-wal'), Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(keys[1]!)]));
    writeFileSync(join(dir, 'clean.log'), 'sk-proj-DEMO-FAKE-KEY-not-real-... (shown by prefix only)');
    const result = scanForKeys(dir, keys, { output: `printed ${keys[1]}`, quiet: 'nothing' });
    expect(result.files).toBe(3);
    expect(result.hits).toEqual(
      expect.arrayContaining([
        { where: 'cdktf.out/stacks/s/terraform.tfstate', count: 2 },
        { where: 'db.sqlite-wal', count: 1 },
        { where: 'output', count: 1 },
      ]),
    );
    expect(result.hits).toHaveLength(3);
  });

  it('reports nothing when no key is there', () => {
    const dir = folder();
    writeFileSync(join(dir, 'state.json'), '{"fingerprint": "sha256:abc"}');
    const result = scanForKeys(dir, ['sk-proj-DEMO-FAKE-KEY-not-real-cccc'], { output: 'clean' });
    expect(result).toEqual({ files: 1, bytes: 29, hits: [] });
  });
});
