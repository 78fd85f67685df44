import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

/**
 * What HTTP clients never send, sent byte by byte on real TLS connections: whatever Node's parser
 * or Fastify would answer on their own (431, 417, 413, 404, 408...), the SAE gets one of the
 * standard's answers with an ETSI Error body; and slow or numerous clients cannot hold the listener.
 */
describe('the SAE API on the wire: odd requests, slow and numerous clients', () => {
  const MAX_CONNECTIONS = 4;
  const HEADERS_TIMEOUT_MS = 600;
  let sites: TwoSites;
  let port: number;
  let tlsFiles: { ca: Buffer; cert: Buffer; key: Buffer };

  before(async () => {
    sites = await startSites({
      configure: (config) => {
        config.sae_api.connections = {
          max_connections: MAX_CONNECTIONS,
          headers_timeout_ms: HEADERS_TIMEOUT_MS,
          request_timeout_ms: 2 * HEADERS_TIMEOUT_MS,
          max_header_bytes: 8 * 1024,
        };
        config.kme_api.connections = {
          headers_timeout_ms: HEADERS_TIMEOUT_MS,
          request_timeout_ms: 2 * HEADERS_TIMEOUT_MS,
          keep_alive_timeout_ms: HEADERS_TIMEOUT_MS,
        };
      },
    });
    port = sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.sae_api.port;
    const a1 = sites.deployment.saes.find((s) => s.id === 'sae-a1')!;
    tlsFiles = { ca: readFileSync(sites.deployment.ca), cert: readFileSync(a1.cert), key: readFileSync(a1.key) };
    // No TestClient here: its kept-alive connection would count against max_connections.
  });
  after(() => sites.stop());

  /** A TLS connection with sae-a1's certificate (or those given), and everything the server sends on it until it closes. */
  const open = async (to = { port, ...tlsFiles }) => {
    const socket = connect({ host: '127.0.0.1', ...to, servername: 'localhost' });
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const text = () => Buffer.concat(received).toString('latin1');
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('close', () => reject(new Error('closed before the handshake completed')));
    });
    return { socket, closed, text };
  };

  /** The status line and parsed body of the first full response in `text`, or undefined. */
  const firstResponse = (text: string) => {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const head = text.slice(0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (text.length < end + 4 + length) return undefined;
    const body = text.slice(end + 4, end + 4 + length);
    return { status: head.split('\r\n')[0]!, body: body === '' ? undefined : (JSON.parse(body) as unknown) };
  };

  /** Sends raw bytes on a fresh connection and returns the answer, once the server has closed it. */
  const exchange = async (raw: string) => {
    const c = await open();
    c.socket.write(raw);
    await c.closed;
    return firstResponse(c.text());
  };

  /** Sends one request on an open connection and waits for its complete answer. */
  const ask = async (c: Awaited<ReturnType<typeof open>>, raw: string) => {
    const before = c.text().length;
    c.socket.write(raw);
    let answer: ReturnType<typeof firstResponse>;
    await eventually(() => (answer = firstResponse(c.text().slice(before))) !== undefined, 10_000, 'an answer');
    return answer!;
  };

  const STATUS = 'GET /api/v1/keys/sae-b1/status HTTP/1.1\r\nHost: localhost\r\n';

  it('headers or a path too large: 400 with an ETSI body, not 431', async () => {
    const bigHeader = await exchange(`${STATUS}X-Filler: ${'a'.repeat(9000)}\r\n\r\n`);
    assert.deepEqual(bigHeader, {
      status: 'HTTP/1.1 400 Bad Request',
      body: { message: 'request headers or path are too large' },
    });
    const longPath = await exchange(`GET /api/v1/keys/${'b'.repeat(9000)}/status HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    assert.deepEqual(longPath, bigHeader);
  });

  it('an Expect the server does not meet: 400, not 417; 100-continue goes through', async () => {
    const odd = await exchange(`${STATUS}Expect: something-else\r\n\r\n`);
    assert.deepEqual(odd, {
      status: 'HTTP/1.1 400 Bad Request',
      body: { message: 'the Expect header is not supported (only 100-continue)' },
    });
    const body = '{"number": 1}';
    const c = await open();
    try {
      const answer = await ask(
        c,
        'POST /api/v1/keys/sae-b1/enc_keys HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
          `Expect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      assert.equal(answer.status, 'HTTP/1.1 100 Continue');
      await eventually(() => /HTTP\/1\.1 200 OK/.test(c.text()), 10_000, 'the keys');
    } finally {
      c.socket.destroy();
    }
  });

  it('malformed requests, unknown methods and versions, over-long bodies, unknown routes: 400 with an ETSI body', async () => {
    const cases = {
      'garbage request line': 'NOT A REQUEST\r\n\r\n',
      'unknown method': 'FROB /api/v1/keys/sae-b1/status HTTP/1.1\r\nHost: localhost\r\n\r\n',
      'an unknown HTTP version': 'GET /api/v1/keys/sae-b1/status HTTP/7.3\r\nHost: localhost\r\n\r\n',
      'both Content-Length and chunked':
        'POST /api/v1/keys/sae-b1/enc_keys HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'a body over the limit':
        'POST /api/v1/keys/sae-b1/enc_keys HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        `Connection: close\r\nContent-Length: ${70 * 1024}\r\n\r\n${' '.repeat(70 * 1024)}`,
      'an unknown route': 'GET /nowhere HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      'a method the route lacks':
        'DELETE /api/v1/keys/sae-b1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      OPTIONS: 'OPTIONS /api/v1/keys/sae-b1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
    };
    for (const [what, raw] of Object.entries(cases)) {
      const answer = await exchange(raw);
      assert.equal(answer?.status, 'HTTP/1.1 400 Bad Request', what);
      // The ETSI Error body: a message and nothing else (not Node's or Fastify's own fields).
      const body = answer.body as Record<string, unknown>;
      assert.deepEqual([Object.keys(body), typeof body['message']], [['message'], 'string'], what);
    }
  });

  it('a client that never finishes its headers is answered 400 and cut off after headers_timeout_ms', async () => {
    const c = await open();
    c.socket.write(`${STATUS}X-Slow: 1\r\n`); // ... and nothing more
    await c.closed; // the test's own time-out catches a server that waits for ever
    assert.deepEqual(firstResponse(c.text()), {
      status: 'HTTP/1.1 400 Bad Request',
      body: { message: 'request not received in time' },
    });
  });

  it('a client that never finishes its body is cut off too', async () => {
    const c = await open();
    c.socket.write(
      'POST /api/v1/keys/sae-b1/enc_keys HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100\r\n\r\n{"num',
    );
    await c.closed;
    assert.deepEqual(firstResponse(c.text()), {
      status: 'HTTP/1.1 400 Bad Request',
      body: { message: 'request not received in time' },
    });
  });

  it('connections over max_connections are closed at once; those open keep working', async () => {
    // Connections of the tests before may take a moment to be gone at the server: fill up once they are.
    const fill = async () => {
      const opened: Array<Awaited<ReturnType<typeof open>>> = [];
      try {
        for (let i = 0; i < MAX_CONNECTIONS; i++) {
          const c = await open();
          opened.push(c);
          assert.equal((await ask(c, `${STATUS}\r\n`)).status, 'HTTP/1.1 200 OK', `connection ${i + 1}`);
        }
        return opened;
      } catch {
        for (const c of opened) c.socket.destroy();
        return undefined;
      }
    };
    let held: Awaited<ReturnType<typeof fill>> = [];
    await eventually(async () => (held = await fill()) !== undefined, 10_000, `${MAX_CONNECTIONS} connections`);
    held ??= [];
    try {
      for (let i = 0; i < 3; i++) {
        const extra = connect({ host: '127.0.0.1', port, ...tlsFiles, servername: 'localhost' });
        extra.on('error', () => undefined);
        const outcome = await new Promise<string>((resolve) => {
          extra.once('secureConnect', () => resolve('handshake completed'));
          extra.once('close', () => resolve('closed'));
        });
        extra.destroy();
        assert.equal(outcome, 'closed', `connection ${MAX_CONNECTIONS + i + 1} is refused`);
      }
      for (const c of held) assert.equal((await ask(c, `${STATUS}\r\n`)).status, 'HTTP/1.1 200 OK', 'still served');
    } finally {
      for (const c of held) c.socket.destroy();
    }
    // Once they are gone, new connections are taken again.
    await eventually(async () => {
      const c = await open().catch(() => undefined);
      c?.socket.destroy();
      return c !== undefined;
    });
  });

  it('the KME channel cuts off a slow client too, while the peer stream outlives its timeouts', async () => {
    const kmeApi = sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.kme_api;
    const files = { ca: readFileSync(kmeApi.ca), cert: readFileSync(kmeApi.cert), key: readFileSync(kmeApi.key) };
    const c = await open({ port: kmeApi.port, ...files });
    c.socket.write('POST /kme/v1/reservations HTTP/1.1\r\nHost: localhost\r\n');
    await c.closed;
    assert.deepEqual(firstResponse(c.text()), {
      status: 'HTTP/1.1 400 Bad Request',
      body: { message: 'request not received in time' },
    });
    // Longer than every timeout of the channel's listener has passed: keys still go from KME to KME.
    const a1 = sites.sae('sae-a1');
    const b1 = sites.sae('sae-b1');
    const sent = await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 1 });
    assert.equal(sent.status, 200);
    const ids = { key_IDs: (sent.body as { keys: Array<{ key_ID: string }> }).keys.map((k) => ({ key_ID: k.key_ID })) };
    const fetched = await b1.post('/api/v1/keys/sae-a1/dec_keys', ids);
    assert.equal(fetched.status, 200);
  });
});
