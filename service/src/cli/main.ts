import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AiConfigs } from '../ai-config/service.js';
import { describeBrokenLink, verifyStoredChains } from '../audit/verify.js';
import { createUserToken, USER_NAME_PATTERN } from '../auth/tokens.js';
import { Envelopes } from '../crypto/envelope.js';
import { KeyringError, loadKeyring } from '../crypto/keyring.js';
import { rewrapAll } from '../crypto/rotate.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../logging/logger.js';
import { createService } from '../service.js';
import { openStorage } from '../storage/open.js';
import { ExecError, exec } from './exec.js';

/** A failure to report as one line on stderr (no stack trace) with a non-zero exit code. */
class CliError extends Error {}

const USAGE = `usage:
  rigbox serve [--port 8080] [--host 127.0.0.1] [--data-dir .rigbox]
  rigbox token create --user <name> [--data-dir .rigbox]
  rigbox kek rotate [--data-dir .rigbox]
  rigbox user plan --user <name> --plan <free|pro> [--data-dir .rigbox]
  rigbox audit verify [--data-dir .rigbox]   (checks every audit hash chain; exit 1 on a broken link)
  rigbox exec --workspace <id> -- <command> [args...]   (uses RIGBOX_ENDPOINT, RIGBOX_TOKEN)

environment: RIGBOX_PORT, RIGBOX_HOST, RIGBOX_DATA_DIR, RIGBOX_DATABASE_URL (postgres://...),
             RIGBOX_MASTER_KEY or RIGBOX_MASTER_KEY_FILE, RIGBOX_LOG_LEVEL`;

const say = (line: string) => process.stderr.write(`${line}\n`);

