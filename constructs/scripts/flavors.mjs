// The two builds of the one source tree in constructs/src: the package for cdktf (built in place)
// and the package for cdktn (CDK Terrain, the community continuation of cdktf), whose sources are
// generated into constructs/cdktn/src at build time with the cdktf imports rewritten. A jsii
// assembly names its core package in its types, so one package cannot serve both.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONSTRUCTS_DIR = fileURLToPath(new URL('..', import.meta.url));
export const REPO = join(CONSTRUCTS_DIR, '..');

export const FLAVORS = {
  cdktf: {
    core: 'cdktf',
    pkgDir: CONSTRUCTS_DIR,
    generated: false,
    venv: join(REPO, '.tools/cdktf-python'),
    requirements: join(REPO, 'examples/python/requirements.txt'),
  },
  cdktn: {
    core: 'cdktn',
    pkgDir: join(CONSTRUCTS_DIR, 'cdktn'),
    generated: true,
    venv: join(REPO, '.tools/cdktn-python'),
    requirements: join(REPO, 'examples/python-cdktn/requirements.txt'),
  },
};

/** The flavor named on the command line (default cdktf), or exit saying which exist. */
export function flavorFromArgs(arg) {
  const name = arg ?? 'cdktf';
  const flavor = FLAVORS[name];
  if (!flavor) {
    console.error(`constructs: unknown build "${name}"; expected one of ${Object.keys(FLAVORS).join(', ')}`);
    process.exit(2);
  }
  return { name, ...flavor };
}
