import { ConfigError } from '../errors.js';

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
  retryAfter(ip: string): number | undefined {
    const address = addressKey(ip);
    const w = this.windows.get(address);
    if (!w) return undefined;
    const left = w.until - this.now();
    if (left <= 0) {
      this.windows.delete(address);
      return undefined;
    }
    return w.failures >= this.max ? Math.ceil(left / 1000) : undefined;
  }

  fail(ip: string): void {
    const address = addressKey(ip);
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
    throw new ConfigError('RIGBOX_AUTH_FAILURE_LIMIT must be a whole number of at least 1');
  return n;
}

/**
 * What one client is, by address: an IPv4 address, or an IPv6 /64 (one host is commonly given a
 * whole /64, and counting its addresses one by one would give it an unlimited budget).
 */
export function addressKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const bare = ip.split('%')[0] ?? ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped?.[1]) return mapped[1];
  const [head = '', tail] = bare.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

/**
 * RIGBOX_TRUST_PROXY: which proxies in front of the service may say who the client is
 * (X-Forwarded-For), so that limits count clients rather than the proxy. Unset: none (the
 * connection's address is the client). `true`, a hop count, or addresses and CIDRs separated by
 * commas, as Fastify's trustProxy takes them.
 */
export function loadTrustProxy(env: NodeJS.ProcessEnv): boolean | number | string[] {
  const value = env.RIGBOX_TRUST_PROXY?.trim();
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  const list = value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (list.some((v) => !/^[0-9A-Fa-f:.]+(?:\/\d{1,3})?$/.test(v))) {
    throw new ConfigError(
      'RIGBOX_TRUST_PROXY must be true, a hop count, or addresses/CIDRs separated by commas',
    );
  }
  return list;
}
