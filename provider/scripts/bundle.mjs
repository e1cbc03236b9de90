// Bundles the provider into one CommonJS executable (fast start: Terraform launches a provider
// several times per command) and lays the package into the repo's local provider mirror, so that
// `.tools/tofurc` installs rigbox/rigbox with no network.
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, '..');
const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const out = join(pkgDir, 'dist/package');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const exe = `terraform-provider-rigbox_v${version}`;
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: process.env.RIGBOX_BUNDLE_MINIFY !== '0',
  legalComments: 'none',
  logLevel: 'warning',
};
// The AWS SDK is most of the code and only SSM references need it: it goes into a file of its own,
// required the first time an SSM reference is resolved (esbuild runs a dynamically imported
// module's top level, and so its require, only on that import).
const AWS_SDK = 'aws-sdk-ssm.cjs';
// The GetProviderSchema answer, encoded now from the compiled provider (tsc runs first): the same
// code that would encode it at run time, run once here instead of cold in every schema process.
const { RigboxProvider } = await import(pathToFileURL(join(pkgDir, 'dist/provider.js')).href);
const { providerSchemaAnswer } = await import(pathToFileURL(join(pkgDir, 'dist/protocol/server.js')).href);
const schemaAnswer = providerSchemaAnswer(new RigboxProvider()).toString('base64');
await build({
  ...common,
  entryPoints: [join(pkgDir, 'src/main.ts')],
  define: { RIGBOX_PROVIDER_SCHEMA_ANSWER: JSON.stringify(schemaAnswer) },
  outfile: join(out, exe),
  // The executable itself is the bundle: no launcher and no ES module loader to start, which cost a
  // third of the time to the handshake when the bundle was an ES module loaded by a launcher.
  banner: { js: '#!/usr/bin/env node' },
  plugins: [
    {
      name: 'aws-sdk-beside',
      setup(b) {
        b.onResolve({ filter: /^@aws-sdk\/client-ssm$/ }, () => ({ path: `./${AWS_SDK}`, external: true }));
      },
    },
  ],
});
await build({
  ...common,
  stdin: { contents: "module.exports = require('@aws-sdk/client-ssm');", resolveDir: pkgDir },
  outfile: join(out, AWS_SDK),
});
chmodSync(join(out, exe), 0o755);
// The executable has no .js extension; a package.json beside it makes Node read it as CommonJS
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
