import { booleanToHclTerraform, numberToHclTerraform, stringToHclTerraform } from 'cdktf';

// The attribute shapes cdktf's HCL renderer (`cdktf synth --hcl`) expects, as its generated
// providers emit them.

export interface HclAttribute {
  readonly value: unknown;
  readonly isBlock: boolean;
  readonly type: string;
  readonly storageClassType: string;
}

export const hclString = (value: string | undefined): HclAttribute => ({
  value: stringToHclTerraform(value),
  isBlock: false,
  type: 'simple',
  storageClassType: 'string',
});

export const hclNumber = (value: number | undefined): HclAttribute => ({
  value: numberToHclTerraform(value),
  isBlock: false,
  type: 'simple',
  storageClassType: 'number',
});

export const hclBoolean = (value: boolean | undefined): HclAttribute => ({
  value: booleanToHclTerraform(value),
  isBlock: false,
  type: 'simple',
  storageClassType: 'boolean',
});

/** A nested block with nesting mode "single". */
export const hclBlock = (attrs: Record<string, HclAttribute> | undefined): HclAttribute => ({
  value: attrs === undefined ? undefined : withoutUndefined(attrs),
  isBlock: true,
  type: 'struct',
  storageClassType: 'struct',
});

/** Drops attributes whose value is undefined, as cdktf's generated providers do. */
export function withoutUndefined(attrs: Record<string, HclAttribute>): Record<string, HclAttribute> {
  return Object.fromEntries(Object.entries(attrs).filter(([, v]) => v.value !== undefined));
}
