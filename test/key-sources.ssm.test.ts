import { createServer, type Server, type Socket } from 'node:net';
import {
  AccessDeniedException,
  LabelParameterVersionCommand,
  PutParameterCommand,
  SSMClient,
  type SSMClientConfig,
  ThrottlingException,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type KeySourceRef, openKeySource, type SsmSettings } from '../provider/src/key-sources/index.js';
import { type MotoEngine, startMoto } from './engines/moto.js';
import { freePort } from './engines/ports.js';
import { keySourceFailures } from './support/key-source-failures.js';

// A key that must never show up in an error message or in moto's own output.
const { canary, errorTexts, expectFailure } = keySourceFailures();

const ssmRef = (name: string, selector: { version?: number; label?: string } = {}): KeySourceRef => ({
  kind: 'ssm',
  name,
  ...selector,
});

/** An SDK client that records the name of every command our code sends through it. */
function recordingClient(config: SSMClientConfig): {
  client: SSMClient;
  commands: string[];
} {
  const client = new SSMClient(config);
  const commands: string[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      commands.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'initialize', name: 'recordCommandNames' },
  );
  return { client, commands };
}

/**
 * A client whose first `failures` sends throw `error` before anything goes on the wire (so the
 * SDK's own retries do not see it): a unit test of our retry loop and error mapping.
 */
function failingClient(engine: MotoEngine, error: () => Error, failures: number) {
  const { client, commands } = recordingClient({ ...engineConfig(engine), maxAttempts: 1 });
  let failed = 0;
  client.middlewareStack.add(
    (next) => (args) => {
      if (failed < failures) {
        failed++;
        throw error();
      }
      return next(args);
    },
    { step: 'initialize', name: 'failBeforeSending' },
  );
  return { client, commands };
}

const engineConfig = (engine: MotoEngine) => ({
  region: engine.region,
  endpoint: engine.endpoint,
  credentials: engine.credentials,
});

