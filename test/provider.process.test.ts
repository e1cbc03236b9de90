/**
 * The built terraform-provider-rigbox as go-plugin starts it: the handshake line, the unix socket
 * it listens on (where go-plugin's own servers listen) and that the socket goes when the process
 * does, the AutoMTLS certificate it presents, and the friendly refusal when run by hand.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  blockType,
  createServerCertificate,
  encodeDynamic,
  providerSchemaAnswer,
  type Value,
} from '@rigbox/tfplugin';
import { decode, encode, PROVIDER_METHODS } from '@rigbox/tfplugin/proto';
import { afterAll, describe, expect, it } from 'vitest';
import { RigboxProvider } from '../provider/src/provider.js';
import { providerExecutable } from './support/provider-build.js';

// What the release archive holds: the single executable (or the plain bundle where none was made).
const BINARY = providerExecutable();
const COOKIE = {
  TF_PLUGIN_MAGIC_COOKIE: 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2',
  PLUGIN_PROTOCOL_VERSIONS: '6',
};
const client = createServerCertificate();
const socketDir = mkdtempSync(join(tmpdir(), 'rigbox-plugin-'));
afterAll(() => rmSync(socketDir, { recursive: true, force: true }));

interface Started {
  child: ChildProcess;
  network: string;
  address: string;
  serverCertDer: Buffer;
  exited: Promise<number | null>;
}

async function start(env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn(BINARY, [], {
    env: { ...process.env, ...COOKIE, PLUGIN_CLIENT_CERT: client.certPem, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  const line = await new Promise<string>((ok, fail) => {
    child.stdout?.once('data', (d) => ok(String(d)));
    child.once('exit', (code) => fail(new Error(`provider exited ${code} before its handshake`)));
  });
  const [core, app, network, address, protocol, cert] = line.trim().split('|');
  expect([core, app, protocol]).toEqual(['1', '6', 'grpc']);
  // Go's RawStdEncoding: no padding.
  expect(cert).not.toMatch(/=/);
  return {
    child,
    network: network ?? '',
    address: address ?? '',
    serverCertDer: Buffer.from(cert ?? '', 'base64'),
    exited,
  };
}

/** A gRPC client over the handshake's address, trusting only the certificate it announced. */
function connect(p: Started): http2.ClientHttp2Session {
  const lines = p.serverCertDer.toString('base64').match(/.{1,64}/g) ?? [];
  const ca = `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
  const options = {
    ca,
    cert: client.certPem,
    key: client.keyPem,
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
  };
  return p.network === 'unix'
    ? http2.connect('https://localhost', {
        createConnection: () => tls.connect({ ...options, path: p.address }),
      })
    : http2.connect(`https://${p.address}`, options);
}

function call(
  session: http2.ClientHttp2Session,
  path: string,
  message: Buffer,
): Promise<{ status: string | undefined; body: Buffer }> {
  return new Promise((ok, fail) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    stream.on('trailers', (t) => {
      status = String(t['grpc-status']);
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => ok({ status, body: Buffer.concat(chunks) }));
    stream.on('error', fail);
    const framed = Buffer.alloc(5 + message.length);
    framed.writeUInt32BE(message.length, 1);
    message.copy(framed, 5);
    stream.end(framed);
  });
}

it('listens on a unix socket in PLUGIN_UNIX_SOCKET_DIR, answers health checks, and removes the socket when Shutdown ends it', async () => {
  const p = await start({ PLUGIN_UNIX_SOCKET_DIR: socketDir });
  expect(p.network).toBe('unix');
  expect(p.address.startsWith(`${socketDir}/plugin`)).toBe(true);
  expect(existsSync(p.address)).toBe(true);
  const session = connect(p);
  // HealthCheckResponse { status: SERVING (1) }
  const health = await call(session, '/grpc.health.v1.Health/Check', Buffer.alloc(0));
  expect(health.status).toBe('0');
  expect(health.body.subarray(5).toString('hex')).toBe('0801');
  await call(session, '/plugin.GRPCController/Shutdown', Buffer.alloc(0));
  expect(await p.exited).toBe(0);
  session.destroy();
  expect(existsSync(p.address)).toBe(false);
});

