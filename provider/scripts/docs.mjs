// Registry docs (provider/docs) from the built provider's schema and provider/examples, with
// HashiCorp's tfplugindocs, offline: `terraform providers schema -json` on the provider from the
// repo's mirror is passed as --providers-schema, then `tfplugindocs validate` checks the result.
//   npm run docs -w provider                 regenerate provider/docs
//   node scripts/docs.mjs --check [--docs-dir DIR]   fail if DIR (default provider/docs) is stale
// Needs `npm run tools` (terraform and tfplugindocs in .tools/bin) and `npm run build`.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { check: { type: 'boolean' }, 'docs-dir': { type: 'string' } } });
const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const tools = join(pkgDir, '../.tools');
const terraform = join(tools, 'bin/terraform');
const tfplugindocs = join(tools, 'bin/tfplugindocs');
for (const bin of [terraform, tfplugindocs, join(tools, 'tofurc')])
  if (!existsSync(bin)) fail(`${bin} is missing: run \`npm run tools\``);

function fail(message) {
  console.error(`provider docs: ${message}`);
  process.exit(1);
}

function run(cmd, args, cwd) {
  const res = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      TF_CLI_CONFIG_FILE: join(tools, 'tofurc'),
      CHECKPOINT_DISABLE: '1',
      TF_IN_AUTOMATION: '1',
    },
  });
  if (res.status !== 0) fail(`${cmd} ${args.join(' ')} failed:\n${res.stdout}\n${res.stderr}`);
  return res.stdout;
}

const work = mkdtempSync(join(tmpdir(), 'rigbox-docs-'));
try {
  // The schema as Terraform reports it for the provider users install.
  const ws = join(work, 'schema');
  mkdirSync(ws);
  cpSync(join(pkgDir, 'examples/provider/provider.tf'), join(ws, 'main.tf'));
  run(terraform, ['init', '-no-color', '-input=false', '-backend=false'], ws);
  const schema = JSON.parse(run(terraform, ['providers', 'schema', '-json'], ws));
  const address = 'registry.terraform.io/rigbox/rigbox';
  if (!schema.provider_schemas?.[address]) fail(`no schema for ${address} in terraform's answer`);
  // tfplugindocs looks a schema up by the short name (or under registry.terraform.io/hashicorp/).
  schema.provider_schemas = { rigbox: schema.provider_schemas[address] };
  const schemaFile = join(work, 'schema.json');
  writeFileSync(schemaFile, JSON.stringify(schema));

  const site = join(work, 'site');
  cpSync(join(pkgDir, 'examples'), join(site, 'examples'), { recursive: true });
  if (existsSync(join(pkgDir, 'templates')))
    cpSync(join(pkgDir, 'templates'), join(site, 'templates'), { recursive: true });
  const common = ['--provider-dir', site, '--provider-name', 'rigbox', '--providers-schema', schemaFile];
  run(tfplugindocs, ['generate', ...common, '--rendered-provider-name', 'Rigbox'], site);
  run(tfplugindocs, ['validate', ...common], site);

  const generated = join(site, 'docs');
  const target = values['docs-dir'] ?? join(pkgDir, 'docs');
  if (values.check) {
    const stale = diffTrees(generated, target);
    if (stale.length)
      fail(`${target} is stale (run \`npm run docs -w provider\` and commit): ${stale.join(', ')}`);
    console.error(`provider docs: ${target} is up to date and valid`);
  } else {
    rmSync(target, { recursive: true, force: true });
    cpSync(generated, target, { recursive: true });
    console.error(`provider docs: generated and validated ${relative(process.cwd(), target) || target}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** Files that differ, are missing from `b` or are only in `b`. */
function diffTrees(a, b) {
  const fa = files(a);
  const fb = files(b);
  const out = [];
  for (const f of new Set([...fa, ...fb])) {
    if (!fa.includes(f) || !fb.includes(f)) out.push(f);
    else if (!readFileSync(join(a, f)).equals(readFileSync(join(b, f)))) out.push(f);
  }
  return out.sort();
}
