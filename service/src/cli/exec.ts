import { spawn } from 'node:child_process';

/**
 * `rigbox exec --workspace <id> -- <command>`: plays the workspace VM's part. Gets a runtime
 * token, fetches the workspace's env, and runs the command with it. The child's exit code is
 * ours; signals we receive are passed on to it.
 */
export class ExecError extends Error {}

async function call(endpoint: string, token: string, method: string, path: string) {
  let res: Response;
  try {
    res = await fetch(`${endpoint.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new ExecError(`cannot reach the Rigbox API at ${endpoint} (${code})`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body };
}

export async function exec(workspaceId: string, command: string[]): Promise<number> {
  const endpoint = process.env.RIGBOX_ENDPOINT;
  const token = process.env.RIGBOX_TOKEN;
  if (!endpoint)
    throw new ExecError('RIGBOX_ENDPOINT is not set (the Rigbox API base URL, e.g. http://127.0.0.1:8080)');
  if (!token)
    throw new ExecError('RIGBOX_TOKEN is not set (create one with `rigbox token create --user <name>`)');
  if (command.length === 0)
    throw new ExecError('nothing to run: rigbox exec --workspace <id> -- <command> [args...]');

  const minted = await call(
    endpoint,
    token,
    'POST',
    `/api/workspaces/${encodeURIComponent(workspaceId)}/runtime-tokens`,
  );
  if (minted.status === 401) throw new ExecError('RIGBOX_TOKEN was refused: invalid or expired token');
  if (minted.status === 404) throw new ExecError(`workspace ${workspaceId} not found`);
  if (minted.status !== 201)
    throw new ExecError(`could not create a runtime token: ${String(minted.body.message ?? minted.status)}`);
  const runtime = await call(endpoint, String(minted.body.token), 'GET', '/api/runtime/env');
  if (runtime.status !== 200) {
    throw new ExecError(
      `workspace ${workspaceId}: ${String(runtime.body.message ?? `HTTP ${runtime.status}`)}`,
    );
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...(runtime.body.env as Record<string, string>) };
  // The child is the workspace, not the user: it gets its own credentials, never the user token.
  delete env.RIGBOX_TOKEN;

  const [program, ...args] = command as [string, ...string[]];
  const child = spawn(program, args, { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const handlers = signals.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise<number>((resolve, reject) => {
    child.on('error', (err) => {
      reject(new ExecError(`cannot run ${program}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    child.on('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      if (signal) {
        // Die by the same signal, so our parent sees what the child did.
        process.kill(process.pid, signal);
        return;
      }
      resolve(code ?? 1);
    });
  });
}
