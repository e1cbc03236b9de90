/**
 * The provider's only way to the Rigbox service: its HTTP API. Errors carry the status and the
 * API's own message (which never contains a key), and never the bearer token.
 */
export interface AiConfigView {
  workspace_id: string | null;
  mode: 'managed' | 'byok';
  provider: string;
  model: string | null;
  api_key_set: boolean;
  api_key_fingerprint: string | null;
  api_key_updated_at: string | null;
  revision: number;
  updated_at: string | null;
}

export interface AiConfigInput {
  mode: 'managed' | 'byok';
  provider: string;
  api_key?: string | null;
  model?: string | null;
}

export class RigboxApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RigboxApiError';
  }
}

export type ConfigOwner = { kind: 'workspace'; workspaceId: string } | { kind: 'defaults' };

const pathOf = (owner: ConfigOwner) =>
  owner.kind === 'workspace'
    ? `/api/workspaces/${encodeURIComponent(owner.workspaceId)}/ai-config`
    : '/api/users/me/ai-defaults';

export class RigboxClient {
  constructor(
    readonly endpoint: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
  ) {}

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.endpoint.replace(/\/+$/, '')}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          'user-agent': 'terraform-provider-rigbox/0.1.0',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new RigboxApiError(
        0,
        'unreachable',
        `cannot reach the Rigbox API at ${this.endpoint} (${cause})`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const e = (parsed ?? {}) as { code?: string; message?: string; field?: string };
      throw new RigboxApiError(res.status, e.code ?? 'error', e.message ?? `HTTP ${res.status}`, e.field);
    }
    return parsed as T;
  }

  getConfig(owner: ConfigOwner): Promise<AiConfigView> {
    return this.request('GET', pathOf(owner));
  }

  /** PUT with If-Match when a revision is given, so a concurrent change is a 412, not an overwrite. */
  putConfig(owner: ConfigOwner, input: AiConfigInput, ifRevision?: number): Promise<AiConfigView> {
    return this.request(
      'PUT',
      pathOf(owner),
      input,
      ifRevision !== undefined ? { 'if-match': `"${ifRevision}"` } : {},
    );
  }
}
