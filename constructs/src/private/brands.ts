import type { IConstruct } from 'constructs';

// Brands instead of `instanceof`: an app can load two copies of this library (one per
// node_modules folder), and the jsii runtime hands the same objects to every language.

const AI_CONFIG = Symbol.for('@rigbox/cdktf-constructs.AiConfigResource');
const BYOK_POLICY = Symbol.for('@rigbox/cdktf-constructs.ByokPolicy');

export function brand(target: object, kind: 'ai-config' | 'byok-policy'): void {
  Object.defineProperty(target, kind === 'ai-config' ? AI_CONFIG : BYOK_POLICY, { value: true });
}

export function hasBrand(x: unknown, kind: 'ai-config' | 'byok-policy'): boolean {
  return x !== null && typeof x === 'object' && (kind === 'ai-config' ? AI_CONFIG : BYOK_POLICY) in x;
}

/** What the resources need of a policy, without importing it (it imports them). */
export interface PolicyLike {
  visit(node: IConstruct): void;
}
