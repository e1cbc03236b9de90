import { checkSsmReference, checkVaultReference, trimSlashes } from '@rigbox/catalog';
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

/**
 * A human message for a reference that is wrong by itself (empty parts, the KV v2 `data/` segment
 * in a Vault path, a malformed SSM name or label, a version below 1, both version and label), or
 * undefined when it looks right. The rules are the catalog's, the same the constructs apply at
 * synth time. It does not say whether the source exists.
 */
export function validateRef(ref: KeySourceRef): string | undefined {
  return ref.kind === 'vault' ? checkVaultReference(ref) : checkSsmReference(ref);
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
