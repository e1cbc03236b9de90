// Shared with `npm run demo`, which may not import test code.
export { type MotoEngine, startMoto } from '../../scripts/lib/moto.js';
