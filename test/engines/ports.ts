// Shared with `npm run demo`, which may not import test code.
export { freePort, isPortFree } from '../../scripts/lib/ports.js';
