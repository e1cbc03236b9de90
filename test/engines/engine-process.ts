// Shared with `npm run demo`, which may not import test code.
export {
  type EngineProcess,
  killOnExit,
  spawnEngine,
  toolPath,
  trackScratchDir,
  waitUntilReady,
} from '../../scripts/lib/engine-process.js';
