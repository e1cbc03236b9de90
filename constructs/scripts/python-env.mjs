// The Python environment of one build, for its Python example and the tests: a git-ignored venv
// (<repo>/.tools/cdktf-python or .tools/cdktn-python) with the core package and the null provider
// from PyPI, pinned in the example's requirements.txt, plus the package's own wheel. pip's own
// cache makes a rebuild in a fresh clone quick.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A python3 that has venv and pip, or undefined. */
export function findPython() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python'].filter(Boolean)) {
    const res = spawnSync(
      candidate,
      ['-c', 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)'],
      { stdio: 'ignore' },
    );
    if (res.status === 0) return candidate;
  }
  return undefined;
}

function run(cmd, args) {
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0) {
    console.error(`constructs: ${cmd} ${args.join(' ')} failed`);
    process.exit(res.status ?? 1);
  }
}

const sha = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Makes or updates the venv `flavor.venv` from `flavor.requirements` and the wheel in wheelDir. */
export function ensurePythonEnv(python, wheelDir, flavor) {
  const { venv: VENV, requirements, core } = flavor;
  const wheel = readdirSync(wheelDir).find((f) => f.endsWith('.whl'));
  if (!wheel) throw new Error(`no wheel in ${wheelDir}`);
  const wheelPath = join(wheelDir, wheel);
  const pip = join(VENV, 'bin/pip');
  const stampFile = join(VENV, '.rigbox-stamp.json');
  const stamp = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, 'utf8')) : {};
  const want = { requirements: sha(requirements), wheel: sha(wheelPath) };

  if (!existsSync(pip) || stamp.requirements !== want.requirements) {
    console.error(`constructs: creating the Python venv ${VENV} (${core} from PyPI)`);
    rmSync(VENV, { recursive: true, force: true });
    run(python, ['-m', 'venv', VENV]);
    run(pip, ['install', '-q', '--disable-pip-version-check', '-r', requirements, wheelPath]);
  } else if (stamp.wheel !== want.wheel) {
    run(pip, ['install', '-q', '--disable-pip-version-check', '--no-deps', '--force-reinstall', wheelPath]);
  } else {
    console.error(`constructs: Python venv ${VENV} up to date`);
    return;
  }
  writeFileSync(stampFile, JSON.stringify(want));
}
