/**
 * The stand-in upstream in a process of its own, so it does not share the gateway's event loop.
 * Argument: milliseconds to wait before answering each call (0: answer at once).
 */
import { UpstreamStandIn } from '../../test/support/upstream-standin.js';

const upstream = await new UpstreamStandIn().start();
upstream.answerDelayMs = Number(process.argv[2] ?? 0);
// Keep memory flat over a long run: the benchmark does not inspect the recorded calls.
setInterval(() => upstream.calls.splice(0), 1000).unref();
process.stdout.write(`${upstream.url}\n`);
process.on('SIGTERM', async () => {
  await upstream.stop();
  process.exit(0);
});
