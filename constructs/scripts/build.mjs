// Builds the construct library: jsii compile (lib/ and .jsii), then, when the assembly changed,
// jsii-pacmak (the JS tarball and the Python wheel under dist/), then the Python environment that
// examples/python and the tests run in. Every step is skipped when its inputs are unchanged, so
// `npm test` (which builds first) stays fast.
//
// Python is needed for the wheel and the venv. Under CI=true a missing python3 is an error;
// elsewhere it is a warning and the Python parts are skipped (the Python tests then fail, saying so).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePythonEnv, findPython } from './python-env.mjs';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(pkgDir, 'node_modules/.bin', name);
// jsii tools print a banner on every run under Node 20; the project runs on Node 20 by choice.
const env = { ...process.env, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' };

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: pkgDir, env, stdio: 'inherit' });
  if (res.status !== 0) {
    console.error(`constructs: ${cmd} ${args.join(' ')} failed`);
    process.exit(res.status ?? 1);
  }
}

const localBin = (name) => (existsSync(bin(name)) ? bin(name) : join(pkgDir, '../node_modules/.bin', name));

run(localBin('jsii'), [
  '--silence-warnings=reserved-word',
  '--silence-warnings=metadata/missing-dev-dependency',
]);

// What jsii-pacmak packs: the assembly, the compiled code, the package's metadata and README.
function compiledFiles(dir) {
  return readdirSync(join(pkgDir, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) return compiledFiles(rel);
    return /\.(js|d\.ts)$/.test(entry.name) ? [rel] : [];
  });
}
const hash = createHash('sha256');
for (const file of ['.jsii', 'package.json', 'README.md', ...compiledFiles('lib').sort()]) {
  hash.update(`${file}\0`).update(readFileSync(join(pkgDir, file)));
}
const fingerprint = hash.digest('hex');
const stampFile = join(pkgDir, 'dist/.assembly-sha256');
const python = findPython();
const wheelDir = join(pkgDir, 'dist/python');
const haveWheel = existsSync(wheelDir) && readdirSync(wheelDir).some((f) => f.endsWith('.whl'));
const stale =
  !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== fingerprint || (python && !haveWheel);

if (!python) {
  const message = 'python3 (3.9+) with venv and pip was not found; the Python wheel and venv are not built';
  if (process.env.CI === 'true') {
    console.error(`constructs: error: ${message}`);
    process.exit(1);
  }
  console.warn(`constructs: warning: ${message}`);
}

if (stale) {
  const targets = python ? ['js', 'python'] : ['js'];
  run(localBin('jsii-pacmak'), ['--targets', ...targets]);
  mkdirSync(dirname(stampFile), { recursive: true });
  writeFileSync(stampFile, fingerprint);
} else {
  console.error('constructs: library unchanged since the last jsii-pacmak run, packaging skipped');
}

if (python) ensurePythonEnv(python, wheelDir);
