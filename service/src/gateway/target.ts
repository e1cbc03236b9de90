/**
 * The gateway's request target, taken apart segment by segment from the raw request line.
 *
 * The upstream path is rebuilt from validated segments, never cut out of a string: a cut by
 * length on a normalised URL let dot segments and percent-encoding move the cut, so a caller could
 * choose what followed the upstream's base path (and, behind a proxy or a path-scoped upstream,
 * where the workspace's or the platform's key went). Anything that could change the meaning of a
 * path between here and the upstream is refused before auth or credits: `.` and `..` (literal or
 * encoded), an encoded `/` or `\`, empty segments, characters a path may not hold, absolute-form
 * targets.
 */
export interface GatewayTarget {
  /** The provider name as decoded (matched exactly against the configured upstreams). */
  readonly provider: string;
  /** The workspace segment of `/gateway/{provider}/w/{workspace}/...`, when present. */
  readonly workspace: string | undefined;
  /** The rest of the path, `/`-prefixed, each segment as the caller encoded it (validated). */
  readonly path: string;
  /** The query as parsed parameters; re-serialised on the way out, never passed through raw. */
  readonly query: URLSearchParams;
}

export class GatewayTargetError extends Error {}

/**
 * A path segment (RFC 3986 pchar: unreserved, percent-encoded, sub-delims, ':' and '@'), less ';'
 * (literal or encoded, below): some servers cut a segment at ';' (`..;` is `..` to Tomcat and
 * Spring), and no provider API uses it.
 */
const PCHAR = /^(?:[A-Za-z0-9\-._~!$&'()*+,=:@]|%[0-9A-Fa-f]{2})*$/;
const WORKSPACE_ID = /^[A-Za-z0-9_-]{1,64}$/;

function decodeSegment(raw: string): string {
  if (!PCHAR.test(raw)) throw new GatewayTargetError('the path holds a character a URL path may not');
  const decoded = decodeURIComponent(raw);
  // Compatibility forms too: a full-width dot or solidus becomes one after NFKC, as some servers apply it.
  const folded = decoded.normalize('NFKC');
  if (decoded === '.' || decoded === '..' || folded === '.' || folded === '..') {
    throw new GatewayTargetError('dot segments (., ..) are not allowed in gateway paths');
  }
  if (folded.includes(';')) throw new GatewayTargetError('";" is not allowed in gateway paths');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[/\\\u0000-\u001f\u007f]/.test(folded)) {
    throw new GatewayTargetError(
      'an encoded slash, backslash or control character is not allowed in gateway paths',
    );
  }
  return decoded;
}

/**
 * Parses `/gateway/{provider}[/w/{workspace}]/{rest}?{query}` as it came on the request line.
 * Throws GatewayTargetError with a message that quotes nothing of the request.
 */
export function parseGatewayTarget(requestTarget: string): GatewayTarget {
  if (!requestTarget.startsWith('/')) {
    throw new GatewayTargetError('the request target must be a path (origin-form)');
  }
  const q = requestTarget.indexOf('?');
  const rawPath = q === -1 ? requestTarget : requestTarget.slice(0, q);
  const rawQuery = q === -1 ? '' : requestTarget.slice(q + 1);
  const segments = rawPath.split('/').slice(1);
  if (segments[0] !== 'gateway') throw new GatewayTargetError('not a gateway path');
  // A trailing slash is meaningful to some APIs; any other empty segment is refused.
  const last = segments.length - 1;
  for (let i = 1; i < segments.length; i++) {
    if (segments[i] === '' && i !== last) throw new GatewayTargetError('empty path segments are not allowed');
  }
  let decoded: string[];
  try {
    decoded = segments.map((s, i) => (i === 0 ? s : decodeSegment(s)));
  } catch (err) {
    if (err instanceof GatewayTargetError) throw err;
    throw new GatewayTargetError('the path holds malformed percent-encoding');
  }
  const provider = decoded[1] ?? '';
  if (provider === '') throw new GatewayTargetError('the gateway path names no provider');
  let restFrom = 2;
  let workspace: string | undefined;
  if (decoded[2] === 'w' && segments.length > 3) {
    workspace = decoded[3];
    if (workspace === undefined || !WORKSPACE_ID.test(workspace)) {
      throw new GatewayTargetError('the workspace segment is not a workspace id');
    }
    restFrom = 4;
  }
  const rest = segments.slice(restFrom);
  let query: URLSearchParams;
  try {
    // URLSearchParams replaces malformed escapes rather than throwing; check them first so a
    // parameter never reaches the upstream in a form other than the one the caller meant.
    decodeURIComponent(rawQuery.replace(/\+/g, ' '));
    query = new URLSearchParams(rawQuery);
  } catch {
    throw new GatewayTargetError('the query string holds malformed percent-encoding');
  }
  return { provider, workspace, path: `/${rest.join('/')}`, query };
}
