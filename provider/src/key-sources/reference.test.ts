import { describe, expect, it } from 'vitest';
import {
  describeRef,
  KeySourceError,
  type KeySourceRef,
  openKeySource,
  parseVaultShorthand,
  validateRef,
} from './index.js';

function refusal(parse: () => unknown): KeySourceError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(KeySourceError);
    expect((error as KeySourceError).kind).toBe('invalid_reference');
    return error as KeySourceError;
  }
  throw new Error('expected the reference to be refused');
}

describe('parseVaultShorthand', () => {
  it('splits mount, logical path and field', () => {
    expect(parseVaultShorthand('vault://secret/app/openai#api_key')).toEqual({
      kind: 'vault',
      mount: 'secret',
      path: 'app/openai',
      field: 'api_key',
    });
  });

  it('takes ?version=N before the # or after the field', () => {
    const pinned = { kind: 'vault', mount: 'secret', path: 'app/openai', field: 'api_key', version: 3 };
    expect(parseVaultShorthand('vault://secret/app/openai?version=3#api_key')).toEqual(pinned);
    expect(parseVaultShorthand('vault://secret/app/openai#api_key?version=3')).toEqual(pinned);
  });

  it('refuses the KV v2 API path and says to drop its data/ segment', () => {
    const error = refusal(() => parseVaultShorthand('vault://secret/data/app/openai#api_key'));
    expect(error.message).toContain('"data/"');
    expect(error.message).toContain('logical path');
    expect(error.message).toContain('path "app/openai"');
    expect(refusal(() => parseVaultShorthand('vault://kv/team/data/openai#k')).message).toContain(
      'path "team/openai"',
    );
  });

  it.each([
    ['no scheme', 'secret/app#k'],
    ['another scheme', 'ssm://secret/app#k'],
    ['no field', 'vault://secret/app/openai'],
    ['an empty field', 'vault://secret/app/openai#'],
    ['no path', 'vault://secret#k'],
    ['an unknown option', 'vault://secret/app?ver=2#k'],
    ['version 0', 'vault://secret/app?version=0#k'],
    ['two queries', 'vault://secret/app?version=1#k?version=2'],
    ['a ".." segment', 'vault://secret/app/../../sys/seal#k'],
    ['an empty segment', 'vault://secret/app//openai#k'],
  ])('refuses %s', (_, shorthand) => {
    const error = refusal(() => parseVaultShorthand(shorthand));
    expect(error.reference).toBe(shorthand);
    expect(error.message).toContain(shorthand);
  });
});

describe('validateRef', () => {
  const vault = (over: Partial<Extract<KeySourceRef, { kind: 'vault' }>>): KeySourceRef => ({
    kind: 'vault',
    mount: 'secret',
    path: 'app/openai',
    field: 'api_key',
    ...over,
  });
  const ssm = (over: Partial<Extract<KeySourceRef, { kind: 'ssm' }>>): KeySourceRef => ({
    kind: 'ssm',
    name: '/rigbox/openai',
    ...over,
  });

  it('accepts well-formed references', () => {
    for (const ref of [
      vault({}),
      vault({ mount: 'team/kv/', path: '/app/openai/', version: 2 }),
      ssm({}),
      ssm({ name: 'plain_name', version: 4 }),
      ssm({ label: 'prod' }),
      ssm({ name: 'arn:aws:ssm:eu-west-1:123456789012:parameter/rigbox/openai' }),
    ]) {
      expect(validateRef(ref), describeRef(ref)).toBeUndefined();
    }
  });

  it.each([
    ['an empty mount', vault({ mount: '/' }), 'mount is empty'],
    ['an empty path', vault({ path: '' }), 'path is empty'],
    ['an empty field', vault({ field: ' ' }), 'field is empty'],
    ['a data/ segment', vault({ path: 'data/app/openai' }), '"data/"'],
    ['a /data/ segment', vault({ path: 'app/data/openai' }), '"data/"'],
    ['version 0', vault({ version: 0 }), 'at least 1'],
    ['a fractional version', vault({ version: 1.5 }), 'at least 1'],
    ['an empty SSM name', ssm({ name: '' }), 'empty'],
    ['a selector in the SSM name', ssm({ name: '/rigbox/openai:3' }), '"version" or "label"'],
    ['a space in the SSM name', ssm({ name: '/rigbox/open ai' }), 'may only contain'],
    ['a hierarchy without a leading /', ssm({ name: 'rigbox/openai' }), 'must begin with "/"'],
    ['a malformed ARN', ssm({ name: 'arn:aws:s3:::bucket' }), 'not an SSM parameter ARN'],
    ['SSM version 0', ssm({ version: 0 }), 'at least 1'],
    ['both version and label', ssm({ version: 2, label: 'prod' }), 'not both'],
    ['a label beginning with a digit', ssm({ label: '1prod' }), 'must not begin with a digit'],
    ['a reserved label', ssm({ label: 'aws-prod' }), '"aws" or "ssm"'],
  ])('refuses %s', (_, ref, expected) => {
    expect(validateRef(ref)).toContain(expected);
  });
});

describe('describeRef', () => {
  it('prints references without any value', () => {
    expect(
      describeRef({ kind: 'vault', mount: 'secret/', path: '/app/openai', field: 'k', version: 2 }),
    ).toBe('vault://secret/app/openai#k?version=2');
    expect(describeRef({ kind: 'ssm', name: '/rigbox/openai', label: 'prod' })).toBe(
      'ssm:/rigbox/openai:prod',
    );
    expect(describeRef({ kind: 'ssm', name: '/rigbox/openai', version: 3 })).toBe('ssm:/rigbox/openai:3');
  });
});

describe('openKeySource', () => {
  it('refuses a malformed reference before any request', () => {
    const error = refusal(() =>
      openKeySource(
        { kind: 'vault', mount: 'secret', path: 'data/app', field: 'k' },
        { vault: { address: 'http://127.0.0.1:1', token: 't' } },
      ),
    );
    expect(error.reference).toBe('vault://secret/data/app#k');
  });

  it('refuses a Vault reference without Vault settings', () => {
    const error = refusal(() =>
      openKeySource({ kind: 'vault', mount: 'secret', path: 'app', field: 'k' }, {}),
    );
    expect(error.message).toContain('Vault address');
  });
});
