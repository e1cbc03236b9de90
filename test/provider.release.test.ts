import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MIRROR,
  PLATFORM,
  PROVIDER_EXE_NAME,
  PROVIDER_VERSION,
  packageHashH1,
  providerExecutable,
  providerKind,
  RELEASE_DIR,
  RELEASE_PREFIX,
  RELEASE_ZIP,
} from './support/provider-build.js';
import { REPO } from './support/rigbox-server.js';
import { ENGINES, type Engine, TofuWorkspace } from './support/tofu.js';

/**
 * The provider as a Terraform user installs it: the release files of `npm run build` agree with
 * each other, the packed filesystem mirror gives the hashes `providers lock` records, `init`
 * verifies a lock file against them, on both engines.
 */
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const SUMS = `${RELEASE_PREFIX}_SHA256SUMS`;
const MANIFEST = `${RELEASE_PREFIX}_manifest.json`;
const HOSTS: Record<Engine, string> = { tofu: 'registry.opentofu.org', terraform: 'registry.terraform.io' };

function sums(dir: string): Map<string, string> {
  const lines = readFileSync(join(dir, SUMS), 'utf8').trim().split('\n');
  return new Map(lines.map((l) => [l.slice(66), l.slice(0, 64)] as const));
}

/** The h1: hash of what the archive holds: the single executable alone. */
const packageH1 = () => packageHashH1([{ name: PROVIDER_EXE_NAME, path: providerExecutable() }]);

const REQUIRED = `
terraform {
  required_providers {
    rigbox = { source = "rigbox/rigbox" }
  }
}
`;

