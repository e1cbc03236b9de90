import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { killOnExit } from '../engines/engine-process.js';
import { runCommand } from './process.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const RIGBOX_BIN = join(REPO, 'service/bin/rigbox.js');

/** Runs the real `rigbox` CLI; stdout and stderr are returned for the caller's assertions and scans. */
export function rigbox(args: string[], env: NodeJS.ProcessEnv) {
  const res = spawnSync(process.execPath, [RIGBOX_BIN, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    // A command that should have ended (a `serve` that ought to refuse its settings) fails the
    // test instead of blocking it: spawnSync would otherwise wait for ever.
    timeout: 60_000,
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** `rigbox(...)` without blocking the event loop, for commands that run while a test keeps serving load. */
export async function rigboxAsync(args: string[], env: NodeJS.ProcessEnv) {
  const res = await runCommand(process.execPath, [RIGBOX_BIN, ...args], { env });
  return { status: res.code, stdout: res.stdout, stderr: res.stderr };
}

/** A real `rigbox serve` process on a free loopback port, its output kept for canary scans. */
export class RigboxServer {
  output = '';
  url = '';
  private child: ChildProcess | undefined;

  constructor(
    readonly dataDir = mkdtempSync(join(tmpdir(), 'rigbox-e2e-')),
    readonly env: NodeJS.ProcessEnv = {},
  ) {}

  get allEnv(): NodeJS.ProcessEnv {
    return { RIGBOX_DATA_DIR: this.dataDir, RIGBOX_RATE_LIMIT: '100000', ...this.env };
  }

  async start(): Promise<this> {
    const child = spawn(process.execPath, [RIGBOX_BIN, 'serve', '--port', '0'], {
      env: { ...process.env, ...this.allEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // A script that dies before dispose() must not leave the server running.
    killOnExit(child);
    // A restart appends to the same output; only this start's lines announce its address.
    const from = this.output.length;
    const collect = (b: Buffer) => {
      this.output += b.toString('utf8');
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.url = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`rigbox serve did not start:\n${this.output}`)), 15_000);
      const check = () => {
        const m = /serving the AI config API on (http:\/\/\S+)/.exec(this.output.slice(from));
        if (m?.[1]) {
          clearTimeout(timer);
          ok(m[1]);
        }
      };
      child.stderr?.on('data', check);
      child.on('exit', (code) => fail(new Error(`rigbox serve exited with ${code}:\n${this.output}`)));
    });
    return this;
  }

  token(user: string): string {
    const res = rigbox(['token', 'create', '--user', user], this.allEnv);
    if (res.status !== 0) throw new Error(`token create failed: ${res.stderr}`);
    return res.stdout.trim();
  }

  /** Whether the process is running (started and not exited). */
  get running(): boolean {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /**
   * Kills the process with `signal` and waits until it has exited. SIGKILL is a crash: no shutdown
   * code runs, open connections and transactions are cut off where they are.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    await new Promise<void>((ok) => {
      child.once('exit', () => ok());
      child.kill(signal);
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    // A process killed by a signal has a null exitCode and will never emit 'exit' again.
    if (!child || !this.running) return;
    await new Promise<void>((ok) => {
      child.once('exit', () => ok());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