it('answers GetProviderSchema with the schema it was built with, encoded at build time', async () => {
  const p = await start({ PLUGIN_UNIX_SOCKET_DIR: socketDir });
  const session = connect(p);
  const answer = await call(session, '/tfplugin6.Provider/GetProviderSchema', Buffer.alloc(0));
  await call(session, '/plugin.GRPCController/Shutdown', Buffer.alloc(0));
  session.destroy();
  expect(answer.status).toBe('0');
  const message = answer.body.subarray(5);
  expect(answer.body.readUInt32BE(1)).toBe(message.length);
  // The same bytes as the source encodes now: the bundle's copy is not stale.
  expect(message.equals(providerSchemaAnswer(new RigboxProvider()))).toBe(true);
  const schema = decode(PROVIDER_METHODS.get('GetProviderSchema')!.response, message) as {
    resourceSchemas: Record<string, unknown>;
  };
  expect(Object.keys(schema.resourceSchemas).sort()).toEqual([
    'rigbox_ai_defaults',
    'rigbox_byok_policy',
    'rigbox_workspace_ai_config',
  ]);
});

it('removes its socket when stopped by a signal', async () => {
  const p = await start({ PLUGIN_UNIX_SOCKET_DIR: socketDir });
  expect(existsSync(p.address)).toBe(true);
  p.child.kill('SIGTERM');
  await p.exited;
  expect(existsSync(p.address)).toBe(false);
});

it('falls back to loopback TCP when the socket path would be too long for the kernel', async () => {
  const deep = join(socketDir, 'd'.repeat(120));
  const p = await start({ PLUGIN_UNIX_SOCKET_DIR: deep });
  expect(p.network).toBe('tcp');
  expect(p.address).toMatch(/^127\.0\.0\.1:\d+$/);
  const session = connect(p);
  expect((await call(session, '/grpc.health.v1.Health/Check', Buffer.alloc(0))).status).toBe('0');
  await call(session, '/plugin.GRPCController/Shutdown', Buffer.alloc(0));
  expect(await p.exited).toBe(0);
  session.destroy();
});

