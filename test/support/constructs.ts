import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Library from '@rigbox/cdktf-constructs';
import type { RigboxWorkspaceAiConfigProps } from '@rigbox/cdktf-constructs';
import type * as CdktfCore from 'cdktf';
import type { TerraformStack } from 'cdktf';
import { REPO } from './rigbox-server.js';

/**
 * The construct library is built twice from one source (constructs/src): `@rigbox/cdktf-constructs`
 * for cdktf and `@rigbox/cdktn-constructs` for cdktn. A flavor is one of those builds with the core
 * package it was compiled against, so that one suite runs against both.
 *
 * Both are loaded by Node itself, and each core from where its library resolves it, so a test
 * always pairs a library with the very core it uses (mixing them is what breaks, see the README).
 * They are typed as the cdktf build: the two APIs are the same by construction, but cdktf's and
 * cdktn's classes have private members, which TypeScript compares by declaration.
 */
export interface Flavor {
  /** The core package: `cdktf` or `cdktn`. */
  readonly name: 'cdktf' | 'cdktn';
  /** The npm package of this build, e.g. `@rigbox/cdktn-constructs`. */
  readonly packageName: string;
  /** The Python module of this build, e.g. `rigbox_cdktn_constructs`. */
  readonly pythonModule: string;
  /** The venv that `npm run build` makes for this build's Python example and tests. */
  readonly pythonVenv: string;
  readonly core: typeof CdktfCore;
  readonly lib: typeof Library;
  /** Where this build's committed synth snapshots are, relative to a test file in test/. */
  readonly snapshots: string;
}

const require = createRequire(import.meta.url);

function load(name: Flavor['name']): Flavor {
  const packageName = `@rigbox/${name}-constructs`;
  const entry = require.resolve(packageName);
  return {
    name,
    packageName,
    pythonModule: `rigbox_${name}_constructs`,
    pythonVenv: join(REPO, `.tools/${name}-python`),
    core: createRequire(entry)(name),
    lib: require(packageName),
    snapshots: name === 'cdktf' ? './__snapshots__/constructs' : './__snapshots__/constructs-cdktn',
  };
}

export const CDKTF: Flavor = load('cdktf');
export const CDKTN: Flavor = load('cdktn');
/** Both builds, for `describe.each(FLAVORS)('$name', ...)`. */
export const FLAVORS: readonly Flavor[] = [CDKTF, CDKTN];

/** A stack with the Rigbox provider, as every test config needs one for `tofu validate`. */
export function stackWithProvider(flavor: Flavor = CDKTF): TerraformStack {
  const stack = new flavor.core.TerraformStack(flavor.core.Testing.app(), 'stack');
  new flavor.lib.RigboxProvider(stack, 'rigbox');
  return stack;
}

/** A valid BYOK workspace config from Vault; tests override what they are about. */
export function byokFromVault(
  overrides: Partial<RigboxWorkspaceAiConfigProps> = {},
  { lib }: Flavor = CDKTF,
): RigboxWorkspaceAiConfigProps {
  return {
    workspaceId: 'ws_ml',
    mode: lib.AiMode.BYOK,
    aiProvider: lib.AiProvider.OPENAI,
    model: 'gpt-4o',
    apiKeySource: lib.ApiKeySource.fromVault({ mount: 'secret', path: 'teams/ml/openai', field: 'api_key' }),
    ...overrides,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests walk parsed Terraform JSON by field name.
type Json = Record<string, any>;

/** The synthesized attributes of one resource. */
export function resourceOf(synth: string, type: string, name: string): Json {
  const resource = (JSON.parse(synth) as Json).resource?.[type]?.[name];
  if (!resource) throw new Error(`no ${type}.${name} in:\n${synth}`);
  return resource;
}
