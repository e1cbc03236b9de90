/**
 * Failed authentication, counted per client address. The request rate limit is keyed by token, so
 * a client guessing tokens presents a new key each time and was never limited. Here, an address
 * that fails `max` times within a window is refused (429 with Retry-After) until the window ends,
 * before any token lookup. Only that address: valid tokens used from elsewhere are unaffected.
 * Per instance, in memory: a guesser spread over N instances gets N times the budget, still bounded.
 */
export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 30;
const WINDOW_MS = 60_000;
/** Addresses tracked at once; beyond it the oldest window is forgotten first. */
const MAX_ADDRESSES = 100_000;

export class AuthFailureLimiter {
  private readonly windows = new Map<string, { failures: number; until: number }>();

  constructor(
    readonly max: number = DEFAULT_AUTH_FAILURES_PER_MINUTE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until the address may try again, or undefined when it may try now. */
  retryAfter(address: string): number | undefined {
    const w = this.windows.get(address);
    if (!w) return undefined;
    const left = w.until - this.now();
    if (left <= 0) {
      this.windows.delete(address);
      return undefined;
    }
    return w.failures >= this.max ? Math.ceil(left / 1000) : undefined;
  }

  fail(address: string): void {
    const now = this.now();
    let w = this.windows.get(address);
    if (!w || w.until <= now) {
      if (w) this.windows.delete(address);
      if (this.windows.size >= MAX_ADDRESSES) {
        this.windows.delete(this.windows.keys().next().value as string);
      }
      w = { failures: 0, until: now + WINDOW_MS };
      this.windows.set(address, w);
    }
    w.failures++;
  }
}

export function loadAuthFailureLimit(env: NodeJS.ProcessEnv): number {
  const value = env.RIGBOX_AUTH_FAILURE_LIMIT;
  if (value === undefined || value === '') return DEFAULT_AUTH_FAILURES_PER_MINUTE;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error('RIGBOX_AUTH_FAILURE_LIMIT must be a whole number of at least 1');
  return n;
}
