/**
 * What the demo prints: a numbered step, the exact command it runs (so the user can repeat it), and
 * what came of it. Everything printed is also kept, so the final scan covers the demo's own output.
 */
export class Narrator {
  private readonly lines: string[] = [];
  private step = 0;
  private stepStarted = Date.now();

  constructor(
    private readonly totalSteps: number,
    private readonly out: (text: string) => void = (text) => process.stdout.write(text),
  ) {}

  /** Everything printed so far. */
  transcript(): string {
    return this.lines.join('\n');
  }

  say(line = ''): void {
    this.lines.push(line);
    this.out(`${line}\n`);
  }

  /** Starts step n of N with a title and one or two plain lines on what it shows. */
  begin(title: string, ...explain: string[]): void {
    this.step++;
    this.stepStarted = Date.now();
    this.say();
    this.say(`[${this.step}/${this.totalSteps}] ${title}`);
    for (const line of explain) this.say(`  ${line}`);
  }

  /** The exact command a step runs, ready to paste. */
  command(cmd: string, note?: string): void {
    this.say(`  $ ${cmd}${note ? `    # ${note}` : ''}`);
  }

  /** A line of what the engine printed, quoted as it was. */
  quote(line: string): void {
    this.say(`  | ${line}`);
  }

  /** The step's outcome, with how long it took. */
  result(line: string): void {
    this.say(`  => ${line} (${seconds(Date.now() - this.stepStarted)})`);
  }

  note(line: string): void {
    this.say(`  ${line}`);
  }
}

export function seconds(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * Prints "still <doing>" every `everyMs` while `work` runs, so a first run that builds the engines
 * (Vault takes many minutes on two cores) never looks hung. `latest` may add the last thing it did.
 */
export async function withHeartbeat<T>(
  narrator: Narrator,
  doing: string,
  work: Promise<T>,
  latest: () => string = () => '',
  everyMs = 20_000,
): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => {
    const last = latest();
    narrator.note(`... still ${doing} (${seconds(Date.now() - started)})${last ? `: ${last}` : ''}`);
  }, everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
