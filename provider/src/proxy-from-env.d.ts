// proxy-from-env ships no types.
declare module 'proxy-from-env' {
  /** The proxy URL the environment names for `url` (`*_PROXY`, `ALL_PROXY`, `NO_PROXY`), or '' for none. */
  export function getProxyForUrl(url: string | URL): string;
}
