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

/** The account's BYOK policy as the API shows it. */
export interface ByokPolicyView {
  enforcement: 'enforce' | 'report';
  allowed_modes: string[] | null;
  allowed_providers: string[] | null;
  allowed_models: Record<string, string[]> | null;
  max_key_age_days: number | null;
  revision: number;
  updated_at: string | null;
}
export type ByokPolicyInput = Omit<ByokPolicyView, 'revision' | 'updated_at'>;

export interface PolicyViolation {
  rule: string;
  field: 'mode' | 'provider' | 'model' | 'api_key';
  message: string;
}
/** What the policy in force says of a config (its mode, provider and model). */
export interface PolicyCheck {
  enforcement: 'enforce' | 'report';
  revision: number;
  max_key_age_days: number | null;
  violations: PolicyViolation[];
}

export interface ByokReportEntry {
  workspace_id: string | null;
  name: string | null;
  mode: string;
  provider: string;
  model: string | null;
  compliant: boolean;
  violations: PolicyViolation[];
  key_age_days: number | null;
  key_past_max_age: boolean;
}
export interface ByokReportPage {
  policy: { enforcement: 'enforce' | 'report'; revision: number };
  generated_at: string;
  defaults: ByokReportEntry | null;
  workspaces: ByokReportEntry[];
  next_cursor: string | null;
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
/**
 * A config read ahead answers one read of its workspace, if that read comes within this long.
 * tofu reads a state a millisecond or so after upgrading it; this bounds how old a refresh can be.
 */
const READ_AHEAD_MS = 1_000;

export class RigboxClient {
  constructor(
    readonly endpoint: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
    /** The clock the read-ahead window is measured on, in milliseconds (tests pass their own). */
    private readonly now: () => number = () => performance.now(),
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
      // Paths are encoded; a header that cannot be sent is the token (from the environment).
      if (cause === 'EINVALIDHEADER') {
        throw new RigboxApiError(
          0,
          'invalid_token',
          'the Rigbox API token holds a character an HTTP header cannot carry (a line break, or a non-ASCII character); check RIGBOX_TOKEN or the provider block',
        );
      }
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
    const id = owner.workspaceId;
    this.expected.delete(id);
    const ahead = this.readAhead.get(id);
    if (ahead) {
      this.readAhead.delete(id);
      if (this.now() - ahead.at < READ_AHEAD_MS) {
        // Not found there is a 404, as the single GET says; a failed list falls back to a read of its own.
        return ahead.view.then(
          (view) => view ?? Promise.reject(new RigboxApiError(404, 'not_found', 'workspace not found')),
          () => this.queueRead(id),
        );
      }
    }
    return this.queueRead(id);
  }

  /**
   * tofu upgrades each state just before it refreshes it, and runs up to -parallelism resources
   * at once, so the reads of a plan come one or two at a time. A workspace whose state was just
   * upgraded is expected to be read next: the next list request that goes out anyway takes it
   * along, and its read is then answered from that (a plan of 100 resources made 42 requests;
   * with this, about half as many).
   */
  expectRead(owner: ConfigOwner): void {
    if (owner.kind === 'workspace' && !this.pendingReads.has(owner.workspaceId)) {
      this.expected.add(owner.workspaceId);
    }
  }

  private expected = new Set<string>();
  private readAhead = new Map<string, { view: Promise<AiConfigView | undefined>; at: number }>();

