// `npm run demo`: the product end to end on this machine (scripts/demo/main.ts).
// Plain JavaScript that any Node can parse, so that an old Node or a missing `npm ci` gets one
// clear line instead of a syntax error or a stack trace; the demo itself is TypeScript, run by tsx.
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(
    `demo: error: Node 20 or newer is needed, this is Node ${process.versions.node} (https://nodejs.org, or nvm install 20)\n`,
  );
  process.exit(1);
}
let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch {
  process.stderr.write('demo: error: the dependencies are not installed; run `npm ci` first\n');
  process.exit(1);
}
const { main } = await tsx.tsImport('./demo/main.ts', import.meta.url);
process.exitCode = await main(process.argv.slice(2));
