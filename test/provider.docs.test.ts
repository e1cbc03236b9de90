import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { EXAMPLE_CONFIGS, EXAMPLE_IMPORTS, EXAMPLES_DIR } from './support/provider-build.js';
import { REPO } from './support/rigbox-server.js';

/**
 * The committed registry docs (provider/docs) are what tfplugindocs generates now from the built
 * provider's schema and provider/examples, and pass `tfplugindocs validate`; every example file is
 * one test/provider.examples.test.ts applies.
 */
const DOCS_SCRIPT = join(REPO, 'provider/scripts/docs.mjs');
const check = (...args: string[]) =>
  spawnSync(process.execPath, [DOCS_SCRIPT, '--check', ...args], { encoding: 'utf8', timeout: 120_000 });

it('provider/docs is up to date and valid', () => {
  const res = check();
  expect(res.status, res.stderr).toBe(0);
}, 120_000);

it('a stale page is reported by name', () => {
  const copy = mkdtempSync(join(tmpdir(), 'rigbox-docs-'));
  try {
    cpSync(join(REPO, 'provider/docs'), copy, { recursive: true });
    writeFileSync(join(copy, 'resources/ai_defaults.md'), 'an old page\n');
    writeFileSync(join(copy, 'resources/gone.md'), 'a page for a resource that no longer exists\n');
    const res = check('--docs-dir', copy);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/stale.*resources\/ai_defaults\.md, resources\/gone\.md/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}, 120_000);

it('every file in provider/examples is applied or imported by the examples test', () => {
  const files = readdirSync(EXAMPLES_DIR, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(EXAMPLES_DIR, join(e.parentPath, e.name)))
    .sort();
  expect(files).toEqual([...EXAMPLE_CONFIGS, ...EXAMPLE_IMPORTS].sort());
});
