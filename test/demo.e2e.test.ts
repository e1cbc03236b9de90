import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SCAN_LINE } from '../scripts/demo/main.js';
import { REPO } from './support/rigbox-server.js';

/**
 * `npm run demo` as a newcomer runs it, non-interactively: the real service, Vault, moto, cdktf and
 * Terraform (or OpenTofu), end to end. It installs what is missing and builds what is stale itself;
 * after `npm run tools` and `npm run build` (as `npm test` runs) it does neither.
 */

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number>;
}

function start(cmd: string, args: string[]): Run {
  // A real user's shell: none of vitest's variables that the demo would not see.
  const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, FORCE_COLOR: '0' }, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exit = new Promise<number>((resolve) => {
    child.once('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

const folderOf = (stdout: string) => /Everything the demo writes goes to (\S+?) \(/.exec(stdout)?.[1];
const addressesOf = (stdout: string) => {
  const m = /API (http:\/\/\S+), Vault (http:\/\/\S+), SSM (http:\/\/\S+) \(/.exec(stdout);
  return m ? [m[1]!, m[2]!, m[3]!] : [];
};

async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return false;
  } catch {
    return true;
  }
}

async function waitFor(run: Run, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(run.stdout())) {
    if (run.child.exitCode !== null)
      throw new Error(`the demo exited early:\n${run.stdout()}\n${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} after ${timeoutMs} ms:\n${run.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const FULL_DEMO_KEY = /DEMO-FAKE-KEY-not-real-[0-9a-f]{24}/;

describe('npm run demo', () => {
  it('runs end to end: deploy, drift, rotation, destroy; exits 0 with the scan line last', {
    timeout: 420_000,
  }, async () => {
    const run = start('npm', ['run', 'demo']);
    const code = await run.exit;
    const stdout = run.stdout();
    expect(code, `${stdout}\n${run.stderr()}`).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe(SCAN_LINE);

    // Each step said what it showed, as the engine answered.
    expect(stdout).toMatch(/Apply complete! Resources: 5 added, 0 changed, 0 destroyed/);
    expect(stdout).toContain('=> exit code 0, no changes');
    expect(stdout).toMatch(/model\s+=\s+"gpt-4\.1" -> "gpt-4o"/);
    expect(stdout).toContain('=> exit code 2: the change by hand is drift');
    expect(stdout).toContain('=> exit code 2: the rotated key will be sent');
    expect(stdout).toMatch(/local-exec\): ML workspace key changed: restarting its agents/);
    const fingerprints = /fingerprint (\S+) -> (\S+); model gpt-4o again/.exec(stdout);
    expect(fingerprints?.[1]).toBeTruthy();
    expect(fingerprints?.[1]).not.toBe(fingerprints?.[2]);
    expect(stdout).toMatch(/Destroy complete! Resources: 5 destroyed/);
    expect(stdout).toMatch(/=> \d+ files, [\d.]+ MB, 4 keys/);
    // The commands are printed so they can be repeated by hand.
    expect(stdout).toMatch(/\$ \S+ -chdir=\$STACK plan -detailed-exitcode -input=false -out=drift\.tfplan/);
    expect(stdout).toContain('export RIGBOX_ENDPOINT=');

    // The keys are shown by their marked prefix only.
    expect(stdout + run.stderr()).not.toMatch(FULL_DEMO_KEY);
    // Nothing is left: not the folder, not a listening engine.
    const folder = folderOf(stdout);
    expect(folder).toBeTruthy();
    expect(existsSync(folder!)).toBe(false);
    const addresses = addressesOf(stdout);
    expect(addresses).toHaveLength(3);
    for (const address of addresses) expect(await refused(address), address).toBe(true);
  });

  it('--keep leaves the engines running and the config deployed, and prints what to export', {
    timeout: 420_000,
  }, async () => {
    const run = start(process.execPath, ['scripts/demo.mjs', '--keep']);
    const code = await run.exit;
    const stdout = run.stdout();
    expect(code, `${stdout}\n${run.stderr()}`).toBe(0);
    expect(stdout.trimEnd().split('\n').at(-1)).toBe(SCAN_LINE);
    const kill = /When you are done: kill ([\d ]+) && rm -rf (\S+)/.exec(stdout);
    expect(kill).toBeTruthy();
    const pids = kill![1]!.trim().split(' ').map(Number);
    const folder = kill![2]!;
    try {
      expect(stdout).toContain('Destroy: skipped with --keep');
      const endpoint = /export RIGBOX_ENDPOINT=(\S+) RIGBOX_TOKEN=(\S+)/.exec(stdout);
      const ml = /TF_VAR_ml_workspace_id=(\S+)/.exec(stdout)?.[1];
      // The demo has exited; what it started still serves, with the config still deployed.
      const res = await fetch(`${endpoint![1]}/api/workspaces/${ml}/ai-config`, {
        headers: { authorization: `Bearer ${endpoint![2]}` },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ mode: 'byok', model: 'gpt-4o', api_key_set: true });
      for (const address of addressesOf(stdout)) expect(await refused(address), address).toBe(false);
      expect(existsSync(`${folder}/cdktf.out`)).toBe(true);
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('Ctrl-C stops every engine it started and removes its folder', { timeout: 180_000 }, async () => {
    const run = start(process.execPath, ['scripts/demo.mjs']);
    await waitFor(run, /API http:\/\/\S+, Vault http:\/\/\S+, SSM http:\/\/\S+ \(/, 150_000);
    const addresses = addressesOf(run.stdout());
    for (const address of addresses) expect(await refused(address), address).toBe(false);
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(130);
    expect(run.stderr()).toMatch(/^\ndemo: SIGINT: stopping what it started and removing its files\n$/);
    expect(existsSync(folderOf(run.stdout())!)).toBe(false);
    for (const address of addresses) expect(await refused(address), address).toBe(true);
  });

  it('a port in use is one line on stderr, with no stack trace', { timeout: 60_000 }, async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const run = start(process.execPath, ['scripts/demo.mjs', '--port', String(port)]);
      expect(await run.exit).toBe(1);
      expect(run.stderr()).toBe(
        `demo: error: port ${port} on 127.0.0.1 is in use; free it, or leave --port out to use a free port\n`,
      );
      expect(folderOf(run.stdout())).toBeUndefined();
    } finally {
      server.close();
    }
  });

  it('an unknown option is one line on stderr', { timeout: 60_000 }, async () => {
    const run = start(process.execPath, ['scripts/demo.mjs', '--kep']);
    expect(await run.exit).toBe(1);
    expect(run.stderr()).toBe(
      "demo: error: Unknown option '--kep' (npm run demo -- --help lists the options)\n",
    );
  });
});
