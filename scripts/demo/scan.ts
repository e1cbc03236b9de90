import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface ScanResult {
  files: number;
  bytes: number;
  /** Where a key was found: a file (relative to the scanned folder) or a named text, with how often. */
  hits: { where: string; count: number }[];
}

function occurrences(haystack: Buffer, needle: Buffer): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length))
    count++;
  return count;
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/**
 * Looks for every key, byte for byte, in every file under `dir` (state, plans, cdktf.out, logs, the
 * database and its WAL) and in `texts` (what the demo printed).
 */
export function scanForKeys(dir: string, keys: readonly string[], texts: Record<string, string>): ScanResult {
  const needles = keys.map((key) => Buffer.from(key, 'utf8'));
  const result: ScanResult = { files: 0, bytes: 0, hits: [] };
  const check = (where: string, bytes: Buffer) => {
    const count = needles.reduce((sum, needle) => sum + occurrences(bytes, needle), 0);
    if (count > 0) result.hits.push({ where, count });
  };
  for (const file of files(dir)) {
    const bytes = readFileSync(file);
    result.files++;
    result.bytes += bytes.length;
    check(relative(dir, file), bytes);
  }
  for (const [name, text] of Object.entries(texts)) check(name, Buffer.from(text, 'utf8'));
  return result;
}
