/**
 * The rules of a key reference, one set for every place that checks one: the construct library at
 * synth time, the Terraform provider at plan time (and before it reads a key), the policy's path
 * prefixes. A reference names where a key lives (a Vault KV v2 field, an SSM parameter), never the
 * key. Each check returns a message naming the rule, or undefined when the reference looks right;
 * none says whether the source exists.
 */
export interface VaultReference {
  readonly mount: string;
  /** The logical KV v2 path, without the API's `data/` segment. */
  readonly path: string;
  readonly field: string;
  readonly version?: number | undefined;
}

export interface SsmReference {
  /** A parameter name or ARN. */
  readonly name: string;
  readonly version?: number | undefined;
  readonly label?: string | undefined;
}

/**
 * Whether a value is known now. At synth time a value may be a token, resolved only at plan time,
 * where the Terraform provider checks it again with these same rules: such values pass here.
 */
export type IsKnown = (value: unknown) => boolean;
const always: IsKnown = () => true;

export const trimSlashes = (s: string): string => s.replace(/^\/+|\/+$/g, '');

/** Mount and path with leading and trailing slashes dropped, as the provider reads them. */
export function vaultLocation(mount: string, path: string): string {
  return `${trimSlashes(mount)}/${trimSlashes(path)}`;
}

// A segment travels as one URL path segment: "." and ".." would be folded by URL parsing and could
// reach another Vault endpoint (and slip past a policy's path prefix); "?" and "#" would end it.
function badSegment(value: string): string | undefined {
  for (const segment of value.split('/')) {
    if (segment === '') return 'has an empty segment ("//")';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (/[?#\u0000-\u001f\u007f]/.test(segment)) return 'contains "?", "#" or a control character';
  }
  return undefined;
}

function checkVersion(what: string, version: number | undefined, known: IsKnown): string | undefined {
  if (version === undefined || !known(version)) return undefined;
  if (Number.isSafeInteger(version) && version >= 1) return undefined;
  return `${what} version must be a whole number of at least 1, not ${version}`;
}

function kvDataMessage(path: string, mount: string): string {
  // "secret/data/x" with mount "secret" is the API path with the mount in front: drop both.
  const logical = path.startsWith(`${mount}/data/`)
    ? path.slice(mount.length + 6)
    : path === 'data'
      ? ''
      : path.startsWith('data/')
        ? path.slice(5)
        : path.replace('/data/', '/');
  return (
    `Vault path "${path}" contains the KV v2 API's "data/" segment. A reference names the ` +
    `logical path without it (mount "${mount}", path "${logical}"), as in ` +
    `\`vault kv get -mount=${mount} ${logical}\`; the provider adds "data/" and "metadata/" itself.`
  );
}

export function checkVaultReference(ref: VaultReference, known: IsKnown = always): string | undefined {
  const { mount, path, field, version } = ref;
  if (known(mount)) {
    const m = trimSlashes(mount);
    if (m === '') return 'Vault mount is empty';
    const bad = badSegment(m);
    if (bad) return `Vault mount "${m}" ${bad}`;
  }
  if (known(path)) {
    const p = trimSlashes(path);
    if (p === '') return 'Vault path is empty';
    const bad = badSegment(p);
    if (bad) return `Vault path "${p}" ${bad}`;
    if (p === 'data' || p.startsWith('data/') || p.includes('/data/')) {
      return kvDataMessage(p, known(mount) ? trimSlashes(mount) : '<mount>');
    }
  }
  if (known(field) && field.trim() === '') return 'Vault field is empty';
  return checkVersion('Vault', version, known);
}

const SSM_ARN = /^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/(.+)$/;
const SSM_NAME_CHARS = /^[A-Za-z0-9_.\-/]+$/;
const SSM_LABEL = /^[A-Za-z_.-][A-Za-z0-9_.-]{0,99}$/;

export function checkSsmReference(ref: SsmReference, known: IsKnown = always): string | undefined {
  const { name, version, label } = ref;
  if (known(name)) {
    if (name.trim() === '') return 'SSM parameter name is empty';
    if (name.length > 2048) return 'SSM parameter name is longer than 2048 characters';
    const arn = SSM_ARN.exec(name);
    if (name.startsWith('arn:') && arn === null) {
      return `"${name}" is not an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)`;
    }
    const bare = arn === null ? name : `/${arn[1]}`;
    if (bare.includes(':')) {
      return `SSM parameter name "${name}" contains ":"; give a version or label in "version" or "label", not in the name`;
    }
    if (!SSM_NAME_CHARS.test(bare)) {
      return `SSM parameter name "${name}" may only contain letters, digits and "_", ".", "-", "/"`;
    }
    if (arn === null && name.includes('/') && !name.startsWith('/')) {
      return `SSM parameter name "${name}" is hierarchical and must begin with "/"`;
    }
    if (bare.includes('//')) return `SSM parameter name "${name}" has an empty path segment ("//")`;
  }
  const badVersion = checkVersion('SSM', version, known);
  if (badVersion) return badVersion;
  if (version !== undefined && label !== undefined)
    return 'give either an SSM version or an SSM label, not both';
  if (label !== undefined && known(label)) {
    if (!SSM_LABEL.test(label)) {
      return `SSM label "${label}" must be 1 to 100 letters, digits, "_", "." or "-" and must not begin with a digit`;
    }
    if (/^(aws|ssm)/i.test(label)) return `SSM label "${label}" must not begin with "aws" or "ssm"`;
  }
  return undefined;
}
