// Builds one package of the construct library: `node scripts/build.mjs [cdktf|cdktn]` (default
// cdktf; constructs/cdktn's `npm run build` passes cdktn). Both come from the one source tree in
// constructs/src; for cdktn its sources are generated first (generate-cdktn.mjs).
//
// Steps, each skipped when its inputs are unchanged so that `npm test` (which builds first) stays
// fast: jsii compile (lib/ and .jsii), jsii-pacmak (the JS tarball and the Python wheel under
// dist/), then the Python environment that the package's Python example and the tests run in.
//
// Python is needed for the wheel and the venv. Under CI=true a missing python3 is an error;
// elsewhere it is a warning and the Python parts are skipped (the Python tests then fail, saying so).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CONSTRUCTS_DIR, flavorFromArgs, REPO } from './flavors.mjs';
import { generateCdktnSources } from './generate-cdktn.mjs';
import { ensurePythonEnv, findPython } from './python-env.mjs';

const flavor = flavorFromArgs(process.argv[2]);
const { pkgDir } = flavor;
const say = (message) => console.error(`constructs (${flavor.name}): ${message}`);

// A build for one use only (`npm run demo` runs the cdktf TypeScript example): RIGBOX_CONSTRUCTS=cdktf
// builds that package alone, and RIGBOX_CONSTRUCTS_TARGETS=js leaves out the Python wheel and venv.
// A later full build does what was left out (the stamps below say what is current).
const only = process.env.RIGBOX_CONSTRUCTS;
if (only && only !== flavor.name) {
  say(`skipped (RIGBOX_CONSTRUCTS=${only})`);
  process.exit(0);
}
const pythonWanted = process.env.RIGBOX_CONSTRUCTS_TARGETS !== 'js';
// jsii tools print a banner on every run under Node 20; the project runs on Node 20 by choice.
const env = { ...process.env, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' };

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: pkgDir, env, stdio: 'inherit' });
  if (res.status !== 0) {
    say(`${cmd} ${args.join(' ')} failed`);
    process.exit(res.status ?? 1);
  }
}

/** A jsii tool from the nearest node_modules/.bin (npm may hoist it to the repo root). */
function localBin(name) {
  const dirs = [pkgDir, CONSTRUCTS_DIR, REPO].map((dir) => join(dir, 'node_modules/.bin', name));
  return dirs.find((path) => existsSync(path)) ?? name;
}

function filesUnder(dir, test) {
  if (!existsSync(join(pkgDir, dir))) return [];
  return readdirSync(join(pkgDir, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) return filesUnder(rel, test);
    return test(entry.name) ? [rel] : [];
  });
}

/** A digest of files (relative to the package) and extra strings. */
function fingerprint(files, extra = []) {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(join(pkgDir, file)));
  for (const value of extra) hash.update(`${value}\0`);
  return hash.digest('hex');
}

const stamp = (name) => join(pkgDir, 'dist', name);
const stampSays = (name, value) => existsSync(stamp(name)) && readFileSync(stamp(name), 'utf8') === value;
function writeStamp(name, value) {
  mkdirSync(dirname(stamp(name)), { recursive: true });
  writeFileSync(stamp(name), value);
}

// Several people (and test runs) may build the same checkout at once: one build per package at a
// time, or two jsii-pacmak runs or two venv creations would trip over each other's files.
const lockDir = join(pkgDir, 'dist/.build-lock');
function holdLock() {
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (let announced = false; ; ) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      process.on('exit', () => rmSync(lockDir, { recursive: true, force: true }));
      return;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
    } catch {}
    const alive = (() => {
      try {
        process.kill(holder, 0);
        return true;
      } catch {
        return false;
      }
    })();
    if (Number.isInteger(holder) && !alive) {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      say(`another build (pid ${holder}) has held ${lockDir} for 10 minutes; giving up`);
      process.exit(1);
    }
    if (!announced) say(`waiting for another build of this package (pid ${holder})`);
    announced = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
}
holdLock();

if (flavor.generated) {
  const changed = generateCdktnSources(pkgDir);
  if (changed > 0) say(`generated src/ from constructs/src (${changed} files changed)`);
}

// jsii compile: its inputs are the sources, the manifest and README (both go into the assembly),
// and the versions of the packages whose assemblies it reads.
const require = createRequire(join(pkgDir, 'package.json'));
const versionOf = (name) => `${name}@${require(`${name}/package.json`).version}`;
const compileInputs = fingerprint(
  ['package.json', 'README.md', ...filesUnder('src', (f) => f.endsWith('.ts')).sort()],
  [versionOf(flavor.core), versionOf('constructs'), versionOf('jsii')],
);
if (stampSays('.inputs-sha256', compileInputs) && existsSync(join(pkgDir, '.jsii'))) {
  say('sources unchanged since the last jsii compile, compile skipped');
} else {
  run(localBin('jsii'), [
    '--silence-warnings=reserved-word',
    '--silence-warnings=metadata/missing-dev-dependency',
  ]);
  writeStamp('.inputs-sha256', compileInputs);
}

// What jsii-pacmak packs: the assembly, the compiled code, the package's metadata and README.
const assembly = fingerprint([
  '.jsii',
  'package.json',
  'README.md',
  ...filesUnder('lib', (f) => /\.(js|d\.ts)$/.test(f)).sort(),
]);
const python = pythonWanted ? findPython() : undefined;
const wheelDir = join(pkgDir, 'dist/python');
const haveWheel = existsSync(wheelDir) && readdirSync(wheelDir).some((f) => f.endsWith('.whl'));

if (!python && pythonWanted) {
  const message = 'python3 (3.10+) with venv and pip was not found; the Python wheel and venv are not built';
  if (process.env.CI === 'true') {
    say(`error: ${message}`);
    process.exit(1);
  }
  say(`warning: ${message}`);
}

if (!stampSays('.assembly-sha256', assembly) || (python && !haveWheel)) {
  run(localBin('jsii-pacmak'), ['--targets', ...(python ? ['js', 'python'] : ['js'])]);
  writeStamp('.assembly-sha256', assembly);
} else {
  say('library unchanged since the last jsii-pacmak run, packaging skipped');
}

if (python) ensurePythonEnv(python, wheelDir, flavor);