describe('SSM key source against a real moto server', () => {
  let moto: MotoEngine;
  let admin: SSMClient;
  let arn: string;

  const put = async (name: string, value: string) => {
    const out = await admin.send(
      new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString', Overwrite: true }),
    );
    return out.Version;
  };

  beforeAll(async () => {
    moto = await startMoto();
    admin = new SSMClient(engineConfig(moto));
  });

  beforeEach(async () => {
    await moto.reset();
    await put('/rigbox/openai', canary);
    arn = `arn:aws:ssm:${moto.region}:123456789012:parameter/rigbox/openai`;
  });

  afterAll(async () => {
    admin?.destroy();
    await moto?.stop();
    for (const text of errorTexts) expect(text).not.toContain(canary);
    expect(moto.output()).not.toContain(canary);
  });

  it('reads a SecureString decrypted, with its version, by name and by ARN', async () => {
    const settings: SsmSettings = engineConfig(moto);
    const byName = openKeySource(ssmRef('/rigbox/openai'), { ssm: settings });
    expect(byName.describe()).toBe('ssm:/rigbox/openai');
    await expect(byName.readValue()).resolves.toEqual({ value: canary, version: '1' });
    await expect(openKeySource(ssmRef(arn), { ssm: settings }).readValue()).resolves.toEqual({
      value: canary,
      version: '1',
    });
  });

  it('answers readVersion from DescribeParameters, never GetParameter', async () => {
    const { client, commands } = recordingClient(engineConfig(moto));
    const source = openKeySource(ssmRef('/rigbox/openai'), { ssm: { client } });
    await expect(source.readVersion()).resolves.toBe('1');
    expect(commands).toEqual(['DescribeParametersCommand']);
  });

  it('sees a rotation in readVersion and reads the new value', async () => {
    const { client, commands } = recordingClient(engineConfig(moto));
    const source = openKeySource(ssmRef('/rigbox/openai'), { ssm: { client } });
    await expect(source.readVersion()).resolves.toBe('1');
    await put('/rigbox/openai', 'rotated');
    await expect(source.readVersion()).resolves.toBe('2');
    expect(commands).not.toContain('GetParameterCommand');
    await expect(source.readValue()).resolves.toEqual({ value: 'rotated', version: '2' });
  });

  it('reads a pinned version and checks it exists from the history, without values', async () => {
    await put('/rigbox/openai', 'rotated');
    const { client, commands } = recordingClient(engineConfig(moto));
    const pinned = openKeySource(ssmRef('/rigbox/openai', { version: 1 }), { ssm: { client } });
    await expect(pinned.readVersion()).resolves.toBe('1');
    expect(commands).toEqual(['GetParameterHistoryCommand']);
    await expect(pinned.readValue()).resolves.toEqual({ value: canary, version: '1' });

    const missing = openKeySource(ssmRef('/rigbox/openai', { version: 9 }), { ssm: { client } });
    await expectFailure(missing.readValue(), 'not_found');
    expect((await expectFailure(missing.readVersion(), 'not_found')).message).toContain('version 9');
  });

  it('follows a label to the version it points at', async () => {
    await put('/rigbox/openai', 'rotated');
    await admin.send(
      new LabelParameterVersionCommand({ Name: '/rigbox/openai', ParameterVersion: 1, Labels: ['prod'] }),
    );
    const { client, commands } = recordingClient(engineConfig(moto));
    const labelled = openKeySource(ssmRef('/rigbox/openai', { label: 'prod' }), { ssm: { client } });
    await expect(labelled.readVersion()).resolves.toBe('1');
    expect(commands).toEqual(['GetParameterHistoryCommand']);
    await expect(labelled.readValue()).resolves.toEqual({ value: canary, version: '1' });

    const unknown = openKeySource(ssmRef('/rigbox/openai', { label: 'staging' }), { ssm: { client } });
    expect((await expectFailure(unknown.readVersion(), 'not_found')).message).toContain('"staging"');
    await expectFailure(unknown.readValue(), 'not_found');
  });

  it('reports a missing parameter as not_found', async () => {
    const source = openKeySource(ssmRef('/rigbox/nothing-here'), { ssm: engineConfig(moto) });
    const error = await expectFailure(source.readValue(), 'not_found');
    expect(error.message).toContain('ssm:/rigbox/nothing-here');
    expect(error.reference).toBe('ssm:/rigbox/nothing-here');
    await expectFailure(source.readVersion(), 'not_found');
  });

  it('retries a throttled request with backoff, then succeeds', async () => {
    const throttle = () =>
      new ThrottlingException({
        Message: 'Rate exceeded',
        message: 'Rate exceeded',
        $metadata: { httpStatusCode: 400 },
      });
    const { client, commands } = failingClient(moto, throttle, 2);
    const source = openKeySource(ssmRef('/rigbox/openai'), {
      ssm: { client, throttleRetry: { retries: 3, baseDelayMs: 20 } },
    });
    const started = Date.now();
    await expect(source.readValue()).resolves.toEqual({ value: canary, version: '1' });
    // Two waits: 20 ms, then 40 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(commands).toEqual(['GetParameterCommand', 'GetParameterCommand', 'GetParameterCommand']);
  });

  it('reports throttled once the bounded retries run out', async () => {
    const throttle = () =>
      new ThrottlingException({
        Message: 'Rate exceeded',
        message: 'Rate exceeded',
        $metadata: { httpStatusCode: 400 },
      });
    const { client, commands } = failingClient(moto, throttle, 100);
    const source = openKeySource(ssmRef('/rigbox/openai'), {
      ssm: { client, throttleRetry: { retries: 2, baseDelayMs: 5 } },
    });
    const error = await expectFailure(source.readVersion(), 'throttled');
    expect(error.message).toContain('DescribeParameters');
    expect(commands).toHaveLength(3);
  });

  it('maps AccessDeniedException to permission_denied without retrying', async () => {
    const deny = () =>
      new AccessDeniedException({
        Message: 'not authorized to perform ssm:GetParameter',
        message: 'not authorized to perform ssm:GetParameter',
        $metadata: { httpStatusCode: 400 },
      });
    const { client, commands } = failingClient(moto, deny, 1);
    const source = openKeySource(ssmRef('/rigbox/openai'), { ssm: { client } });
    expect((await expectFailure(source.readValue(), 'permission_denied')).message).toContain(
      'AccessDeniedException',
    );
    expect(commands).toHaveLength(1);
  });
});

describe('SSM key source when SSM cannot answer', () => {
  let silent: Server;
  const sockets = new Set<Socket>();
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

  beforeAll(async () => {
    // Accepts connections and never answers.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('reports a closed port as unreachable', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const source = openKeySource(ssmRef('/rigbox/openai'), {
      ssm: { region: 'us-east-1', endpoint, credentials, maxAttempts: 1 },
    });
    expect((await expectFailure(source.readValue(), 'unreachable')).message).toContain('ECONNREFUSED');
    await expectFailure(source.readVersion(), 'unreachable');
  });

  it('gives up after timeoutMs on an endpoint that never answers', async () => {
    const port = (silent.address() as { port: number }).port;
    const source = openKeySource(ssmRef('/rigbox/openai'), {
      ssm: { region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, credentials, timeoutMs: 300 },
    });
    const started = Date.now();
    expect((await expectFailure(source.readValue(), 'timeout')).message).toContain('300 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
    await expectFailure(source.readVersion(), 'timeout');
  });
});