describe('release files', () => {
  it('are a single executable on this platform', () => {
    const { kind, reason } = providerKind();
    expect(kind, `the build fell back to the plain bundle: ${reason}`).toBe('sea');
    const first = readFileSync(providerExecutable()).subarray(0, 4);
    expect(first.toString('latin1')).toBe('\x7fELF');
  });

  it('match each other: zip and manifest in SHA256SUMS, manifest for protocol 6.0, the mirror holds the same zip', () => {
    expect(readdirSync(RELEASE_DIR).sort()).toEqual([SUMS, RELEASE_ZIP, MANIFEST].sort());
    const listed = sums(RELEASE_DIR);
    expect([...listed.keys()].sort()).toEqual([RELEASE_ZIP, MANIFEST].sort());
    for (const [name, hash] of listed) expect(sha256(join(RELEASE_DIR, name)), name).toBe(hash);
    expect(JSON.parse(readFileSync(join(RELEASE_DIR, MANIFEST), 'utf8'))).toEqual({
      version: 1,
      metadata: { protocol_versions: ['6.0'] },
    });
    for (const host of Object.values(HOSTS)) {
      const dir = join(MIRROR, host, 'rigbox/rigbox');
      // Packed layout only: an unpacked copy of the same version would be a second candidate.
      expect(existsSync(join(dir, PROVIDER_VERSION)), `${dir}/${PROVIDER_VERSION}`).toBe(false);
      expect(sha256(join(dir, RELEASE_ZIP)), `${host} mirror zip`).toBe(listed.get(RELEASE_ZIP));
    }
  });

  it('are signed with the key in GPG_FINGERPRINT, and the same build gives the same archive', () => {
    const home = mkdtempSync(join(tmpdir(), 'rigbox-gpg-'));
    const out = mkdtempSync(join(tmpdir(), 'rigbox-release-'));
    try {
      const env = { ...process.env, GNUPGHOME: home };
      const gen = spawnSync(
        'gpg',
        [
          '--batch',
          '--passphrase',
          '',
          '--quick-gen-key',
          'Rigbox Release Test <release@rigbox.invalid>',
          'ed25519',
          'sign',
          '1d',
        ],
        { env, encoding: 'utf8' },
      );
      expect(gen.status, gen.stderr).toBe(0);
      const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(
        spawnSync('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env, encoding: 'utf8' })
          .stdout,
      )?.[1];
      expect(fpr).toBeTruthy();
      const release = spawnSync(
        process.execPath,
        [join(REPO, 'provider/scripts/release.mjs'), '--out', out],
        {
          env: { ...env, GPG_FINGERPRINT: fpr },
          encoding: 'utf8',
        },
      );
      expect(release.status, release.stderr).toBe(0);
      expect(readdirSync(out).sort()).toEqual([SUMS, `${SUMS}.sig`, RELEASE_ZIP, MANIFEST].sort());
      const verify = spawnSync('gpg', ['--batch', '--verify', join(out, `${SUMS}.sig`), join(out, SUMS)], {
        env,
        encoding: 'utf8',
      });
      expect(verify.status, verify.stderr).toBe(0);
      expect(verify.stderr).toContain(fpr);
      // Fixed entry times: the hashes a lock file pins do not change with a rebuild of the same code.
      expect(readFileSync(join(out, SUMS), 'utf8')).toBe(readFileSync(join(RELEASE_DIR, SUMS), 'utf8'));
      // A tampered SHA256SUMS no longer verifies.
      writeFileSync(join(out, SUMS), `${readFileSync(join(out, SUMS), 'utf8')}0  extra\n`);
      const tampered = spawnSync('gpg', ['--batch', '--verify', join(out, `${SUMS}.sig`), join(out, SUMS)], {
        env,
        encoding: 'utf8',
      });
      expect(tampered.status).not.toBe(0);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});

describe.each(ENGINES)('%s with the packed mirror', (engine) => {
  const host = HOSTS[engine];
  const workspaces: TofuWorkspace[] = [];
  const workspace = (env: NodeJS.ProcessEnv = {}) => {
    const w = new TofuWorkspace(env, engine);
    workspaces.push(w);
    return w;
  };
  afterAll(() => {
    for (const w of workspaces) w.dispose();
  });
  const lockHashes = (w: TofuWorkspace) => {
    const lock = readFileSync(join(w.dir, '.terraform.lock.hcl'), 'utf8');
    expect(lock).toContain(`provider "${host}/rigbox/rigbox"`);
    return [...lock.matchAll(/"((?:h1|zh):[^"]+)"/g)].map((m) => m[1]);
  };

  it('`providers lock -fs-mirror` records the h1: hash of the archived executable', async () => {
    const w = workspace();
    w.write(REQUIRED);
    await w.ok(['providers', 'lock', '-no-color', `-fs-mirror=${MIRROR}`, `-platform=${PLATFORM}`]);
    expect(lockHashes(w)).toContain(packageH1());
  }, 120_000);

  it('init verifies a lock file pinned to SHA256SUMS (zh:) and refuses an archive that differs', async () => {
    const zh = `zh:${sums(RELEASE_DIR).get(RELEASE_ZIP)}`;
    const lockFile = (hash: string) =>
      `provider "${host}/rigbox/rigbox" {\n  version = "${PROVIDER_VERSION}"\n  hashes = [\n    "${hash}",\n  ]\n}\n`;
    const w = workspace();
    w.write(REQUIRED);
    writeFileSync(join(w.dir, '.terraform.lock.hcl'), lockFile(zh));
    await w.init();
    // init adds the package's own hash next to the pinned one.
    expect(lockHashes(w).sort()).toEqual([packageH1(), zh].sort());

    const other = workspace();
    other.write(REQUIRED);
    writeFileSync(join(other.dir, '.terraform.lock.hcl'), lockFile(`zh:${'0'.repeat(64)}`));
    const res = await other.run(['init', '-no-color', '-input=false']);
    expect(res.code).toBe(1);
    expect(res.stderr + res.stdout).toMatch(/doesn't match any of the checksums/);
  }, 120_000);
  // init and apply with no node on the PATH: test/provider.examples.test.ts.
});
