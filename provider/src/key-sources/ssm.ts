import {
  DescribeParametersCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  type ParameterHistory,
  SSMClient,
  type SSMClientConfig,
} from '@aws-sdk/client-ssm';
import { KeySourceError, type KeySourceErrorKind, NETWORK_ERROR_CODES } from './errors.js';
import type { KeySource } from './key-source.js';
import { describeRef, type SsmRef } from './reference.js';

/** How to reach AWS SSM. Unset parts come from the standard AWS chain (env, profile, instance role). */
export interface SsmSettings {
  /** @default the AWS chain's region (`AWS_REGION`, profile) */
  region?: string;
  /** e.g. a VPC endpoint or a local emulator. @default the region's public SSM endpoint */
  endpoint?: string;
  /** @default the standard AWS credential chain */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts per request inside the AWS SDK (its own backoff). @default 3 */
  maxAttempts?: number;
  /** Deadline for one request, the SDK's retries included. @default 10000 */
  timeoutMs?: number;
  /**
   * Extra rounds, with exponential backoff, when the SDK's own attempts all ended throttled.
   * @default { retries: 3, baseDelayMs: 500 }
   */
  throttleRetry?: { retries?: number; baseDelayMs?: number };
  /** Use this client instead of building one from the settings above (tests watch its commands). */
  client?: SSMClient;
}

