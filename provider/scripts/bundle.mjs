// Bundles the provider into one ESM file (fast start: Terraform launches a provider several
// times per command) and lays the package into the repo's local provider mirror, so that
// `.tools/tofurc` installs rigbox/rigbox with no network.
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, '..');
const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const out = join(pkgDir, 'dist/package');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(pkgDir, 'src/main.ts')],
  outdir: out,
  entryNames: 'provider',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  // Code split: the AWS SDK chunk loads only when an SSM reference is used.
  splitting: true,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  legalComments: 'none',
  // CommonJS dependencies (parts of the AWS SDK) call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __rigboxRequire } from 'node:module'; const require = __rigboxRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

// The executable Terraform starts: a tiny CommonJS launcher (no extension, so Node reads it as
// CommonJS) that loads the ESM bundle beside it.
const exe = `terraform-provider-rigbox_v${version}`;
writeFileSync(
  join(out, exe),
  "#!/usr/bin/env node\n'use strict';\nimport(require('node:url').pathToFileURL(require('node:path').join(__dirname, 'provider.mjs')).href);\n",
);
chmodSync(join(out, exe), 0o755);
// The launcher has no .js extension; a package.json beside it makes Node read it as CommonJS
// whatever package.json sits above the install directory.
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');

const goArch = { x64: 'amd64', arm64: 'arm64' }[arch()] ?? arch();
const mirror = join(pkgDir, '../.tools/mirror');
for (const host of ['registry.opentofu.org', 'registry.terraform.io']) {
  const dir = join(mirror, host, 'rigbox/rigbox', version, `${platform()}_${goArch}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(out, dir, { recursive: true });
}
console.error(`provider: built ${exe} and laid it into ${mirror}`);
