// Writes a package's API.md with jsii-docgen: `node scripts/docgen.mjs [cdktf|cdktn] [output]`
// (default: the cdktf package, into its own API.md). Run after the package's build.
//
// jsii-docgen looks for the assemblies of our dependencies under this package's own node_modules,
// but npm workspaces hoist cdktf and constructs to the repo root; so the assemblies it needs are
// gathered into a scratch folder first.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Documentation, Language } from 'jsii-docgen';
import { flavorFromArgs } from './flavors.mjs';

const flavor = flavorFromArgs(process.argv[2]);
const { pkgDir } = flavor;
const output = resolve(process.argv[3] ?? join(pkgDir, 'API.md'));
const require = createRequire(join(pkgDir, 'package.json'));
const name = require(join(pkgDir, 'package.json')).name;

const scratch = mkdtempSync(join(tmpdir(), 'rigbox-docgen-'));
try {
  cpSync(join(pkgDir, '.jsii'), join(scratch, 'self/.jsii'));
  for (const dep of [flavor.core, 'constructs']) {
    cpSync(join(dirname(require.resolve(`${dep}/package.json`)), '.jsii'), join(scratch, dep, '.jsii'));
  }
  const docs = await Documentation.forAssembly(name, scratch);
  const markdown = await docs.toMarkdown({
    language: Language.TYPESCRIPT,
    readme: false,
    apiReference: true,
  });
  writeFileSync(output, markdown.render());
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