const defaultTimeoutMs = 10_000;
const throttlingErrors = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ThrottledException',
]);
const authErrors = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'CredentialsProviderError',
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const errorName = (e: unknown) => (isRecord(e) && typeof e.name === 'string' ? e.name : 'Error');
const errorCode = (e: unknown) => (isRecord(e) && typeof e.code === 'string' ? e.code : undefined);
function httpStatus(e: unknown): number | undefined {
  const meta = isRecord(e) && isRecord(e.$metadata) ? e.$metadata : undefined;
  return typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

// One SDK client per settings object: it holds the resolved credentials and the connection pool.
const clients = new WeakMap<SsmSettings, SSMClient>();

function clientFor(settings: SsmSettings): SSMClient {
  if (settings.client !== undefined) return settings.client;
  let client = clients.get(settings);
  if (client === undefined) {
    const config: SSMClientConfig = { maxAttempts: settings.maxAttempts ?? 3 };
    if (settings.region !== undefined) config.region = settings.region;
    if (settings.endpoint !== undefined) config.endpoint = settings.endpoint;
    if (settings.credentials !== undefined) config.credentials = settings.credentials;
    client = new SSMClient(config);
    clients.set(settings, client);
  }
  return client;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads one SSM parameter (SecureString decrypted), by name or ARN, latest or pinned. */
export class SsmKeySource implements KeySource {
  private readonly reference: string;
  private readonly client: SSMClient;

  constructor(
    private readonly ref: SsmRef,
    private readonly settings: SsmSettings,
  ) {
    this.reference = describeRef(ref);
    this.client = clientFor(settings);
  }

  describe(): string {
    return this.reference;
  }

  async readValue(): Promise<{ value: string; version: string }> {
    const { name, version, label } = this.ref;
    const selector = version !== undefined ? `:${version}` : label !== undefined ? `:${label}` : '';
    const out = await this.call('GetParameter', (abortSignal) =>
      this.client.send(new GetParameterCommand({ Name: `${name}${selector}`, WithDecryption: true }), {
        abortSignal,
      }),
    );
    const value = out.Parameter?.Value;
    if (value === undefined || out.Parameter?.Version === undefined) {
      throw this.error('unknown', 'GetParameter answered without a value or version');
    }
    return { value, version: String(out.Parameter.Version) };
  }

  async readVersion(): Promise<string> {
    const { name, version, label } = this.ref;
    if (version === undefined && label === undefined && !name.startsWith('arn:')) {
      return String(await this.latestVersionByName());
    }
    // A label, a pinned version or an ARN: the history has them all, without values
    // (WithDecryption false). moto 5 does not find a parameter by ARN here; AWS does.
    const history = await this.history();
    if (label !== undefined) {
      const labelled = history.find((h) => h.Labels?.includes(label));
      if (labelled?.Version === undefined)
        throw this.error('not_found', `no version has the label "${label}"`);
      return String(labelled.Version);
    }
    if (version !== undefined) {
      if (!history.some((h) => h.Version === version)) {
        throw this.error('not_found', `version ${version} does not exist (SSM keeps the last 100 versions)`);
      }
      return String(version);
    }
    const latest = Math.max(...history.map((h) => h.Version ?? 0));
    if (latest < 1) throw this.error('not_found', 'the parameter has no versions');
    return String(latest);
  }

  private async latestVersionByName(): Promise<number> {
    let nextToken: string | undefined;
    // DescribeParameters filters after paging, so a match can come after empty pages.
    for (let page = 0; page < 50; page++) {
      const out = await this.call('DescribeParameters', (abortSignal) =>
        this.client.send(
          new DescribeParametersCommand({
            ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [this.ref.name] }],
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
          { abortSignal },
        ),
      );
      const found = out.Parameters?.find((p) => p.Name === this.ref.name);
      if (found?.Version !== undefined) return found.Version;
      nextToken = out.NextToken;
      if (nextToken === undefined) break;
    }
    throw this.error('not_found', 'parameter not found');
  }

  private async history(): Promise<ParameterHistory[]> {
    const entries: ParameterHistory[] = [];
    let nextToken: string | undefined;
    // SSM keeps at most 100 versions, 50 a page; the bound only guards against a looping token.
    for (let page = 0; page < 10; page++) {
      const out = await this.call('GetParameterHistory', (abortSignal) =>
        this.client.send(
          new GetParameterHistoryCommand({
            Name: this.ref.name,
            WithDecryption: false,
            MaxResults: 50,
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
          { abortSignal },
        ),
      );
      entries.push(...(out.Parameters ?? []));
      nextToken = out.NextToken;
      if (nextToken === undefined) break;
    }
    return entries;
  }

  /**
   * Sends one request with a deadline. When the SDK's own retries still end throttled, waits and
   * tries again a bounded number of times, then reports `throttled`.
   */
  private async call<T>(operation: string, send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const retries = this.settings.throttleRetry?.retries ?? 3;
    const baseDelayMs = this.settings.throttleRetry?.baseDelayMs ?? 500;
    const timeoutMs = this.settings.timeoutMs ?? defaultTimeoutMs;
    for (let round = 0; ; round++) {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        return await send(signal);
      } catch (error) {
        if (signal.aborted) throw this.error('timeout', `${operation} got no answer within ${timeoutMs} ms`);
        if (!throttlingErrors.has(errorName(error))) throw this.classify(operation, error);
        if (round >= retries) {
          throw this.error(
            'throttled',
            `AWS kept throttling ${operation} through ${round + 1} tries with exponential backoff; ` +
              'retry later or raise the SSM API throughput quota',
          );
        }
        await sleep(baseDelayMs * 2 ** round);
      }
    }
  }

  private classify(operation: string, error: unknown): KeySourceError {
    const name = errorName(error);
    const status = httpStatus(error);
    const code = errorCode(error);
    const where = `${operation} failed with ${name}${status === undefined ? '' : ` (HTTP ${status})`}`;
    let kind: KeySourceErrorKind = 'unknown';
    let detail = where;
    if (name === 'ParameterNotFound') {
      kind = 'not_found';
      detail =
        this.ref.label === undefined
          ? `parameter not found (${name})`
          : `parameter not found, or no version has the label "${this.ref.label}" (${name})`;
    } else if (name === 'ParameterVersionNotFound') {
      kind = 'not_found';
      detail = `version ${this.ref.version ?? ''} not found (${name})`;
    } else if (name === 'AccessDeniedException') {
      kind = 'permission_denied';
      detail = `${where}: the caller's IAM policy does not allow it (for a SecureString, kms:Decrypt too)`;
    } else if (authErrors.has(name)) {
      kind = 'auth_failed';
      detail = `${where}: check the AWS credentials`;
    } else if (name === 'ValidationException') {
      kind = 'invalid_reference';
      detail = `${where}: AWS refused the parameter name`;
    } else if (code !== undefined && NETWORK_ERROR_CODES.has(code)) {
      kind = 'unreachable';
      detail = `cannot reach AWS SSM (${code})`;
    } else if (name === 'TimeoutError' || code === 'ETIMEDOUT') {
      kind = 'timeout';
      detail = `${operation} timed out connecting to AWS SSM`;
    } else if (error instanceof Error && error.message === 'Region is missing') {
      detail = 'no AWS region is configured (set the region in the provider config or AWS_REGION)';
    }
    return this.error(kind, detail);
  }

  private error(kind: KeySourceErrorKind, detail: string): KeySourceError {
    return new KeySourceError(kind, this.reference, `SSM key source ${this.reference}: ${detail}`);
  }
}
