import { ApiTransport } from './api-transport.js';
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

/** The service answers at most this many ids per list request. */
const MAX_BATCH_READ = 100;

export class RigboxClient {
  constructor(
    readonly endpoint: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Keep-alive connections to the API, opened by the first request. */
  private transport: ApiTransport | undefined;

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const payload = body !== undefined ? JSON.stringify(body) : undefined;
    let res: { status: number; text: string };
    try {
      this.transport ??= new ApiTransport(new URL(this.endpoint), this.timeoutMs);
      res = await this.transport.exchange(
        method,
        path,
        {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          'user-agent': 'terraform-provider-rigbox/0.1.0',
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        payload,
      );
    } catch (err) {
      const cause = (err as { code?: string }).code ?? (err as Error).name;
      throw new RigboxApiError(
        0,
        'unreachable',
        `cannot reach the Rigbox API at ${this.endpoint} (${cause})`,
      );
    }
    const { text } = res;
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.status < 200 || res.status > 299) {
      const e = (parsed ?? {}) as { code?: string; message?: string; field?: string };
      throw new RigboxApiError(res.status, e.code ?? 'error', e.message ?? `HTTP ${res.status}`, e.field);
    }
    return parsed as T;
  }

  getConfig(owner: ConfigOwner): Promise<AiConfigView> {
    if (owner.kind !== 'workspace') return this.request('GET', pathOf(owner));
    return new Promise((resolve, reject) => {
      const waiting = this.pendingReads.get(owner.workspaceId) ?? [];
      waiting.push({ resolve, reject });
      this.pendingReads.set(owner.workspaceId, waiting);
      if (this.pendingReads.size >= MAX_BATCH_READ) this.flushReads();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushReads());
      }
    });
  }

  /**
   * Workspace reads asked for in the same turn of the event loop (tofu refreshes up to
   * -parallelism resources at once) go out as one `GET /api/workspaces?ids=...`; a lone read
   * keeps its own GET. Ids the answer leaves out are 404s, as the single GET would say.
   */
  private pendingReads = new Map<string, { resolve(v: AiConfigView): void; reject(e: unknown): void }[]>();
  private flushScheduled = false;

  private flushReads(): void {
    this.flushScheduled = false;
    const batch = this.pendingReads;
    this.pendingReads = new Map();
    if (batch.size === 0) return;
    const settle = (id: string, read: () => Promise<AiConfigView>) =>
      read().then(
        (view) => {
          for (const w of batch.get(id) ?? []) w.resolve(view);
        },
        (err: unknown) => {
          for (const w of batch.get(id) ?? []) w.reject(err);
        },
      );
    const ids = [...batch.keys()];
    const one = (id: string) => () =>
      this.request<AiConfigView>('GET', pathOf({ kind: 'workspace', workspaceId: id }));
    if (ids.length === 1) {
      void settle(ids[0] as string, one(ids[0] as string));
      return;
    }
    const listed = this.request<{ workspaces: { id: string; ai_config: AiConfigView }[] }>(
      'GET',
      `/api/workspaces?ids=${ids.map(encodeURIComponent).join(',')}`,
    );
    for (const id of ids) {
      void settle(id, async () => {
        let found: AiConfigView | undefined;
        try {
          found = (await listed).workspaces.find((w) => w.id === id)?.ai_config;
        } catch (err) {
          // A service without batch reads refuses the parameter: read one by one.
          if (err instanceof RigboxApiError && err.status === 400) return one(id)();
          throw err;
        }
        if (!found) throw new RigboxApiError(404, 'not_found', 'workspace not found');
        return found;
      });
    }
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
