/**
 * The machine's ceiling for any gateway: a bare node:http reverse proxy (no auth, no storage, no
 * framework) in its own process, forwarding to the stand-in upstream with keep-alive. The gateway
 * cannot beat it; `through bare proxy / direct` shows what three processes on this machine's cores
 * allow before the gateway does any work.
 */
import http from 'node:http';

const target = new URL(process.argv[2] as string);
const agent = new http.Agent({ keepAlive: true });
const server = http.createServer((req, res) => {
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      path: req.url,
      method: req.method,
      headers: req.headers,
      agent,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`http://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
