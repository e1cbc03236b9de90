// Generates the cdktn package's sources from constructs/src: the same files, with the core
// package `cdktf` replaced by `cdktn` in imports, in this library's own package name (the brand
// symbols) and in comments (they become the API docs). Anything else that still says cdktf fails
// the build, naming the line, rather than being shipped to cdktn users unreviewed.
// Files are rewritten only when their content changes, and files gone from constructs/src go too.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { CONSTRUCTS_DIR } from './flavors.mjs';

const COMMENT_LINE = /^\s*(\/\/|\/\*|\*)/;

function rewriteLine(line) {
  const out = line
    .replace(/(\bfrom\s+)'cdktf'/g, "$1'cdktn'")
    .replace(/@rigbox\/cdktf-constructs/g, '@rigbox/cdktn-constructs');
  return COMMENT_LINE.test(out) ? out.replace(/\bcdktf\b/g, 'cdktn') : out;
}

export function toCdktn(text, file) {
  const lines = text.split('\n').map(rewriteLine);
  const left = lines.findIndex((line) => /cdktf/i.test(line));
  if (left >= 0) {
    throw new Error(
      `${file}:${left + 1} still names cdktf after the rewrite for cdktn: "${lines[left]?.trim()}". ` +
        'Extend constructs/scripts/generate-cdktn.mjs or reword the line.',
    );
  }
  return lines.join('\n');
}

function filesUnder(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path, base) : [relative(base, path)];
  });
}

function writeIfChanged(path, text) {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return false;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return true;
}

/** Writes <pkgDir>/src from constructs/src, and the package README; returns how many files changed. */
export function generateCdktnSources(pkgDir) {
  const from = join(CONSTRUCTS_DIR, 'src');
  const to = join(pkgDir, 'src');
  const wanted = new Set(filesUnder(from).filter((f) => f.endsWith('.ts')));
  let changed = 0;
  for (const file of wanted) {
    const text = toCdktn(readFileSync(join(from, file), 'utf8'), `constructs/src/${file}`);
    if (writeIfChanged(join(to, file), text)) changed++;
  }
  if (existsSync(to)) {
    for (const file of filesUnder(to)) {
      if (!wanted.has(file)) {
        rmSync(join(to, file));
        changed++;
      }
    }
  }
  // One README for both packages: it says how to pick one.
  if (writeIfChanged(join(pkgDir, 'README.md'), readFileSync(join(CONSTRUCTS_DIR, 'README.md'), 'utf8')))
    changed++;
  return changed;
}
