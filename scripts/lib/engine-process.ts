import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Starting and stopping the real engines (Vault, moto, `rigbox serve`) that the tests and
 * `npm run demo` drive. Every process started here is killed when the starting script exits,
 * unless it was released on purpose (`npm run demo -- --keep`).
 */

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

function killChild(child: ChildProcess, signal: NodeJS.Signals, group: boolean): void {
  // A detached engine leads its own process group; killing the group also reaches anything it forked.
  if (group && child.pid !== undefined) {
    try {
      process.kill(-child.pid, signal);
      return;
    } catch {
      // The group is gone already, or was never made: fall back to the process itself.
    }
  }
  child.kill(signal);
}

const detachedChildren = new WeakSet<ChildProcess>();

// A failed or interrupted script must not leave an engine behind; 'exit' handlers may only do
// synchronous work, and kill() is synchronous.
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) killChild(child, 'SIGKILL', detachedChildren.has(child));
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
  /** The process id (undefined if the spawn itself failed). */
  readonly pid: number | undefined;
  /** Everything the engine wrote to stdout and stderr so far, for canary scans and failure reports. */
  output(): string;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** Kills the process and resolves once it has exited. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Lets the engine outlive this script: it is no longer killed on exit and no longer keeps the
   * event loop alive. Only for an engine started with `logFile` and `detached`.
   */
  release(): void;
}

export interface SpawnEngineOptions {
  /**
   * Append the engine's stdout and stderr to this file instead of keeping them in memory. An engine
   * that is to outlive this script (`detached`) must write to a file: a pipe would die with us.
   */
  readonly logFile?: string;
  /** Start the engine in its own process group, so that a Ctrl-C in the terminal reaches only us. */
  readonly detached?: boolean;
  readonly cwd?: string;
}

export function spawnEngine(
  name: string,
  binary: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: SpawnEngineOptions = {},
): EngineProcess {
  killAllOnExit();
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a');
  const detached = options.detached === true;
  const child = spawn(binary, args, {
    env,
    stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
    detached,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  // The child holds its own copy of the descriptor.
  if (logFd !== undefined) closeSync(logFd);
  running.add(child);
  if (detached) detachedChildren.add(child);
  let memory = '';
  let spawnError = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    memory += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    memory += chunk;
  });
  const output = () => {
    const logged =
      options.logFile !== undefined && existsSync(options.logFile)
        ? readFileSync(options.logFile, 'utf8')
        : '';
    return logged + memory + spawnError;
  };
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
      spawnError += `\n[spawn error] ${error.message}\n`;
      done();
    });
  });
  return {
    name,
    pid: child.pid,
    output,
    hasExited: () => exited,
    async stop() {
      if (!exited) killChild(child, 'SIGTERM', detached);
      const timer = setTimeout(() => killChild(child, 'SIGKILL', detached), 5_000);
      await exit;
      clearTimeout(timer);
    },
    release() {
      running.delete(child);
      child.unref();
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
