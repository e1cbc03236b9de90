import { spawnSync } from 'node:child_process';
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

/** What the demo needs built, as the build writes it; a folder counts by its newest file. */
const buildOutputs = (engine: Engine) => [
  'service/dist/cli/main.js',
  `.tools/mirror/${engine.registryHost}/rigbox/rigbox`,
  'constructs/lib/index.js',
];

/** Every workspace's sources: the packages depend on each other, so any of them can make a build stale. */
function buildInputs(): string[] {
  const { workspaces } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    workspaces?: string[];
  };
  return (workspaces ?? []).flatMap((ws) => [`${ws}/src`, `${ws}/scripts`, `${ws}/package.json`]);
}

/**
 * The newest modification time among the sources. In a git checkout only files git tracks or would
 * track count: sources the build generates itself (the cdktn package's src/, ignored by git) are
 * written during the build, after outputs it wrote earlier, and would make every run build again.
 */
function newestInput(): number {
  const paths = buildInputs();
  if (existsSync(join(REPO, '.git'))) {
    const listed = spawnSync(
      'git',
      ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...paths],
      {
        cwd: REPO,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    if (listed.status === 0) {
      return Math.max(
        0,
        ...listed.stdout
          .split('\0')
          .filter(Boolean)
          .map((file) => newestMtime(join(REPO, file))),
      );
    }
  }
  return Math.max(0, ...paths.map((path) => newestMtime(join(REPO, path))));
}

/**
 * What the demo needs and `npm run build` has not built yet, or built before a source last changed:
 * the service, the provider as laid into the mirror, the construct library the example imports.
 */
export function staleBuilds(engine: Engine): string[] {
  const input = newestInput();
  return buildOutputs(engine).filter((output) => {
    const built = newestMtime(join(REPO, output));
    return built === 0 || input > built;
  });
}

/** `npm run build`, as the README says: the packages in the order their workspaces are listed. */
export async function build(narrator: Narrator, runner: CommandRunner, engine: Engine): Promise<void> {
  narrator.command(
    'RIGBOX_CONSTRUCTS=cdktf RIGBOX_CONSTRUCTS_TARGETS=js npm run build',
    'not built yet, or a source changed since (the cdktf JS package only: what the demo runs)',
  );
  let last = '';
  const res = await withHeartbeat(
    narrator,
    'building',
    runner.run('npm', ['run', 'build'], {
      cwd: REPO,
      // The demo runs the cdktf TypeScript example: the cdktn package and the Python wheels can
      // wait for the next full build (npm test builds them).
      env: { ...process.env, RIGBOX_CONSTRUCTS: 'cdktf', RIGBOX_CONSTRUCTS_TARGETS: 'js' },
      onLine: (line) => {
        if (line.trim() !== '') last = line.trim();
      },
    }),
    () => last,
  );
  if (res.code !== 0) {
    const lines = `${res.stdout}\n${res.stderr}`.trim().split('\n');
    // The compilers' own errors say what is wrong; npm's lines after them only say which script failed.
    const errors = lines.filter((line) => /error/i.test(line) && !/^npm error/.test(line));
    for (const line of (errors.length > 0 ? errors : lines).slice(-12)) narrator.quote(line);
    throw new DemoError(`npm run build failed (exit ${res.code}); the errors are above`);
  }
  // A step that found its sources unchanged by content (the construct library's jsii compile)
  // leaves its output as it was: mark what the demo needs as current, or every run would build again.
  const now = new Date();
  for (const output of buildOutputs(engine).map((path) => join(REPO, path))) {
    if (existsSync(output) && statSync(output).isFile()) utimesSync(output, now, now);
  }
}
