import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './rigbox-server.js';

/** What `npm run build -w provider` made (provider/scripts/bundle.mjs), for tests and benchmarks. */
const PROVIDER_DIR = join(REPO, 'provider');
export const PROVIDER_VERSION: string = JSON.parse(
  readFileSync(join(PROVIDER_DIR, 'package.json'), 'utf8'),
).version;
export const PROVIDER_EXE_NAME = `terraform-provider-rigbox_v${PROVIDER_VERSION}`;
/** The plain bundle: a CommonJS script run by `node`, the AWS SDK beside it. */
export const PROVIDER_BUNDLE = join(PROVIDER_DIR, 'dist/bundle', PROVIDER_EXE_NAME);
/** The single executable (Node SEA), when the build could make one. */
export const PROVIDER_SEA = join(PROVIDER_DIR, 'dist/sea', PROVIDER_EXE_NAME);
export const RELEASE_DIR = join(PROVIDER_DIR, 'dist/release');
export const MIRROR = join(REPO, '.tools/mirror');
export const PLATFORM = `linux_${process.arch === 'x64' ? 'amd64' : process.arch}`;
export const RELEASE_PREFIX = `terraform-provider-rigbox_${PROVIDER_VERSION}`;
export const RELEASE_ZIP = `${RELEASE_PREFIX}_${PLATFORM}.zip`;

/** provider/examples (shown by the registry docs): test/provider.examples.test.ts applies them all. */
export const EXAMPLES_DIR = join(PROVIDER_DIR, 'examples');
export const EXAMPLE_CONFIGS = [
  'provider/provider.tf',
  'resources/rigbox_workspace_ai_config/resource.tf',
  'resources/rigbox_ai_defaults/resource.tf',
  'data-sources/rigbox_workspace_ai_config/data-source.tf',
];
export const EXAMPLE_IMPORTS = [
  'resources/rigbox_workspace_ai_config/import.sh',
  'resources/rigbox_ai_defaults/import.sh',
];

/** 'sea' or 'bundle', and why the build fell back to the bundle. Throws if nothing was built. */
export function providerKind(): { kind: 'sea' | 'bundle'; reason: string } {
  const file = join(PROVIDER_DIR, 'dist/provider-kind');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build -w provider\``);
  const [kind = '', reason = ''] = readFileSync(file, 'utf8').split('\n');
  return { kind: kind === 'sea' ? 'sea' : 'bundle', reason };
}

/** The executable the release archive holds: the single executable, or the bundle's script. */
export function providerExecutable(): string {
  return providerKind().kind === 'sea' ? PROVIDER_SEA : PROVIDER_BUNDLE;
}

/**
 * The `h1:` hash Terraform and OpenTofu record for a provider package (Go's dirhash Hash1): the
 * SHA-256 of the lines "<sha256 hex>  <name>\n" of its files, sorted by name, in base64.
 */
export function packageHashH1(files: { name: string; path: string }[]): string {
  const summary = [...files]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => `${createHash('sha256').update(readFileSync(f.path)).digest('hex')}  ${f.name}\n`)
    .join('');
  return `h1:${createHash('sha256').update(summary).digest('base64')}`;
}
