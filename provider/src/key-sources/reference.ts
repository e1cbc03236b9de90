import { KeySourceError } from './errors.js';

/**
 * Where a workspace's API key lives. The reference is config; the key itself is read only at apply
 * time. Vault paths are logical KV v2 paths (`app/openai`), without the API's `data/` segment.
 */
export type KeySourceRef =
  | { kind: 'vault'; mount: string; path: string; field: string; version?: number }
  | { kind: 'ssm'; name: string; version?: number; label?: string };

export type VaultRef = Extract<KeySourceRef, { kind: 'vault' }>;
export type SsmRef = Extract<KeySourceRef, { kind: 'ssm' }>;

const trimSlashes = (s: string) => s.replace(/^\/+|\/+$/g, '');

/** The Vault reference with leading and trailing slashes dropped from mount and path. */
export function normalizeVaultRef(ref: VaultRef): VaultRef {
  return { ...ref, mount: trimSlashes(ref.mount), path: trimSlashes(ref.path) };
}

/** A printable form of the reference, safe for messages and logs: it never holds a key. */
export function describeRef(ref: KeySourceRef): string {
  if (ref.kind === 'vault') {
    const { mount, path, field, version } = normalizeVaultRef(ref);
    return `vault://${mount}/${path}#${field}${version === undefined ? '' : `?version=${version}`}`;
  }
  const selector =
    ref.version !== undefined ? `:${ref.version}` : ref.label !== undefined ? `:${ref.label}` : '';
  return `ssm:${ref.name}${selector}`;
}

// A segment is sent as one URL path segment; '.' and '..' would be folded by URL parsing and could
// reach another Vault endpoint, '?' and '#' would end the path.
function badVaultSegment(value: string): string | undefined {
  for (const segment of value.split('/')) {
    if (segment === '') return 'has an empty segment ("//")';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
    if (/[?#\u0000-\u001f\u007f]/.test(segment)) return 'contains "?", "#" or a control character';
  }
  return undefined;
}

function hasKvDataSegment(path: string): boolean {
  return path === 'data' || path.startsWith('data/') || path.includes('/data/');
}

function kvDataMessage(mount: string, path: string): string {
  const logical =
    path === 'data' ? '' : path.startsWith('data/') ? path.slice(5) : path.replace('/data/', '/');
  return (
    `Vault path "${path}" contains the KV v2 API's "data/" segment; a reference takes the logical ` +
    `path without it (mount "${mount}", path "${logical}"), as in \`vault kv get -mount=${mount} ${logical}\``
  );
}

function validVersion(version: number | undefined): boolean {
  return version === undefined || (Number.isSafeInteger(version) && version >= 1);
}

const ssmArn = /^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/(.+)$/;
const ssmNameChars = /^[A-Za-z0-9_.\-/]+$/;
const ssmLabel = /^[A-Za-z_.-][A-Za-z0-9_.-]{0,99}$/;
const awsReservedPrefix = /^(aws|ssm)/i;

function validateSsmName(name: string): string | undefined {
  if (name.trim() === '') return 'SSM parameter name is empty';
  if (name.length > 2048) return 'SSM parameter name is longer than 2048 characters';
  const arn = ssmArn.exec(name);
  if (name.startsWith('arn:') && arn === null) {
    return `"${name}" is not an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)`;
  }
  const bare = arn === null ? name : `/${arn[1]}`;
  if (bare.includes(':')) {
    return `SSM parameter name "${name}" contains ":"; give a version or label in "version" or "label", not in the name`;
  }
  if (!ssmNameChars.test(bare)) {
    return `SSM parameter name "${name}" may only contain letters, digits and "_", ".", "-", "/"`;
  }
  if (arn === null && name.includes('/') && !name.startsWith('/')) {
    return `SSM parameter name "${name}" is hierarchical and must begin with "/"`;
  }
  if (bare.includes('//')) return `SSM parameter name "${name}" has an empty path segment ("//")`;
  return undefined;
}

/**
 * A human message for a reference that is wrong by itself (empty parts, the KV v2 `data/` segment
 * in a Vault path, a malformed SSM name or label, a version below 1, both version and label), or
 * undefined when it looks right. It does not say whether the source exists.
 */
export function validateRef(ref: KeySourceRef): string | undefined {
  if (ref.kind === 'vault') {
    const { mount, path, field, version } = normalizeVaultRef(ref);
    if (mount === '') return 'Vault mount is empty';
    if (path === '') return 'Vault path is empty';
    if (field.trim() === '') return 'Vault field is empty';
    const badMount = badVaultSegment(mount);
    if (badMount !== undefined) return `Vault mount "${mount}" ${badMount}`;
    const badPath = badVaultSegment(path);
    if (badPath !== undefined) return `Vault path "${path}" ${badPath}`;
    if (hasKvDataSegment(path)) return kvDataMessage(mount, path);
    if (!validVersion(version)) return `Vault version must be a whole number of at least 1, not ${version}`;
    return undefined;
  }
  const badName = validateSsmName(ref.name);
  if (badName !== undefined) return badName;
  if (!validVersion(ref.version))
    return `SSM version must be a whole number of at least 1, not ${ref.version}`;
  if (ref.version !== undefined && ref.label !== undefined) {
    return 'give either an SSM version or an SSM label, not both';
  }
  if (ref.label !== undefined) {
    if (!ssmLabel.test(ref.label)) {
      return (
        `SSM label "${ref.label}" must be 1 to 100 letters, digits, "_", "." or "-" and must not begin ` +
        'with a digit'
      );
    }
    if (awsReservedPrefix.test(ref.label))
      return `SSM label "${ref.label}" must not begin with "aws" or "ssm"`;
  }
  return undefined;
}

/**
 * Parses `vault://<mount>/<path>#<field>`, optionally with `?version=<n>` before the `#` or after the
 * field. The mount is the first segment, so a nested mount (`team/kv`) needs the long form.
 */
export function parseVaultShorthand(s: string): KeySourceRef {
  const refuse = (message: string): never => {
    throw new KeySourceError('invalid_reference', s, `Invalid Vault reference "${s}": ${message}`);
  };
  const prefix = 'vault://';
  if (!s.startsWith(prefix)) refuse('it must begin with "vault://", as in vault://secret/app/openai#api_key');
  const hash = s.indexOf('#');
  if (hash < 0) refuse('it names no field: add "#<field>", as in vault://secret/app/openai#api_key');
  let location = s.slice(prefix.length, hash);
  let field = s.slice(hash + 1);
  let query: string | undefined;
  for (const part of ['location', 'field'] as const) {
    const text = part === 'location' ? location : field;
    const q = text.indexOf('?');
    if (q < 0) continue;
    if (query !== undefined) refuse('it has more than one "?"');
    query = text.slice(q + 1);
    if (part === 'location') location = text.slice(0, q);
    else field = text.slice(0, q);
  }
  let version: number | undefined;
  if (query !== undefined) {
    const match = /^version=(\d+)$/.exec(query);
    if (match === null) refuse(`"?${query}" is not understood; the only option is "?version=<n>"`);
    version = Number(match?.[1]);
  }
  const trimmed = trimSlashes(location);
  const slash = trimmed.indexOf('/');
  if (slash < 0) refuse('it needs a mount and a path, as in vault://secret/app/openai#api_key');
  const ref: KeySourceRef = {
    kind: 'vault',
    mount: trimmed.slice(0, slash),
    path: trimmed.slice(slash + 1),
    field,
    ...(version === undefined ? {} : { version }),
  };
  const problem = validateRef(ref);
  if (problem !== undefined) refuse(problem);
  return ref;
}
