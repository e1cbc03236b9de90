// Release files in the layout the Terraform registry protocol and `terraform providers mirror` use:
//   terraform-provider-rigbox_<version>_<os>_<arch>.zip   the executable (or the plain bundle's files)
//   terraform-provider-rigbox_<version>_manifest.json     { version: 1, metadata: { protocol_versions } }
//   terraform-provider-rigbox_<version>_SHA256SUMS        sha256 of the zips and the manifest
//   terraform-provider-rigbox_<version>_SHA256SUMS.sig    detached GPG signature, if GPG_FINGERPRINT is set
// `npm run release` rewrites them from the last build (e.g. to sign with a key provided then).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import yazl from 'yazl';

export const PROTOCOL_VERSIONS = ['6.0'];
const NAME = 'terraform-provider-rigbox';
const goArch = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' }[arch()] ?? arch();
const goOs = { win32: 'windows' }[platform()] ?? platform();
export const PLATFORM = `${goOs}_${goArch}`;
// Archive entries carry a fixed time, so the same build gives the same zip and the same hashes.
const ENTRY_TIME = new Date(Date.UTC(2020, 0, 1));

/** The files the archive holds: the single executable alone, or the plain bundle's three files. */
export function packageFiles(pkgDir, kind, exe) {
  if (kind === 'sea') return [{ name: exe, path: join(pkgDir, 'dist/sea', exe), mode: 0o100755 }];
  const dir = join(pkgDir, 'dist/bundle');
  return readdirSync(dir)
    .sort()
    .map((name) => ({ name, path: join(dir, name), mode: name === exe ? 0o100755 : 0o100644 }));
}

async function sha256(file) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function writeZip(files, out) {
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addFile(f.path, f.name, { mtime: ENTRY_TIME, mode: f.mode });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(out));
}

/** @param {{ pkgDir: string, version: string, files: { name: string, path: string, mode: number }[], dir?: string }} o */
export async function writeRelease({ pkgDir, version, files, dir: target = join(pkgDir, 'dist/release') }) {
  // Written beside and then renamed into place, so readers see the old set or the new one.
  const dir = `${target}.tmp-${process.pid}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const prefix = `${NAME}_${version}`;
  const zipName = `${prefix}_${PLATFORM}.zip`;
  const zip = join(dir, zipName);
  await writeZip(files, zip);
  const manifestName = `${prefix}_manifest.json`;
  writeFileSync(
    join(dir, manifestName),
    `${JSON.stringify({ version: 1, metadata: { protocol_versions: PROTOCOL_VERSIONS } }, null, 2)}\n`,
  );
  const sums = `${prefix}_SHA256SUMS`;
  const lines = [];
  for (const name of [zipName, manifestName].sort()) lines.push(`${await sha256(join(dir, name))}  ${name}`);
  writeFileSync(join(dir, sums), `${lines.join('\n')}\n`);
  const key = process.env.GPG_FINGERPRINT;
  if (key) {
    const sig = spawnSync(
      'gpg',
      [
        '--batch',
        '--yes',
        '--local-user',
        key,
        '--output',
        join(dir, `${sums}.sig`),
        '--detach-sign',
        join(dir, sums),
      ],
      { encoding: 'utf8' },
    );
    if (sig.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`gpg --detach-sign with key ${key} failed: ${sig.stderr.trim()}`);
    }
  }
  rmSync(target, { recursive: true, force: true });
  renameSync(dir, target);
  return { dir: target, zip: join(target, zipName), zipName };
}

/**
 * Lays the archive into a filesystem mirror in the packed layout
 * (<host>/rigbox/rigbox/<zip>), for both default registry hosts, replacing any earlier copy of
 * this version (packed or unpacked).
 */
export function layIntoMirror(zip, mirror, version) {
  for (const host of ['registry.opentofu.org', 'registry.terraform.io']) {
    const dir = join(mirror, host, 'rigbox/rigbox');
    mkdirSync(dir, { recursive: true });
    rmSync(join(dir, version), { recursive: true, force: true });
    // Renamed into place: an init reading the mirror meanwhile sees the old zip or the new one.
    const tmp = join(dir, `.${basename(zip)}.tmp-${process.pid}`);
    copyFileSync(zip, tmp);
    renameSync(tmp, join(dir, basename(zip)));
  }
}

// `npm run release [-- --out DIR]`: the release files again from the last build, e.g. to sign them
// with a key provided now. Without --out they replace dist/release and the mirror's copy.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const kindFile = join(pkgDir, 'dist/provider-kind');
  if (!existsSync(kindFile)) throw new Error('no build to release: run `npm run build -w provider` first');
  const kind = readFileSync(kindFile, 'utf8').split('\n')[0]?.trim() === 'sea' ? 'sea' : 'bundle';
  const exe = `${NAME}_v${version}`;
  const files = packageFiles(pkgDir, kind, exe);
  const release = await writeRelease({
    pkgDir,
    version,
    files,
    ...(values.out ? { dir: values.out } : {}),
  });
  if (!values.out) layIntoMirror(release.zip, join(pkgDir, '../.tools/mirror'), version);
  console.error(`provider: release files (${kind}) in ${release.dir}`);
}
