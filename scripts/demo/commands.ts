import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin (a secret is passed this way, never as an argument). */
  readonly input?: string;
  /** Called with each line the command prints, as it prints it (progress of long builds). */
  readonly onLine?: (line: string) => void;
}

/**
 * Runs the demo's commands one at a time, appending everything they print to a log file (scanned
 * at the end). Remembers the running command so that an interrupt can stop it.
 */
export class CommandRunner {
  private current: ChildProcess | undefined;

  constructor(private readonly logFile: string) {}

  run(cmd: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
    appendFileSync(this.logFile, `\n$ ${[cmd, ...args].join(' ')}\n`);
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, {
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        env: options.env ?? process.env,
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      this.current = child;
      let stdout = '';
      let stderr = '';
      let partial = '';
      const collect = (chunk: Buffer, into: 'stdout' | 'stderr') => {
        const text = chunk.toString('utf8');
        if (into === 'stdout') stdout += text;
        else stderr += text;
        appendFileSync(this.logFile, text);
        if (options.onLine) {
          const lines = (partial + text).split('\n');
          partial = lines.pop() ?? '';
          for (const line of lines) options.onLine(line);
        }
      };
      child.stdout?.on('data', (b: Buffer) => collect(b, 'stdout'));
      child.stderr?.on('data', (b: Buffer) => collect(b, 'stderr'));
      if (options.input !== undefined) child.stdin?.end(options.input);
      child.once('error', (error) => {
        this.current = undefined;
        reject(error);
      });
      child.once('close', (code, signal) => {
        this.current = undefined;
        resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      });
    });
  }

  /** Stops the running command, if any: SIGINT first (Terraform then stops cleanly), SIGKILL after 10 s. */
  async interrupt(): Promise<void> {
    const child = this.current;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGINT');
    });
  }
}
