import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const toolsBin = fileURLToPath(new URL('../../.tools/bin/', import.meta.url));

/**
 * The path of a tool that `npm run tools` installs. A missing tool throws: a test that needs a real
 * engine must fail when it is not there (under CI=true as everywhere), never skip.
 */
export function toolPath(name: string): string {
  const path = `${toolsBin}${name}`;
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: run \`npm run tools\` to install the real engines the tests run against`,
    );
  }
  return path;
}

const running = new Set<ChildProcess>();
const scratchDirs = new Set<string>();
let exitHookInstalled = false;

// A failed or interrupted test must not leave an engine behind; 'exit' handlers may only do
// synchronous work, and kill() is synchronous.
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Kills `child` when this process exits, should nothing have stopped it before. */
export function killOnExit(child: ChildProcess): void {
  killAllOnExit();
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
}

/** A scratch directory to delete when the engine stops, or at the latest when the process exits. */
export function trackScratchDir(dir: string): () => void {
  killAllOnExit();
  scratchDirs.add(dir);
  return () => {
    scratchDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}

export interface EngineProcess {
  readonly name: string;
  /** Everything the engine wrote to stdout and stderr so far, for canary scans and failure reports. */
  output(): string;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** Kills the process and resolves once it has exited. Safe to call twice. */
  stop(): Promise<void>;
}

export function spawnEngine(
  name: string,
  binary: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): EngineProcess {
  killAllOnExit();
  const child = spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  running.add(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    const done = () => {
      exited = true;
      running.delete(child);
      resolve();
    };
    child.once('exit', done);
    // A spawn failure emits 'error' and may never emit 'exit'.
    child.once('error', (error) => {
      output += `\n[spawn error] ${error.message}\n`;
      done();
    });
  });
  return {
    name,
    output: () => output,
    hasExited: () => exited,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * Polls `probe` until it answers true. Fails early, with the engine's output, when the engine exits
 * before it is ready, so a broken start reads as the engine's own error rather than as a timeout.
 */
export async function waitUntilReady(
  engine: EngineProcess,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (engine.hasExited()) {
      throw new Error(`${engine.name} exited before it was ready:\n${engine.output()}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      await engine.stop();
      throw new Error(`${engine.name} was not ready after ${timeoutMs} ms:\n${engine.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