  private queueRead(id: string): Promise<AiConfigView> {
    return new Promise((resolve, reject) => {
      const waiting = this.pendingReads.get(id) ?? [];
      waiting.push({ resolve, reject });
      this.pendingReads.set(id, waiting);
      if (this.pendingReads.size >= MAX_BATCH_READ) this.flushReads();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushReads());
      }
    });
  }

  /**
   * Workspace reads asked for in the same turn of the event loop go out as one
   * `GET /api/workspaces?ids=...`, with the workspaces expected to be read next; a lone read with
   * none expected keeps its own GET. Ids the answer leaves out are 404s, as the single GET would say.
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
    const extra: string[] = [];
    for (const id of this.expected) {
      if (ids.length + extra.length >= MAX_BATCH_READ) break;
      this.expected.delete(id);
      if (!batch.has(id)) extra.push(id);
    }
    const one = (id: string) => () =>
      this.request<AiConfigView>('GET', pathOf({ kind: 'workspace', workspaceId: id }));
    if (ids.length === 1 && extra.length === 0) {
      void settle(ids[0] as string, one(ids[0] as string));
      return;
    }
    const listed = this.listByIds([...ids, ...extra]);
    const at = this.now();
    // Entries go in oldest first: drop the ones no read came for in time (a plan with -refresh=false).
    for (const [id, entry] of this.readAhead) {
      if (at - entry.at < READ_AHEAD_MS) break;
      this.readAhead.delete(id);
    }
    for (const id of extra) {
      this.readAhead.delete(id);
      const view = listed.then((found) => found.get(id));
      // Unhandled until its read comes, if it ever does.
      view.catch(() => {});
      this.readAhead.set(id, { view, at });
    }
    for (const id of ids) {
      void settle(id, async () => {
        let found: AiConfigView | undefined;
        try {
          found = (await listed).get(id);
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

  /**
   * The caller's workspaces among `ids` (at most MAX_BATCH_READ, one default page), following
   * `next_cursor` should the service ever page them smaller.
   */
  private async listByIds(ids: string[]): Promise<Map<string, AiConfigView>> {
    type Listed = { workspaces: { id: string; ai_config: AiConfigView }[]; next_cursor?: string | null };
    const found = new Map<string, AiConfigView>();
    const base = `/api/workspaces?ids=${ids.map(encodeURIComponent).join(',')}`;
    let path = base;
    // A page holds at least one workspace, so more pages than ids would be a service that loops.
    for (let pages = 1; ; pages++) {
      const res: Listed = await this.request<Listed>('GET', path);
      for (const w of res.workspaces) found.set(w.id, w.ai_config);
      if (!res.next_cursor || pages >= ids.length) return found;
      path = `${base}&cursor=${encodeURIComponent(res.next_cursor)}`;
    }
  }

  getPolicy(): Promise<ByokPolicyView> {
    return this.request('GET', '/api/users/me/byok-policy');
  }

  putPolicy(input: ByokPolicyInput, ifRevision?: number): Promise<ByokPolicyView> {
    return this.request(
      'PUT',
      '/api/users/me/byok-policy',
      input,
      ifRevision !== undefined ? { 'if-match': `"${ifRevision}"` } : {},
    );
  }

  /** Checks asked during one run, by config: a plan of many alike configs asks once per kind. */
  private checks = new Map<string, Promise<PolicyCheck>>();

  /** The violations of a config under the policy in force (the service decides; nothing is written). */
  checkPolicy(config: { mode: string; provider: string; model: string | null }): Promise<PolicyCheck> {
    const key = JSON.stringify([config.mode, config.provider, config.model]);
    let check = this.checks.get(key);
    if (!check) {
      check = this.request<PolicyCheck>('POST', '/api/users/me/byok-policy/check', config);
      // A failed check is asked again next time, not remembered.
      check.catch(() => this.checks.delete(key));
      this.checks.set(key, check);
    }
    return check;
  }

  /** The whole report: the defaults and every workspace, following next_cursor. */
  async getReport(): Promise<{ page: ByokReportPage; workspaces: ByokReportEntry[] }> {
    const first = await this.request<ByokReportPage>('GET', '/api/users/me/byok-policy/report?limit=1000');
    const workspaces = [...first.workspaces];
    let cursor = first.next_cursor;
    while (cursor) {
      const next: ByokReportPage = await this.request<ByokReportPage>(
        'GET',
        `/api/users/me/byok-policy/report?limit=1000&cursor=${encodeURIComponent(cursor)}`,
      );
      workspaces.push(...next.workspaces);
      cursor = next.next_cursor;
    }
    return { page: first, workspaces };
  }

  /** PUT with If-Match when a revision is given, so a concurrent change is a 412, not an overwrite. */
  putConfig(owner: ConfigOwner, input: AiConfigInput, ifRevision?: number): Promise<AiConfigView> {
    // A config read ahead is not what this write leaves.
    if (owner.kind === 'workspace') {
      this.readAhead.delete(owner.workspaceId);
      this.expected.delete(owner.workspaceId);
    }
    return this.request(
      'PUT',
      pathOf(owner),
      input,
      ifRevision !== undefined ? { 'if-match': `"${ifRevision}"` } : {},
    );
  }
}