it('tells a person who runs it by hand what it is, and exits 1', async () => {
  const child = spawn(BINARY, [], {
    env: { ...process.env, TF_PLUGIN_MAGIC_COOKIE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const code = await new Promise((ok) => child.once('exit', ok));
  expect(code).toBe(1);
  expect(stderr).toMatch(/provider plugin \(rigbox\/rigbox\)\. It is not meant to be run by hand/);
});

it('refuses api_key_wo from a client that does not offer write-only support, naming the attribute', async () => {
  const p = await start({ PLUGIN_UNIX_SOCKET_DIR: socketDir });
  const session = connect(p);
  const resource = new RigboxProvider().resources.find((r) => r.typeName === 'rigbox_workspace_ai_config')!;
  const type = blockType(resource.schema.block);
  const attrs = (type[1] as Record<string, unknown>) ?? {};
  const config: Record<string, Value> = Object.fromEntries(Object.keys(attrs).map((k) => [k, null]));
  Object.assign(config, {
    workspace_id: 'ws_1',
    mode: 'byok',
    ai_provider: 'openai',
    api_key_wo: 'not-a-real-key',
    api_key_wo_version: 1,
  });
  const method = PROVIDER_METHODS.get('ValidateResourceConfig')!;
  const validate = async (clientCapabilities?: { writeOnlyAttributesAllowed: boolean }) => {
    const req = encode(method.request, {
      typeName: 'rigbox_workspace_ai_config',
      config: encodeDynamic(config, type),
      ...(clientCapabilities ? { clientCapabilities } : {}),
    });
    const res = await call(session, '/tfplugin6.Provider/ValidateResourceConfig', req);
    expect(res.status).toBe('0');
    return (decode(method.response, res.body.subarray(5)).diagnostics ?? []) as {
      summary: string;
      detail: string;
      attribute?: unknown;
    }[];
  };
  // A client from before write-only attributes (Terraform and OpenTofu < 1.11) sends no capability.
  const refused = await validate();
  expect(refused.map((d) => d.summary)).toContain('Write-Only Attribute Not Supported');
  expect(refused.find((d) => d.summary === 'Write-Only Attribute Not Supported')?.detail).toMatch(
    /api_key_wo/,
  );
  expect(JSON.stringify(refused)).not.toContain('not-a-real-key');
  expect((await validate({ writeOnlyAttributesAllowed: true })).map((d) => d.summary)).not.toContain(
    'Write-Only Attribute Not Supported',
  );
  await call(session, '/plugin.GRPCController/Shutdown', Buffer.alloc(0));
  expect(await p.exited).toBe(0);
  session.destroy();
});

// TFPLUGIN_WIRE chooses the gRPC server's HTTP/2 layer at start: our own (http2.ts, hpack.ts) or
// node:http2. The tests above run on whichever the environment names (the default unless set);
// these run on each explicitly. node:http2 adds a `date` header to its answers and ours does not,
// which shows which one answered.
describe.each(['own', 'node'])('on the %s HTTP/2 layer (TFPLUGIN_WIRE)', (wire) => {
  const callWithHeaders = (session: http2.ClientHttp2Session, path: string) =>
    new Promise<{ headers: http2.IncomingHttpHeaders; status: string | undefined }>((ok, fail) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let headers: http2.IncomingHttpHeaders = {};
      let status: string | undefined;
      stream.on('response', (h) => {
        headers = h;
      });
      stream.on('trailers', (t) => {
        status = String(t['grpc-status']);
      });
      stream.resume();
      stream.on('end', () => ok({ headers, status }));
      stream.on('error', fail);
      stream.end(Buffer.alloc(5));
    });

  it('answers health and the schema with the broker stream held open, exits on Shutdown and removes its socket', async () => {
    const p = await start({ PLUGIN_UNIX_SOCKET_DIR: socketDir, TFPLUGIN_WIRE: wire });
    expect(p.network).toBe('unix');
    const session = connect(p);
    const broker = session.request({
      ':method': 'POST',
      ':path': '/plugin.GRPCBroker/StartStream',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const brokerHeaders = await new Promise<http2.IncomingHttpHeaders>((ok) => broker.once('response', ok));
    expect(brokerHeaders[':status']).toBe(200);
    let brokerEnded = false;
    broker.on('end', () => {
      brokerEnded = true;
    });
    broker.on('error', () => {});
    broker.resume();
    const health = await callWithHeaders(session, '/grpc.health.v1.Health/Check');
    expect(health.status).toBe('0');
    expect(health.headers['content-type']).toBe('application/grpc');
    expect(health.headers.date !== undefined).toBe(wire === 'node');
    const schema = await call(session, '/tfplugin6.Provider/GetProviderSchema', Buffer.alloc(0));
    expect(schema.status).toBe('0');
    expect(schema.body.subarray(5).equals(providerSchemaAnswer(new RigboxProvider()))).toBe(true);
    expect((await callWithHeaders(session, '/no.Such/Method')).headers['grpc-status']).toBe('12');
    expect(brokerEnded).toBe(false);
    await call(session, '/plugin.GRPCController/Shutdown', Buffer.alloc(0));
    expect(await p.exited).toBe(0);
    session.destroy();
    expect(existsSync(p.address)).toBe(false);
  });

  it('serves over loopback TCP too, and refuses a client without the certificate it was given', async () => {
    const p = await start({ PLUGIN_UNIX_SOCKET_DIR: join(socketDir, 'd'.repeat(120)), TFPLUGIN_WIRE: wire });
    expect(p.network).toBe('tcp');
    const stranger = createServerCertificate();
    const lines = p.serverCertDer.toString('base64').match(/.{1,64}/g) ?? [];
    const refused = http2.connect(`https://${p.address}`, {
      ca: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`,
      cert: stranger.certPem,
      key: stranger.keyPem,
      checkServerIdentity: () => undefined,
    });
    refused.on('error', () => {});
    const outcome = await callWithHeaders(refused, '/grpc.health.v1.Health/Check').then(
      (a) => a.status ?? 'refused',
      () => 'refused',
    );
    refused.destroy();
    expect(outcome).toBe('refused');
    const session = connect(p);
    expect((await callWithHeaders(session, '/grpc.health.v1.Health/Check')).status).toBe('0');
    await call(session, '/plugin.GRPCController/Shutdown', Buffer.alloc(0));
    expect(await p.exited).toBe(0);
    session.destroy();
  });
});

it('refuses an unknown TFPLUGIN_WIRE with one line naming the choices, and exits 1', async () => {
  const child = spawn(BINARY, [], {
    env: { ...process.env, ...COOKIE, PLUGIN_CLIENT_CERT: client.certPem, TFPLUGIN_WIRE: 'grpc-go' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += String(d);
  });
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  expect(await new Promise((ok) => child.once('exit', ok))).toBe(1);
  expect(stdout).toBe('');
  expect(stderr).toBe('TFPLUGIN_WIRE must be "own" or "node", not "grpc-go".\n');
});
