// `npm run build` after tsc: bundles the provider, makes it one executable (a Node single executable
// application, no `node` needed on the PATH) where this platform allows it, writes the release
// archives in the registry layout and lays the archive into the repo's filesystem mirror in the
// packed layout, so that `.tools/tofurc` installs rigbox/rigbox with no network.
//
//   dist/bundle/   the plain bundle: a CommonJS script for `node` plus the AWS SDK beside it
//   dist/sea/      the single executable (when it could be made)
//   dist/release/  zip, SHA256SUMS, manifest.json (+ SHA256SUMS.sig when GPG_FINGERPRINT is set)
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { layIntoMirror, packageFiles, writeRelease } from './release.mjs';
import { buildSea, LAZY_MODULES } from './sea.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, '..');
const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const exe = `terraform-provider-rigbox_v${version}`;
const bundleDir = join(pkgDir, 'dist/bundle');
// dist/package/ was the plain bundle before the single executable.
rmSync(join(pkgDir, 'dist/package'), { recursive: true, force: true });
// Emptied first: the plain bundle ships every file in it, and a module no longer used must not.
rmSync(bundleDir, { recursive: true, force: true });
mkdirSync(bundleDir, { recursive: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: process.env.RIGBOX_BUNDLE_MINIFY !== '0',
  legalComments: 'none',
  logLevel: 'warning',
};
// Modules needed only on some paths are files of their own, loaded on the first import() (esbuild
// runs a dynamically imported module's top level only then), so a provider process that never
// needs them does not parse them at start: the AWS SDK (most of the code; only SSM references need
// it) and https-proxy-agent (only when HTTPS_PROXY or HTTP_PROXY names a proxy for the API or Vault). Beside the plain bundle each is a file to require; inside the single executable, whose
// require() loads built-in modules only, each is an embedded asset compiled on first use. The
// module below picks one at run time.
const lazyLoader = (file) => `
let sea;
try { sea = require('node:sea'); } catch {}
if (sea && sea.isSea()) {
  const code = sea.getAsset(${JSON.stringify(file)}, 'utf8');
  const load = require('node:vm').compileFunction(code, ['exports', 'require', 'module'], {
    filename: ${JSON.stringify(file)},
  });
  load(module.exports, require, module);
} else {
  module.exports = require(${JSON.stringify(`./${file}`)});
}
`;
// The GetProviderSchema answer, encoded now from the compiled provider (tsc runs first): the same
// code that would encode it at run time, run once here instead of cold in every schema process.
const { RigboxProvider } = await import(pathToFileURL(join(pkgDir, 'dist/provider.js')).href);
const { providerSchemaAnswer } = await import('@rigbox/tfplugin');
const schemaAnswer = providerSchemaAnswer(new RigboxProvider()).toString('base64');
await build({
  ...common,
  entryPoints: [join(pkgDir, 'src/main.ts')],
  define: { RIGBOX_PROVIDER_SCHEMA_ANSWER: JSON.stringify(schemaAnswer) },
  outfile: join(bundleDir, exe),
  // The executable itself is the bundle: no launcher and no ES module loader to start, which cost a
  // third of the time to the handshake when the bundle was an ES module loaded by a launcher.
  banner: { js: '#!/usr/bin/env node' },
  plugins: [
    {
      name: 'lazy-modules',
      setup(b) {
        for (const [pkg, file] of Object.entries(LAZY_MODULES)) {
          const exact = new RegExp(`^${pkg.replace(/[/.-]/g, '\\$&')}$`);
          b.onResolve({ filter: exact }, () => ({ path: file, namespace: 'lazy-module' }));
          b.onResolve({ filter: new RegExp(`^\\./${file.replace(/[.-]/g, '\\$&')}$`) }, (a) => ({
            path: a.path,
            external: true,
          }));
        }
        b.onLoad({ filter: /.*/, namespace: 'lazy-module' }, (a) => ({
          contents: lazyLoader(a.path),
          loader: 'js',
        }));
      },
    },
  ],
});
for (const [pkg, file] of Object.entries(LAZY_MODULES)) {
  await build({
    ...common,
    stdin: { contents: `module.exports = require(${JSON.stringify(pkg)});`, resolveDir: pkgDir },
    outfile: join(bundleDir, file),
    // A compiled asset has no module loader behind import(): the AWS SDK's import("node:http")
    // becomes a require, which works the same in both forms.
    supported: { 'dynamic-import': false },
    // https-proxy-agent's optional peer for Negotiate (Kerberos) proxy authentication, a native
    // module we do not ship: asked for only when a proxy answers 407 Negotiate.
    external: ['kerberos'],
  });
}
chmodSync(join(bundleDir, exe), 0o755);
// The executable has no .js extension; a package.json beside it makes Node read it as CommonJS
// whatever package.json sits above the install directory.
writeFileSync(join(bundleDir, 'package.json'), '{ "type": "commonjs" }\n');

const sea = await buildSea({ bundleDir, exe, outDir: join(pkgDir, 'dist/sea') });
const kind = sea.ok ? 'sea' : 'bundle';
// Which form was built (and why not the single executable), for `npm run release`, the tests and
// the benchmark. Not a release file.
writeFileSync(join(pkgDir, 'dist/provider-kind'), sea.ok ? 'sea\n' : `bundle\n${sea.reason}\n`);
console.error(
  sea.ok
    ? `provider: built ${exe} as a single executable (Node ${process.version}, no node needed on the PATH)`
    : `provider: built ${exe} as the plain bundle (it needs node on the PATH): a single executable could not be made: ${sea.reason}`,
);
const release = await writeRelease({ pkgDir, version, files: packageFiles(pkgDir, kind, exe) });
const mirror = join(pkgDir, '../.tools/mirror');
layIntoMirror(release.zip, mirror, version);
console.error(
  `provider: release files in ${release.dir}; ${release.zipName} laid into ${mirror} (packed layout)`,
);
