// Makes the provider a Node single executable application: the Node binary running this build with
// the bundle (and its V8 code cache) injected, plus the AWS SDK as an embedded asset. Nothing beside
// it and no `node` on the PATH. Returns { ok: false, reason } where that cannot be done, and the
// caller ships the plain bundle instead.
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Packages the provider imports only when needed, each a file of its own (an asset in the SEA). */
export const LAZY_MODULES = {
  '@aws-sdk/client-ssm': 'aws-sdk-ssm.cjs',
  'https-proxy-agent': 'https-proxy-agent.cjs',
};
// Node's fixed sentinel for the SEA blob (docs: "Single executable applications").
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** @param {{ bundleDir: string, exe: string, outDir: string }} o */
export async function buildSea({ bundleDir, exe, outDir }) {
  const target = join(outDir, exe);
  const result = await build({ bundleDir, exe, outDir, target });
  // A failed build leaves no stale executable behind.
  if (!result.ok) rmSync(target, { force: true });
  return result;
}

async function build({ bundleDir, exe, outDir, target }) {
  if (process.env.RIGBOX_PROVIDER_SEA === '0') return { ok: false, reason: 'RIGBOX_PROVIDER_SEA=0' };
  if (!['linux', 'darwin', 'win32'].includes(process.platform))
    return { ok: false, reason: `${process.platform} is not a SEA platform` };
  // Made in a folder of its own and renamed into place: a test or benchmark running the previous
  // executable while the provider is rebuilt never sees a half-written file.
  const work = join(outDir, `.build-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    // The main script of a SEA is compiled as CommonJS, not run as a file: no shebang line.
    const main = join(work, 'main.cjs');
    writeFileSync(main, readFileSync(join(bundleDir, exe), 'utf8').replace(/^#!.*\n/, ''));
    const blob = join(work, 'sea-prep.blob');
    const config = join(work, 'sea-config.json');
    writeFileSync(
      config,
      JSON.stringify({
        main,
        output: blob,
        disableExperimentalSEAWarning: true,
        // The bundle's compiled code goes into the blob: measured 50 -> 37 ms to the handshake.
        useCodeCache: true,
        assets: Object.fromEntries(Object.values(LAZY_MODULES).map((f) => [f, join(bundleDir, f)])),
      }),
    );
    const prep = spawnSync(process.execPath, ['--experimental-sea-config', config], { encoding: 'utf8' });
    if (prep.status !== 0 || !existsSync(blob))
      return { ok: false, reason: `node --experimental-sea-config failed: ${prep.stderr.trim()}` };

    const made = join(work, exe);
    copyFileSync(process.execPath, made);
    // Node's symbols and debug information are not needed to run it (99 -> 86 MB here).
    if (process.platform === 'linux') spawnSync('strip', [made], { stdio: 'ignore' });
    const { inject } = createRequire(import.meta.url)('postject');
    await inject(made, 'NODE_SEA_BLOB', readFileSync(blob), {
      sentinelFuse: SEA_FUSE,
      machoSegmentName: 'NODE_SEA',
    });
    if (process.platform === 'darwin') spawnSync('codesign', ['--sign', '-', made], { stdio: 'ignore' });
    const check = await handshakes(made);
    if (!check.ok) return { ok: false, reason: `the single executable did not start: ${check.reason}` };
    renameSync(made, target);
    return { ok: true, path: target };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Starts the executable with no PATH the way go-plugin does and waits for its handshake line. */
function handshakes(binary) {
  return new Promise((resolve) => {
    const child = spawn(binary, [], {
      env: {
        PATH: '',
        TF_PLUGIN_MAGIC_COOKIE: 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2',
        PLUGIN_PROTOCOL_VERSIONS: '6',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const done = (result) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(result);
    };
    const timer = setTimeout(
      () => done({ ok: false, reason: `no handshake in 10 s: ${err.trim()}` }),
      10_000,
    );
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n'))
        done(/^1\|6\|unix\|/.test(out) ? { ok: true } : { ok: false, reason: out.trim() });
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => done({ ok: false, reason: e.message }));
    child.on('exit', (code) => done({ ok: false, reason: `exited ${code}: ${err.trim()}` }));
  });
}
