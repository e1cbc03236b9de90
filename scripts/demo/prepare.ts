import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { REPO } from '../lib/rigbox-service.js';
import type { CommandRunner } from './commands.js';
import { DemoError } from './errors.js';
import { type Narrator, withHeartbeat } from './narrator.js';

export const TOOLS = join(REPO, '.tools');
export const TOOLS_BIN = join(TOOLS, 'bin');
export const TOFURC = join(TOOLS, 'tofurc');

/** The Terraform engine the demo drives: HashiCorp Terraform or OpenTofu. */
export interface Engine {
  /** What to type: `terraform`, or the path of the repo's `tofu`. */
  readonly command: string;
  readonly binary: string;
  readonly kind: 'terraform' | 'tofu';
  /** The default registry host, under which the mirror holds its providers. */
  readonly registryHost: string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const terraform = (binary: string, command: string): Engine => ({
  command,
  binary,
  kind: 'terraform',
  registryHost: 'registry.terraform.io',
});
const tofu = (): Engine => ({
  command: join(TOOLS_BIN, 'tofu'),
  binary: join(TOOLS_BIN, 'tofu'),
  kind: 'tofu',
  registryHost: 'registry.opentofu.org',
});

/** `terraform` if it is on the PATH, else the repo's OpenTofu (installed by `npm run tools`). */
export function chooseEngine(wanted: string | undefined): Engine {
  if (wanted === undefined) {
    const found = onPath('terraform');
    return found ? terraform(found, 'terraform') : tofu();
  }
  if (wanted === 'tofu') return tofu();
  if (wanted === 'terraform') {
    const found = onPath('terraform');
    if (!found) throw new DemoError('--engine terraform: there is no terraform on the PATH');
    return terraform(found, 'terraform');
  }
  throw new DemoError(`--engine must be terraform or tofu, got ${JSON.stringify(wanted)}`);
}

const nonEmptyDir = (dir: string) => existsSync(dir) && readdirSync(dir).length > 0;

/** A pinned version from scripts/versions.env, the one place the engines' versions are kept. */
function pinnedVersion(name: string): string {
  const text = readFileSync(join(REPO, 'scripts/versions.env'), 'utf8');
  const value = new RegExp(`^${name}=(\\S+)`, 'm').exec(text)?.[1];
  if (value === undefined) throw new DemoError(`scripts/versions.env names no ${name}`);
  return value;
}

/** The names `scripts/tools.sh` takes for what the demo needs and is not installed yet. */
export function missingTools(engine: Engine): string[] {
  const missing: string[] = [];
  if (engine.kind === 'tofu' && !existsSync(engine.binary)) missing.push('tofu');
  const nullProvider = join(
    TOOLS,
    'mirror',
    engine.registryHost,
    'hashicorp/null',
    pinnedVersion('NULL_PROVIDER_VERSION'),
  );
  if (!nonEmptyDir(nullProvider)) missing.push('null');
  if (!existsSync(join(TOOLS_BIN, 'vault'))) missing.push('vault');
  if (!existsSync(join(TOOLS_BIN, 'moto_server'))) missing.push('moto');
  if (!existsSync(TOFURC)) missing.push('tofurc');
  return missing;
}

/**
 * Installs what is missing the way `npm run tools` does (built once into ~/.cache/rigbox-tools,
 * linked into .tools/ after). Only what is missing: relinking an engine that another process (a
 * test run) is using would pull it from under it.
 */
export async function installTools(
  narrator: Narrator,
  runner: CommandRunner,
  missing: string[],
): Promise<void> {
  const args = ['scripts/tools.sh', ...missing];
  narrator.command(`bash ${args.join(' ')}`, 'what `npm run tools` runs, for these engines only');
  narrator.note('The first run builds them from the Go module proxy and PyPI (Vault alone takes many');
  narrator.note('minutes on two cores); later runs link them from ~/.cache/rigbox-tools in seconds.');
  let last = '';
  let lastError = '';
  const res = await withHeartbeat(
    narrator,
    'installing the engines',
    runner.run('bash', args, {
      cwd: REPO,
      onLine: (line) => {
        if (line.trim() === '') return;
        last = line.trim();
        if (/error/i.test(line)) lastError = line.trim();
        // tools.sh's own lines say what it builds; Go's hundreds of "downloading" lines only count.
        if (line.startsWith('tools:')) narrator.quote(line);
      },
    }),
    () => last,
  );
  if (res.code !== 0) {
    throw new DemoError(
      `installing the engines failed (bash scripts/tools.sh exited ${res.code}): ${lastError || last || 'no output'}`,
    );
  }
}

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    newest = Math.max(newest, newestMtime(join(path, entry.name)));
  }
  return newest;
}

interface BuildPart {
  /** The npm workspace that builds it. */
  readonly workspace: string;
  readonly inputs: readonly string[];
  /** What its build writes; a folder counts by its newest file. */
  readonly output: string;
}

const buildParts = (engine: Engine): BuildPart[] => [
  {
    workspace: 'service',
    inputs: ['service/src', 'service/package.json'],
    output: 'service/dist/cli/main.js',
  },
  {
    workspace: 'provider',
    inputs: ['provider/src', 'provider/scripts', 'provider/package.json'],
    output: `.tools/mirror/${engine.registryHost}/rigbox/rigbox`,
  },
  {
    workspace: 'constructs',
    inputs: ['constructs/src', 'constructs/package.json'],
    output: 'constructs/lib/index.js',
  },
];

const isStale = (part: BuildPart) => {
  const built = newestMtime(join(REPO, part.output));
  return built === 0 || Math.max(...part.inputs.map((p) => newestMtime(join(REPO, p)))) > built;
};

/**
 * The workspaces whose build the demo needs and that are not built yet, or were built before their
 * sources last changed: the service, the provider as laid into the mirror, the construct library
 * the example imports.
 */
export function staleBuilds(engine: Engine): string[] {
  return buildParts(engine)
    .filter(isStale)
    .map((part) => part.workspace);
}

/**
 * Builds only the stale workspaces: rebuilding the provider lays it into the mirror again, which
 * would pull it from under a test run using it, so what is current is left alone.
 */
export async function build(
  narrator: Narrator,
  runner: CommandRunner,
  engine: Engine,
  stale: string[],
): Promise<void> {
  const args = ['run', 'build', ...stale.flatMap((workspace) => ['-w', workspace])];
  narrator.command(`npm ${args.join(' ')}`, 'not built yet, or sources changed since');
  let last = '';
  const res = await withHeartbeat(
    narrator,
    'building',
    runner.run('npm', args, {
      cwd: REPO,
      onLine: (line) => {
        if (line.trim() !== '') last = line.trim();
      },
    }),
    () => last,
  );
  if (res.code !== 0) {
    const tail = `${res.stdout}\n${res.stderr}`.trim().split('\n').slice(-15);
    for (const line of tail) narrator.quote(line);
    throw new DemoError(`npm ${args.join(' ')} failed (exit ${res.code}); its last lines are above`);
  }
  // A build that found its sources unchanged by content (the construct library's jsii compile) leaves
  // its output as it was: mark it current, or every later run would build it again.
  const now = new Date();
  for (const part of buildParts(engine).filter((p) => stale.includes(p.workspace) && isStale(p))) {
    const output = join(REPO, part.output);
    if (existsSync(output) && statSync(output).isFile()) utimesSync(output, now, now);
  }
}
