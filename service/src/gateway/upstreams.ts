import type { AiProviderId } from '../ai-config/providers.js';
import { ConfigError } from '../errors.js';

/**
 * The AI providers the gateway speaks for: where their API lives, how a caller presents a key,
 * and how we present ours upstream. Base URLs and platform keys come from configuration, so
 * tests point them at a local stand-in and production at the real APIs.
 */
export interface Upstream {
  readonly provider: AiProviderId;
  readonly baseUrl: string;
  /** The platform's own key, for managed mode; undefined when not configured. */
  readonly platformKey: string | undefined;
  /** The key the caller sent, from its headers or query. */
  callerKey(
    headers: Record<string, string | string[] | undefined>,
    query: URLSearchParams,
  ): string | undefined;
  /** Sets our key on the outgoing headers (and removes any the caller sent). */
  authorize(headers: Record<string, string>, key: string): void;
  /** Where the workspace's SDK finds the gateway: base URL variable and the path to put in it. */
  readonly baseUrlVar: string;
  readonly sdkPath: string;
  /** Request headers forwarded besides the common ones: the SDK's version and feature headers. */
  readonly forwardHeaders: readonly string[];
  /**
   * Headers that choose an account or project at the provider: forwarded with the workspace's own
   * key, never with the platform's (every managed workspace shares the platform's account).
   */
  readonly accountHeaders: readonly string[];
  /**
   * What managed mode serves with the platform key: inference only. Files, batches, fine-tuning,
   * stored objects and admin endpoints are shared by every managed workspace at the provider, so
   * the platform key must never reach them.
   */
  readonly managedEndpoints: readonly { readonly method: string; readonly path: RegExp }[];
}

/** Headers any provider call may carry upstream; everything else the caller sent stays here. */
export const COMMON_FORWARD_HEADERS: ReadonlySet<string> = new Set([
  'accept',
  'accept-encoding',
  'content-type',
  'content-length',
  'user-agent',
  'idempotency-key',
]);
/** The official SDKs describe themselves in x-stainless-* headers (language, version, retry count). */
export const FORWARD_HEADER_PREFIXES: readonly string[] = ['x-stainless-'];

const models = (prefix: string) => ({ method: 'GET', path: new RegExp(`^${prefix}/models(?:/[^/]+)?$`) });

const header = (h: Record<string, string | string[] | undefined>, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};
const bearer = (h: Record<string, string | string[] | undefined>) =>
  /^Bearer\s+(\S+)$/i.exec(header(h, 'authorization') ?? '')?.[1];

/** A base URL setting the gateway cannot use; found at start, not on the first call. */
export class UpstreamConfigError extends ConfigError {}

/** The variable's value as an http(s) URL; the value is not quoted back (it may hold credentials). */
function baseUrl(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {}
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UpstreamConfigError(`${name} must be an http:// or https:// URL`);
  }
  return value;
}

/** How long the gateway waits on an upstream, in milliseconds. */
export interface UpstreamTimeouts {
  /** To open a connection (TCP and TLS). */
  readonly connectMs: number;
  /** From sending the request to the answer's headers: a model may think a while before it answers. */
  readonly firstByteMs: number;
  /** Between two chunks of the answer (a stream that stalls this long is cut). */
  readonly idleMs: number;
}

export const DEFAULT_UPSTREAM_TIMEOUTS: UpstreamTimeouts = {
  connectMs: 10_000,
  firstByteMs: 120_000,
  idleMs: 60_000,
};

function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0 || n > 3_600_000) {
    throw new UpstreamConfigError(`${name} must be a whole number of milliseconds between 1 and 3600000`);
  }
  return n;
}

/** RIGBOX_UPSTREAM_CONNECT_TIMEOUT_MS, RIGBOX_UPSTREAM_FIRST_BYTE_TIMEOUT_MS, RIGBOX_UPSTREAM_IDLE_TIMEOUT_MS. */
export function loadUpstreamTimeouts(env: NodeJS.ProcessEnv): UpstreamTimeouts {
  const d = DEFAULT_UPSTREAM_TIMEOUTS;
  return {
    connectMs: milliseconds(env, 'RIGBOX_UPSTREAM_CONNECT_TIMEOUT_MS', d.connectMs),
    firstByteMs: milliseconds(env, 'RIGBOX_UPSTREAM_FIRST_BYTE_TIMEOUT_MS', d.firstByteMs),
    idleMs: milliseconds(env, 'RIGBOX_UPSTREAM_IDLE_TIMEOUT_MS', d.idleMs),
  };
}

export function loadUpstreams(env: NodeJS.ProcessEnv): Map<string, Upstream> {
  const list: Upstream[] = [
    {
      provider: 'openai',
      baseUrl: baseUrl(env, 'RIGBOX_UPSTREAM_OPENAI', 'https://api.openai.com'),
      platformKey: env.RIGBOX_PLATFORM_KEY_OPENAI,
      callerKey: (h) => bearer(h),
      authorize: (h, key) => {
        h.authorization = `Bearer ${key}`;
      },
      baseUrlVar: 'OPENAI_BASE_URL',
      sdkPath: '/v1',
      forwardHeaders: ['openai-beta'],
      accountHeaders: ['openai-organization', 'openai-project'],
      managedEndpoints: [
        {
          method: 'POST',
          path: /^\/v1\/(?:chat\/completions|completions|responses|embeddings|moderations)$/,
        },
        models('/v1'),
      ],
    },
    {
      provider: 'anthropic',
      baseUrl: baseUrl(env, 'RIGBOX_UPSTREAM_ANTHROPIC', 'https://api.anthropic.com'),
      platformKey: env.RIGBOX_PLATFORM_KEY_ANTHROPIC,
      callerKey: (h) => header(h, 'x-api-key') ?? bearer(h),
      authorize: (h, key) => {
        delete h.authorization;
        h['x-api-key'] = key;
      },
      baseUrlVar: 'ANTHROPIC_BASE_URL',
      sdkPath: '',
      forwardHeaders: ['anthropic-version', 'anthropic-beta'],
      accountHeaders: [],
      managedEndpoints: [{ method: 'POST', path: /^\/v1\/messages(?:\/count_tokens)?$/ }, models('/v1')],
    },
    {
      provider: 'google',
      baseUrl: baseUrl(env, 'RIGBOX_UPSTREAM_GOOGLE', 'https://generativelanguage.googleapis.com'),
      platformKey: env.RIGBOX_PLATFORM_KEY_GOOGLE,
      // Google's SDKs send the key as x-goog-api-key, older callers as ?key=.
      callerKey: (h, q) => header(h, 'x-goog-api-key') ?? q.get('key') ?? undefined,
      authorize: (h, key) => {
        h['x-goog-api-key'] = key;
      },
      baseUrlVar: 'GOOGLE_GEMINI_BASE_URL',
      sdkPath: '',
      forwardHeaders: ['x-goog-api-client'],
      accountHeaders: ['x-goog-user-project'],
      managedEndpoints: [
        {
          method: 'POST',
          path: /^\/v1(?:beta)?\/models\/[^/:]+:(?:generateContent|streamGenerateContent|countTokens|embedContent|batchEmbedContents)$/,
        },
        models('/v1beta'),
        models('/v1'),
      ],
    },
  ];
  return new Map(list.map((u) => [u.provider, u]));
}
