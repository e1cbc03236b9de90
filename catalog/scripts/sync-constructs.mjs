// The construct library is a jsii package: it cannot depend on this one at run time (its Python
// users get no npm dependencies), so the catalog's sources are copied into it at build time, as
// constructs/src/private/catalog/. One source, edited here; `npm run build` keeps the copy in step,
// and a test fails when the committed copy differs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const from = join(here, '../src');
const to = join(here, '../../constructs/src/private/catalog');
export const SYNCED = ['ai-providers.ts', 'references.ts'];
export const header = (file) =>
  `// Generated from catalog/src/${file} by catalog/scripts/sync-constructs.mjs: edit that file, not this one.\n`;

mkdirSync(to, { recursive: true });
for (const file of SYNCED) {
  const text = header(file) + readFileSync(join(from, file), 'utf8');
  const target = join(to, file);
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  // Written only when it changed: the constructs build skips jsii when its sources are unchanged.
  if (current !== text) writeFileSync(target, text);
}
