/**
 * Diagnostics, the protocol's way to report a problem. At the boundary we return them and never
 * throw: a short title-case summary, a detail naming the actual value (never a secret), and the
 * attribute path when one attribute is to blame.
 */
export interface Diagnostic {
  severity: 'error' | 'warning';
  summary: string;
  detail: string;
  /** Attribute path steps: names, or list indexes. */
  path?: readonly (string | number)[];
}

export const error = (summary: string, detail: string, path?: readonly (string | number)[]): Diagnostic => ({
  severity: 'error',
  summary,
  detail,
  ...(path ? { path } : {}),
});

export const warning = (
  summary: string,
  detail: string,
  path?: readonly (string | number)[],
): Diagnostic => ({
  severity: 'warning',
  summary,
  detail,
  ...(path ? { path } : {}),
});

export const hasError = (diags: readonly Diagnostic[]) => diags.some((d) => d.severity === 'error');

export function toProtoDiagnostic(d: Diagnostic) {
  return {
    severity: d.severity === 'error' ? 1 : 2,
    summary: d.summary,
    detail: d.detail,
    ...(d.path
      ? {
          attribute: {
            steps: d.path.map((s) => (typeof s === 'number' ? { elementKeyInt: s } : { attributeName: s })),
          },
        }
      : {}),
  };
}