function dataDirOf(values: { 'data-dir'?: string | undefined }): string {
  return resolve(values['data-dir'] ?? process.env.RIGBOX_DATA_DIR ?? '.rigbox');
}

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean' }>) {
  try {
    return parseArgs({
      args,
      options: { ...options, 'data-dir': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | undefined>;
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`);
  }
}

async function serve(args: string[]) {
  const v = parse(args, { port: { type: 'string' }, host: { type: 'string' } });
  const port = Number(v.port ?? process.env.RIGBOX_PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CliError(`--port must be 0..65535, got ${v.port}`);
  const host = v.host ?? process.env.RIGBOX_HOST ?? '127.0.0.1';
  const dataDir = dataDirOf(v);
  // The platform's own provider keys are scrubbed from every log line, literally.
  const platformKeys = Object.entries(process.env)
    .filter(([name, value]) => name.startsWith('RIGBOX_PLATFORM_KEY_') && value)
    .map(([, value]) => value as string);
  const logger = createLogger({ secrets: platformKeys });
  // A start that fails leaves no new file behind: what this start creates is removed if it fails.
  const existed = new Set(existsSync(dataDir) ? readdirSync(dataDir) : []);
  const dirExisted = existsSync(dataDir);
  const undo = () => {
    if (!dirExisted) rmSync(dataDir, { recursive: true, force: true });
    else if (existsSync(dataDir)) {
      for (const f of readdirSync(dataDir)) if (!existed.has(f)) rmSync(join(dataDir, f), { force: true });
    }
  };
  let service: Awaited<ReturnType<typeof createService>>;
  let address: string;
  try {
    service = await createService({ dataDir, databaseUrl: process.env.RIGBOX_DATABASE_URL, logger });
  } catch (err) {
    undo();
    throw err;
  }
  try {
    address = await service.app.listen({ port, host });
  } catch (err) {
    await service.close();
    undo();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new CliError(`port ${port} on ${host} is in use: pick another with --port`);
    if (code === 'EACCES' || code === 'EADDRNOTAVAIL')
      throw new CliError(`cannot listen on ${host}:${port} (${code})`);
    throw err;
  }
  say(`rigbox: serving the AI config API on ${address} (storage: ${service.storage.kind}, data: ${dataDir})`);
  say(`rigbox: API docs at ${address}/docs; get a token with: TOKEN=$(npx rigbox token create --user alice)`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`rigbox: ${signal}, shutting down`);
    await service.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

async function withStorage<T>(
  dataDir: string,
  fn: (storage: Awaited<ReturnType<typeof openStorage>>) => Promise<T>,
) {
  const storage = await openStorage({ dataDir, databaseUrl: process.env.RIGBOX_DATABASE_URL });
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

async function tokenCreate(args: string[]) {
  const v = parse(args, { user: { type: 'string' } });
  if (!v.user) throw new CliError('token create needs --user <name>');
  if (!USER_NAME_PATTERN.test(v.user)) {
    throw new CliError(
      '--user must be 1-64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
  const user = v.user;
  const { token, user: created } = await withStorage(dataDirOf(v), (s) => createUserToken(s, user));
  say(`rigbox: created a token for user ${created.name}; it is shown once, store it safely`);
  process.stdout.write(`${token}\n`);
}

async function kekRotate(args: string[]) {
  const v = parse(args, {});
  const dataDir = dataDirOf(v);
  const keyring = loadKeyring({ env: process.env, dataDir, warn: say });
  if (keyring.source.file) {
    const added = keyring.addPrimaryToFile();
    say(`rigbox: added master key ${added.id} to ${keyring.source.file} as the primary`);
  } else if (keyring.ids.length < 2) {
    throw new KeyringError(
      'RIGBOX_MASTER_KEY holds one key: put the new key first and the current one after it, comma-separated, then run rotate',
    );
  }
  const report = await withStorage(dataDir, (s) => rewrapAll(s, new Envelopes(keyring)));
  say(
    `rigbox: re-wrapped ${report.rewrapped} data keys under master key ${keyring.primary.id} (${report.alreadyCurrent} already current)`,
  );
  if (report.stale.length > 0) {
    throw new CliError(
      `${report.stale.length} stored keys were sealed again under an older master key while rotating (an instance does not have the new key yet); give every instance the new key, then run rotate again: ${report.stale.join(', ')}`,
    );
  }
  if (report.failed.length > 0) {
    throw new CliError(
      `${report.failed.length} stored keys failed their integrity check and were left as they are: ${report.failed.join(', ')}`,
    );
  }
}

async function userPlan(args: string[]) {
  const v = parse(args, { user: { type: 'string' }, plan: { type: 'string' } });
  if (!v.user || (v.plan !== 'free' && v.plan !== 'pro'))
    throw new CliError('user plan needs --user <name> --plan free|pro');
  const plan = v.plan;
  const userName = v.user;
  await withStorage(dataDirOf(v), async (s) => {
    const user = await s.findUserByName(userName);
    if (!user) throw new CliError(`no user named ${userName}`);
    await s.setUserPlan(user.id, plan);
  });
  say(`rigbox: user ${userName} is now on the ${plan} plan`);
}

async function auditVerify(args: string[]) {
  const v = parse(args, {});
  const dataDir = dataDirOf(v);
  const keyring = loadKeyring({ env: process.env, dataDir, warn: say });
  const result = await withStorage(dataDir, async (s) =>
    verifyStoredChains(s, await AiConfigs.auditChain(s, new Envelopes(keyring))),
  );
  if (result.broken) throw new CliError(describeBrokenLink(result));
  say(`rigbox: ${describeBrokenLink(result)}`);
}

async function execCommand(args: string[]) {
  const split = args.indexOf('--');
  const own = split === -1 ? args : args.slice(0, split);
  const command = split === -1 ? [] : args.slice(split + 1);
  let values: { workspace?: string | undefined };
  try {
    values = parseArgs({ args: own, options: { workspace: { type: 'string' } }, strict: true }).values;
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`);
  }
  if (!values.workspace) throw new CliError('exec needs --workspace <id>');
  process.exitCode = await exec(values.workspace, command);
}

export async function main(argv: string[]): Promise<void> {
  const [a, b, ...rest] = argv;
  try {
    if (a === 'serve') return await serve([b, ...rest].filter((x): x is string => x !== undefined));
    if (a === 'token' && b === 'create') return await tokenCreate(rest);
    if (a === 'kek' && b === 'rotate') return await kekRotate(rest);
    if (a === 'user' && b === 'plan') return await userPlan(rest);
    if (a === 'audit' && b === 'verify') return await auditVerify(rest);
    if (a === 'exec') return await execCommand(argv.slice(1));
    if (a === undefined || a === '--help' || a === '-h' || a === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    throw new CliError(`unknown command: ${[a, b].filter(Boolean).join(' ')}\n${USAGE}`);
  } catch (err) {
    // Our own errors are written for the user; anything else is reported by its message alone.
    const known =
      err instanceof CliError ||
      err instanceof KeyringError ||
      err instanceof ExecError ||
      err instanceof ConfigError;
    const message = known ? (err as Error).message : `unexpected failure: ${(err as Error).message}`;
    say(`rigbox: error: ${message}`);
    process.exitCode = 1;
  }
}
