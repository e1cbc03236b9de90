import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The key-encryption keys (KEKs). The first is primary: new data keys are wrapped with it. The
 * others only unwrap, so records wrapped before a rotation keep working until `rigbox kek rotate`
 * re-wraps them.
 */
export interface Kek {
  readonly id: string;
  readonly key: Buffer;
}

export interface KeyringSource {
  /** Where the keys came from, for messages (never the keys). */
  readonly description: string;
  /** A file the keys live in (a rotation may add a key to it), or undefined for the environment. */
  readonly file: string | undefined;
  readonly generated: boolean;
}

export class KeyringError extends Error {}

export function kekId(key: Buffer): string {
  return createHash('sha256').update('rigbox-kek-id').update(key).digest('hex').slice(0, 16);
}

function parseKey(text: string, where: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t))
    key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key?.length !== 32) {
    throw new KeyringError(`${where}: each master key must be 32 bytes, as 64 hex characters or base64`);
  }
  return key;
}

/** Keys are separated by commas or new lines; the first is primary. */
function parseKeys(text: string, where: string): Kek[] {
  const parts = text
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0 && !p.startsWith('#'));
  if (parts.length === 0) throw new KeyringError(`${where} holds no master key`);
  return parts.map((p) => {
    const key = parseKey(p, where);
    return { id: kekId(key), key };
  });
}

/** Identifies one version of a key file: a rotation replaces it by rename (new inode). */
function fileStamp(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return undefined;
  }
}

export class Keyring {
  private keks: Kek[];
  private stamp: string | undefined;

  constructor(
    keks: Kek[],
    readonly source: KeyringSource,
    private readonly reload?: () => Kek[],
    /** A generated key file's text, not yet written (see persist). */
    private pending?: string,
  ) {
    this.keks = keks;
    this.stamp = reload && source.file && !pending ? fileStamp(source.file) : undefined;
  }

  /** Writes a generated dev key file, once the start it was generated for has succeeded. */
  persist(): void {
    const file = this.source.file;
    if (this.pending === undefined || !file) return;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, this.pending, { mode: 0o600, flag: 'wx' });
    this.pending = undefined;
    this.stamp = fileStamp(file);
  }

  /**
   * Re-reads a key file that changed since it was read. `rigbox kek rotate` puts a new primary
   * into the file while instances keep serving; each must seal with it from its next write on, or
   * the records it writes during the rotation stay wrapped under the old key.
   */
  private refresh(): void {
    if (!this.reload || !this.source.file || this.pending !== undefined) return;
    const stamp = fileStamp(this.source.file);
    if (stamp === undefined || stamp === this.stamp) return;
    try {
      this.keks = this.reload();
      this.stamp = stamp;
    } catch {
      // A file being edited by hand may not parse for a moment; keep serving with the keys we have.
    }
  }

  get primary(): Kek {
    this.refresh();
    const k = this.keks[0];
    if (!k) throw new KeyringError('keyring is empty');
    return k;
  }

  get ids(): string[] {
    this.refresh();
    return this.keks.map((k) => k.id);
  }

  /**
   * Finds a KEK by id. An unknown id re-reads the source once: another process (`rigbox kek
   * rotate`) may have added a key to the file while this one kept serving.
   */
  find(id: string): Kek | undefined {
    const found = this.keks.find((k) => k.id === id);
    if (found || !this.reload || this.pending !== undefined) return found;
    this.keks = this.reload();
    if (this.source.file) this.stamp = fileStamp(this.source.file);
    return this.keks.find((k) => k.id === id);
  }

  /** Adds a new primary key to the key file (rotation). Only for file-backed keyrings. */
  addPrimaryToFile(): Kek {
    this.persist();
    const file = this.source.file;
    if (!file) {
      throw new KeyringError(
        'the master keys come from RIGBOX_MASTER_KEY; put the new key first in it (comma-separated, old keys after) and run rotate again',
      );
    }
    const key = randomBytes(32);
    const current = readFileSync(file, 'utf8');
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${key.toString('hex')}\n${current}`, { mode: 0o600 });
    renameSync(tmp, file);
    const kek = { id: kekId(key), key };
    this.keks = [kek, ...this.keks];
    this.stamp = fileStamp(file);
    return kek;
  }
}

export interface KeyringOptions {
  env: NodeJS.ProcessEnv;
  dataDir: string;
  warn: (message: string) => void;
}

/** RIGBOX_MASTER_KEY, else RIGBOX_MASTER_KEY_FILE, else a generated dev key in the data folder. */
export function loadKeyring({ env, dataDir, warn }: KeyringOptions): Keyring {
  const inline = env.RIGBOX_MASTER_KEY;
  if (inline && inline.trim() !== '') {
    const keks = parseKeys(inline, 'RIGBOX_MASTER_KEY');
    return new Keyring(keks, { description: 'RIGBOX_MASTER_KEY', file: undefined, generated: false });
  }
  const configured = env.RIGBOX_MASTER_KEY_FILE;
  const file = configured && configured.trim() !== '' ? configured : join(dataDir, 'master.key');
  const read = () => parseKeys(readFileSync(file, 'utf8'), file);
  if (!existsSync(file)) {
    if (configured) throw new KeyringError(`RIGBOX_MASTER_KEY_FILE ${configured} does not exist`);
    // Generated in memory and written by persist() once the start has succeeded: a start that
    // fails (say, on a database sealed under another key) must leave no new key file behind.
    const text = `${randomBytes(32).toString('hex')}\n`;
    warnDevKey(warn, file, true);
    return new Keyring(parseKeys(text, file), { description: file, file, generated: true }, read, text);
  }
  chmodSync(file, 0o600);
  if (!configured) warnDevKey(warn, file, false);
  return new Keyring(read(), { description: file, file, generated: false }, read);
}

function warnDevKey(warn: (message: string) => void, file: string, generated: boolean): void {
  warn(
    `WARNING: using the development master key in ${file}${generated ? ' (just generated)' : ''}. ` +
      'Anyone who can read that file can decrypt every stored API key. ' +
      'Set RIGBOX_MASTER_KEY or RIGBOX_MASTER_KEY_FILE in production.',
  );
}
