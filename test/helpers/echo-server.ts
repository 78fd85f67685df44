import { connect, createServer, type Server } from 'node:net';

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

/** Sends `data` to a local port and resolves with what came back once as much returned, or the connection ended. */
export function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(data));
    const chunks: Buffer[] = [];
    const done = () => resolve(Buffer.concat(chunks));
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (Buffer.concat(chunks).length >= data.length) {
        s.end();
        done();
      }
    });
    s.on('error', done);
    s.on('close', done);
  });
}
