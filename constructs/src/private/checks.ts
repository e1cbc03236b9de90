import { Token } from 'cdktf';

// Eager checks of values that are wrong by themselves. Each returns a message or undefined, and
// passes any value that holds an unresolved token: it is only known at plan time, where the
// Terraform provider checks it again with the same rules.

export const isToken = (value: unknown): boolean => value !== undefined && Token.isUnresolved(value);

const trimSlashes = (s: string) => s.replace(/^\/+|\/+$/g, '');

/** Mount and path with leading and trailing slashes dropped, as the provider reads them. */
export function vaultLocation(mount: string, path: string): string {
  return `${trimSlashes(mount)}/${trimSlashes(path)}`;
}

// A segment travels as one URL path segment: "." and ".." would be folded by URL parsing and
// could reach another Vault endpoint (and slip past a policy's path prefix); "?" and "#" end it.
function badSegment(value: string): string | undefined {
  for (const segment of value.split('/')) {
    if (segment === '') return 'has an empty segment ("//")';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
    if (/[?#\u0000-\u001f\u007f]/.test(segment)) return 'contains "?", "#" or a control character';
  }
  return undefined;
}

function checkVersion(what: string, version: number | undefined): string | undefined {
  if (version === undefined || isToken(version)) return undefined;
  if (Number.isSafeInteger(version) && version >= 1) return undefined;
  return `${what} version must be a whole number of at least 1, not ${version}`;
}

export function checkVaultReference(
  mount: string,
  path: string,
  field: string,
  version: number | undefined,
): string | undefined {
  if (!isToken(mount)) {
    const m = trimSlashes(mount);
    if (m === '') return 'Vault mount is empty';
    const bad = badSegment(m);
    if (bad) return `Vault mount "${mount}" ${bad}`;
  }
  if (!isToken(path)) {
    const p = trimSlashes(path);
    if (p === '') return 'Vault path is empty';
    const bad = badSegment(p);
    if (bad) return `Vault path "${path}" ${bad}`;
    if (p === 'data' || p.startsWith('data/') || p.includes('/data/')) {
      const shownMount = isToken(mount) ? '<mount>' : trimSlashes(mount);
      // "secret/data/x" with mount "secret" is the API path with the mount in front: drop both.
      const logical = p.startsWith(`${shownMount}/data/`)
        ? p.slice(shownMount.length + 6)
        : p === 'data'
          ? ''
          : p.startsWith('data/')
            ? p.slice(5)
            : p.replace('/data/', '/');
      return (
        `Vault path "${path}" contains the KV v2 API's "data/" segment. A reference names the ` +
        `logical path without it (mount "${shownMount}", path "${logical}"), as in ` +
        `\`vault kv get -mount=${shownMount} ${logical}\`; the provider adds "data/" and "metadata/" itself.`
      );
    }
  }
  if (!isToken(field) && field.trim() === '') return 'Vault field is empty';
  return checkVersion('Vault', version);
}

const SSM_ARN = /^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/(.+)$/;
const SSM_NAME_CHARS = /^[A-Za-z0-9_.\-/]+$/;
const SSM_LABEL = /^[A-Za-z_.-][A-Za-z0-9_.-]{0,99}$/;

export function checkSsmReference(
  name: string,
  version: number | undefined,
  label: string | undefined,
): string | undefined {
  if (!isToken(name)) {
    if (name.trim() === '') return 'SSM parameter name is empty';
    if (name.length > 2048) return 'SSM parameter name is longer than 2048 characters';
    const arn = SSM_ARN.exec(name);
    if (name.startsWith('arn:') && arn === null) {
      return `"${name}" is not an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)`;
    }
    const bare = arn === null ? name : `/${arn[1]}`;
    if (bare.includes(':')) {
      return `SSM parameter name "${name}" contains ":"; give a version or label as \`version\` or \`label\`, not in the name`;
    }
    if (!SSM_NAME_CHARS.test(bare)) {
      return `SSM parameter name "${name}" may only contain letters, digits and "_", ".", "-", "/"`;
    }
    if (arn === null && name.includes('/') && !name.startsWith('/')) {
      return `SSM parameter name "${name}" is hierarchical and must begin with "/"`;
    }
    if (bare.includes('//')) return `SSM parameter name "${name}" has an empty path segment ("//")`;
  }
  const badVersion = checkVersion('SSM', version);
  if (badVersion) return badVersion;
  if (version !== undefined && label !== undefined)
    return 'give either an SSM version or an SSM label, not both';
  if (label !== undefined && !isToken(label)) {
    if (!SSM_LABEL.test(label)) {
      return `SSM label "${label}" must be 1 to 100 letters, digits, "_", "." or "-" and must not begin with a digit`;
    }
    if (/^(aws|ssm)/i.test(label)) return `SSM label "${label}" must not begin with "aws" or "ssm"`;
  }
  return undefined;
}

const MODEL = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

export function checkModel(model: string | undefined): string | undefined {
  if (model === undefined || isToken(model) || MODEL.test(model)) return undefined;
  return `model "${model}" may contain letters, digits and . _ : @ / - only (at most 128 characters)`;
}
