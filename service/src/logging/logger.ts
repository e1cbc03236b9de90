import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino redacts before a line is formatted. Configured once, here: request headers, bodies
 * and errors that might carry a key or a token.
 */
export const REDACT_PATHS = [
  'api_key',
  '*.api_key',
  'token',
  '*.token',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-goog-api-key"]',
  'body',
  '*.body',
];

/**
 * Shapes of provider keys and our own tokens. The last-line scrubber replaces anything that
 * matches, whatever path it came by (an error message, a URL, a third-party log line).
 */
export const SECRET_PATTERNS: readonly RegExp[] = [
  /sk-[A-Za-z0-9_-]{8,}/g,
  /AIza[0-9A-Za-z_-]{20,}/g,
  /gsk_[A-Za-z0-9]{8,}/g,
  /xai-[A-Za-z0-9_-]{8,}/g,
  /rbx[a-z]?_[A-Za-z0-9_-]{16,}/g,
  /hvs\.[A-Za-z0-9_-]{16,}/g,
  /([?&](?:key|api_key|token)=)[^&\s"]+/gi,
  /(Bearer\s+)[A-Za-z0-9._~+/-]{8,}=*/gi,
];

/** A cheap first look: most lines hold nothing key-shaped and skip the replacements. */
const MAYBE_SECRET = /sk-|AIza|gsk_|xai-|rbx|hvs\.|key=|token=|bearer/i;

export function scrub(line: string): string {
  if (!MAYBE_SECRET.test(line)) return line;
  let out = line;
  for (const p of SECRET_PATTERNS) {
    out = out.replace(p, (_m, lead?: unknown) => `${typeof lead === 'string' ? lead : ''}[REDACTED]`);
  }
  return out;
}

export interface LoggerOptions {
  level?: string;
  /** Where lines go; stdout by default. Tests pass a collecting stream to scan for canaries. */
  destination?: DestinationStream;
  /** Extra literal secrets to scrub (for example the platform's own provider keys). */
  secrets?: readonly string[];
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const literals = (options.secrets ?? []).filter((s) => s.length >= 8);
  return pino(
    {
      level: options.level ?? process.env.RIGBOX_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: {
        streamWrite(line: string): string {
          let out = scrub(line);
          for (const s of literals) out = out.split(s).join('[REDACTED]');
          return out;
        },
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
