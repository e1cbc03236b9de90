import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunResult, runCommand } from './process.js';
import { REPO } from './rigbox-server.js';

/** The engines the suites drive: OpenTofu (built by `npm run tools`) and HashiCorp Terraform. */
export type Engine = 'tofu' | 'terraform';
export const ENGINES: readonly Engine[] = ['tofu', 'terraform'];
/** Both are linked here by `npm run tools` (scripts/tools.sh), so a test never depends on PATH. */
export const ENGINE_BIN: Readonly<Record<Engine, string>> = {
  tofu: join(REPO, '.tools/bin/tofu'),
  terraform: join(REPO, '.tools/bin/terraform'),
};
export const TOFU = ENGINE_BIN.tofu;
export const TOFURC = join(REPO, '.tools/tofurc');

export type { RunResult } from './process.js';

/** Fails (never skips) when an engine is missing: `npm run tools` and `npm run build` install them. */
export function requireEngine(engine: Engine): void {
  if (!existsSync(ENGINE_BIN[engine]) || !existsSync(TOFURC)) {
    throw new Error(
      `${engine} is not installed at ${ENGINE_BIN[engine]}; run \`npm run tools\` (and \`npm run build\` for the provider)`,
    );
  }
}

export function requireTofu(): void {
  requireEngine('tofu');
}

/**
 * A working directory driven by a real engine binary (`tofu` unless told `terraform`) with the
 * repo's offline CLI config. Everything the engine prints is kept, so a test can scan it for a
 * canary key.
 */
export class TofuWorkspace {
  readonly dir = mkdtempSync(join(tmpdir(), 'rigbox-tofu-'));
  readonly transcript: string[] = [];

  constructor(
    readonly env: NodeJS.ProcessEnv = {},
    readonly engine: Engine = 'tofu',
  ) {
    requireEngine(engine);
  }

  write(hcl: string, file = 'main.tf'): void {
    writeFileSync(join(this.dir, file), hcl);
  }

  async run(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const res = await runCommand(ENGINE_BIN[this.engine], args, {
      cwd: this.dir,
      env: {
        TF_CLI_CONFIG_FILE: TOFURC,
        TF_IN_AUTOMATION: '1',
        CHECKPOINT_DISABLE: '1',
        TF_INPUT: '0',
        ...this.env,
        ...extraEnv,
      },
    });
    this.transcript.push(`$ ${this.engine} ${args.join(' ')}\n${res.stdout}\n${res.stderr}`);
    return res;
  }

  async ok(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const res = await this.run(args, extraEnv);
    if (res.code !== 0)
      throw new Error(`${this.engine} ${args.join(' ')} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
    return res;
  }

  init() {
    return this.ok(['init', '-no-color', '-input=false']);
  }

  apply(...extra: string[]) {
    return this.ok(['apply', '-auto-approve', '-no-color', '-input=false', ...extra]);
  }

  /** `plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error. */
  plan(...extra: string[]) {
    return this.run(['plan', '-detailed-exitcode', '-no-color', '-input=false', ...extra]);
  }

  async showJson(): Promise<Record<string, unknown>> {
    return JSON.parse((await this.ok(['show', '-json', '-no-color'])).stdout);
  }

  stateFile(): string {
    const file = join(this.dir, 'terraform.tfstate');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
