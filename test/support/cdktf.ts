import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './rigbox-server.js';
import { ENGINE_BIN, type Engine, requireEngine, TOFURC, TofuWorkspace } from './tofu.js';

export const CDKTF_BIN = join(REPO, 'node_modules/.bin/cdktf');
export const PYTHON_VENV = join(REPO, '.tools/cdktf-python');
export const PYTHON = join(PYTHON_VENV, 'bin/python');
/** The tsx loader, by absolute URL so an app started outside the repo can still load TypeScript. */
export const TSX_LOADER = import.meta.resolve('tsx');

/** The jsii tools and the jsii Python runtime print an end-of-life banner on every run under Node 20. */
import { type RunResult, runCommand as run } from './process.js';

export const QUIET_JSII = { JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' };

export type { RunResult } from './process.js';

/** Runs a command with the jsii end-of-life banner silenced, keeping everything it printed. */
export function runCommand(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunResult> {
  return run(cmd, args, {
    ...options,
    env: { ...QUIET_JSII, ...options.env },
    timeoutMs: options.timeoutMs ?? 120_000,
  });
}

/**
 * Fails (never skips) when a Python venv that `npm run build` makes (.tools/cdktf-python for the
 * cdktf build, .tools/cdktn-python for cdktn) is missing; returns its python.
 */
export function requirePythonVenv(venv = PYTHON_VENV): string {
  const python = join(venv, 'bin/python');
  if (!existsSync(python)) {
    throw new Error(
      `the Python venv ${venv} is missing: run \`npm run build\` (the constructs workspaces build the wheels and the venvs; they need python3 with venv and pip)`,
    );
  }
  return python;
}

/** Synthesizes an app into a fresh folder (CDKTF_OUTDIR) and returns each stack's Terraform JSON. */
export async function synthApp(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Record<string, Record<string, unknown>>> {
  const outdir = mkdtempSync(join(tmpdir(), 'rigbox-synth-'));
  try {
    const res = await runCommand(cmd, args, { cwd, env: { ...env, CDKTF_OUTDIR: outdir } });
    if (res.code !== 0)
      throw new Error(`${cmd} ${args.join(' ')} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
    const stacks: Record<string, Record<string, unknown>> = {};
    for (const stack of readdirSync(join(outdir, 'stacks'))) {
      stacks[stack] = JSON.parse(readFileSync(join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
    }
    return stacks;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * Runs real `tofu init` and `tofu validate` (with the repo's offline CLI config) on a synthesized
 * Terraform JSON configuration. Resolves with tofu's answer; the caller asserts on it.
 */
export async function tofuValidate(terraformJson: string): Promise<RunResult> {
  const workspace = new TofuWorkspace();
  try {
    workspace.write(terraformJson, 'main.tf.json');
    const init = await workspace.run(['init', '-no-color', '-input=false', '-backend=false']);
    if (init.code !== 0) return init;
    return await workspace.run(['validate', '-no-color']);
  } finally {
    workspace.dispose();
  }
}

/**
 * A cdktf project folder outside the repo, driven by the real cdktf CLI with OpenTofu, or
 * HashiCorp Terraform if told (`TERRAFORM_BINARY_NAME`), and the repo's offline CLI config.
 * Everything printed is kept for canary scans.
 */
export class CdktfProject {
  readonly dir = mkdtempSync(join(tmpdir(), 'rigbox-cdktf-'));
  readonly transcript: string[] = [];

  constructor(
    cdktfJson: Record<string, unknown>,
    readonly env: NodeJS.ProcessEnv = {},
    readonly engine: Engine = 'tofu',
  ) {
    requireEngine(engine);
    if (!existsSync(CDKTF_BIN)) throw new Error(`${CDKTF_BIN} is missing: run \`npm ci\``);
    writeFileSync(join(this.dir, 'cdktf.json'), JSON.stringify(cdktfJson, null, 2));
  }

  async run(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const res = await runCommand(CDKTF_BIN, args, {
      cwd: this.dir,
      timeoutMs: 150_000,
      env: {
        TERRAFORM_BINARY_NAME: ENGINE_BIN[this.engine],
        TF_CLI_CONFIG_FILE: TOFURC,
        CHECKPOINT_DISABLE: '1',
        DISABLE_VERSION_CHECK: '1',
        // The repo's CLI config has no plugin cache on purpose (the provider is rebuilt under one
        // version); cdktf would otherwise point Terraform at one.
        CDKTF_DISABLE_PLUGIN_CACHE_ENV: '1',
        CDKTF_HOME: join(this.dir, '.cdktf-home'),
        TF_IN_AUTOMATION: '1',
        FORCE_COLOR: '0',
        ...this.env,
        ...extraEnv,
      },
    });
    this.transcript.push(`$ cdktf ${args.join(' ')}\n${res.stdout}\n${res.stderr}`);
    return res;
  }

  async ok(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const res = await this.run(args, extraEnv);
    if (res.code !== 0)
      throw new Error(`cdktf ${args.join(' ')} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
    return res;
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A cdktn project folder outside the repo, driven as cdktn's CLI would drive it: `synth` runs the
 * app with CDKTF_OUTDIR set (cdktn keeps cdktf's names), and the engine (OpenTofu, or HashiCorp
 * Terraform if told, with the repo's offline CLI config) runs in `cdktf.out/stacks/<stack>`.
 * cdktn-cli itself needs Node >= 22.19; this project runs on Node 20. Everything printed is kept
 * for canary scans.
 */
export class CdktnProject {
  readonly dir = mkdtempSync(join(tmpdir(), 'rigbox-cdktn-'));
  readonly transcript: string[] = [];

  constructor(
    /** The app command, e.g. [process.execPath, '--import', TSX_LOADER, '/abs/main.ts']. */
    readonly app: string[],
    readonly env: NodeJS.ProcessEnv = {},
    readonly engine: Engine = 'tofu',
  ) {
    requireEngine(engine);
  }

  stackDir(stack: string): string {
    return join(this.dir, 'cdktf.out/stacks', stack);
  }

  private record(what: string, res: RunResult, mustPass: boolean): RunResult {
    this.transcript.push(`$ ${what}\n${res.stdout}\n${res.stderr}`);
    if (mustPass && res.code !== 0)
      throw new Error(`${what} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
    return res;
  }

  /** `cdktn synth`: runs the app into cdktf.out/. */
  async synth(): Promise<RunResult> {
    const [cmd, ...args] = this.app;
    const res = await runCommand(String(cmd), args, {
      cwd: this.dir,
      env: { ...this.env, CDKTF_OUTDIR: join(this.dir, 'cdktf.out') },
    });
    return this.record(`synth: ${this.app.join(' ')}`, res, true);
  }

  /** Runs the engine in a synthesized stack's folder; `ok` (the default) fails on a non-zero exit. */
  async inStack(
    stack: string,
    args: string[],
    { ok = true, env = {} }: { ok?: boolean; env?: NodeJS.ProcessEnv } = {},
  ): Promise<RunResult> {
    const res = await runCommand(ENGINE_BIN[this.engine], [...args, '-no-color'], {
      cwd: this.stackDir(stack),
      timeoutMs: 150_000,
      env: {
        TF_CLI_CONFIG_FILE: TOFURC,
        TF_IN_AUTOMATION: '1',
        TF_INPUT: '0',
        CHECKPOINT_DISABLE: '1',
        ...this.env,
        ...env,
      },
    });
    return this.record(`${this.engine} ${args.join(' ')} (in cdktf.out/stacks/${stack})`, res, ok);
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
