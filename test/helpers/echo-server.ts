import { createServer, type Server } from 'node:net';

/**
 * A plaintext echo service on loopback: the target behind a tunnel. A peer that resets the
 * connection (as a refused tunnel does) is no error here.
 */
export async function startEcho(): Promise<Server> {
  const server = createServer((s) => {
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
