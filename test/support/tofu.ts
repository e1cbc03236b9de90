import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunResult, runCommand } from './process.js';
import { REPO } from './rigbox-server.js';

export const TOFU = join(REPO, '.tools/bin/tofu');
export const TOFURC = join(REPO, '.tools/tofurc');

export type { RunResult } from './process.js';

/** Fails (never skips) when the engines are missing: `npm run tools` and `npm run build` install them. */
export function requireTofu(): void {
  if (!existsSync(TOFU) || !existsSync(TOFURC)) {
    throw new Error(
      `OpenTofu is not installed at ${TOFU}; run \`npm run tools\` (and \`npm run build\` for the provider)`,
    );
  }
}

/**
 * A working directory driven by the real `tofu` binary with the repo's offline CLI config.
 * Everything tofu prints is kept, so a test can scan it for a canary key.
 */
export class TofuWorkspace {
  readonly dir = mkdtempSync(join(tmpdir(), 'rigbox-tofu-'));
  readonly transcript: string[] = [];

  constructor(readonly env: NodeJS.ProcessEnv = {}) {
    requireTofu();
  }

  write(hcl: string, file = 'main.tf'): void {
    writeFileSync(join(this.dir, file), hcl);
  }

  async run(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const res = await runCommand(TOFU, args, {
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
    this.transcript.push(`$ tofu ${args.join(' ')}\n${res.stdout}\n${res.stderr}`);
    return res;
  }

  async ok(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const res = await this.run(args, extraEnv);
    if (res.code !== 0)
      throw new Error(`tofu ${args.join(' ')} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
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
