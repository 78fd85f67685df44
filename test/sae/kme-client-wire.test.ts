import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initDeployment } from '../../src/cli/init.js';
import { KmeClient, KmeError } from '../../src/sae/kme-client.js';

/**
 * KmeClient against a real HTTPS server (with a deployment's KME certificate) that answers as told
 * and counts what it sees: requests, connections, when they came.
 */
describe('KmeClient on the wire: retries, keep-alive, timeouts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-kme-client-'));
  let files: { ca: string; cert: string; key: string; serverCert: Buffer; serverKey: Buffer };
  before(async () => {
    const deployment = await initDeployment({ dir, kmes: ['kme-a'], saesPerKme: 1 });
    const sae = deployment.saes[0]!;
    const pki = join(dir, 'pki', 'kme-a');
    files = {
      ca: deployment.ca,
      cert: sae.cert,
      key: sae.key,
      serverCert: readFileSync(join(pki, 'sae-api.pem')),
      serverKey: readFileSync(join(pki, 'sae-api.key')),
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A server whose n-th answer (from 0) is `answers[n]` (the last one repeats), or none. */
  async function scripted(answers: Array<{ status: number; body?: unknown } | 'hang'>) {
    const seen = { requests: [] as number[], connections: 0, paths: [] as string[] };
    const sockets = new Set<Socket>();
    const server: Server = createServer(
      { cert: files.serverCert, key: files.serverKey, ca: readFileSync(files.ca), requestCert: true },
      (req, res) => {
        const answer = answers[Math.min(seen.requests.length, answers.length - 1)]!;
        seen.requests.push(Date.now());
        seen.paths.push(`${req.method} ${req.url}`);
        req.resume();
        if (answer === 'hang') return;
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
      },
    );
    server.on('secureConnection', (s) => {
      seen.connections++;
      sockets.add(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const close = async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    };
    return { url, seen, close };
  }
  const client = (url: string, extra: Partial<ConstructorParameters<typeof KmeClient>[0]> = {}) =>
    new KmeClient({ url, ca: files.ca, cert: files.cert, key: files.key, retryBaseMs: 50, ...extra });
  const container = () => ({ keys: [{ key_ID: randomUUID(), key: randomBytes(32).toString('base64') }] });

  it('retries a 503 with growing backoff on one kept-alive connection, then succeeds', async () => {
    const busy = { status: 503, body: { message: 'not enough key material' } };
    const server = await scripted([busy, busy, busy, { status: 200, body: container() }]);
    const kme = client(server.url, { retries: 5 });
    try {
      const got = await kme.getKeys('sae-b1', { number: 1 });
      assert.equal(got.keys.length, 1);
      assert.equal(server.seen.requests.length, 4, 'three 503s, then the answer');
      assert.equal(server.seen.connections, 1, 'all on one kept-alive connection');
      const gaps = server.seen.requests.slice(1).map((t, i) => t - server.seen.requests[i]!);
      // Base 50 ms, doubling, with jitter of 0.5–1.5: at least 25, 50, 100 ms.
      assert.ok(gaps[0]! >= 20 && gaps[1]! >= 45 && gaps[2]! >= 95, `gaps ${gaps.join(', ')} ms`);
      assert.ok(gaps[2]! > gaps[0]!, 'the backoff grows');
    } finally {
      await kme.close();
      await server.close();
    }
  });

  it('gives up after its retries with the KME’s message; never retries a 400 or a 401', async () => {
    const server = await scripted([{ status: 503, body: { message: 'peer KME kme-b is unreachable' } }]);
    const kme = client(server.url, { retries: 2 });
    try {
      await assert.rejects(kme.status('sae-b1'), (err: KmeError) => {
        assert.equal(err.status, 503);
        assert.equal(err.message, 'peer KME kme-b is unreachable');
        return true;
      });
      assert.equal(server.seen.requests.length, 3, 'one try and two retries');
    } finally {
      await kme.close();
      await server.close();
    }
    for (const answer of [
      { status: 400, body: { message: 'size shall be a multiple of 8', details: [{ x: 1 }] } },
      { status: 401 },
    ]) {
      const s = await scripted([answer]);
      const k = client(s.url, { retries: 5 });
      try {
        await assert.rejects(k.getKeys('sae-b1', { size: 7 }), (err: KmeError) => err.status === answer.status);
        assert.equal(s.seen.requests.length, 1, `no retry of a ${answer.status}`);
      } finally {
        await k.close();
        await s.close();
      }
    }
  });

  it('times out a KME that does not answer', async () => {
    const server = await scripted(['hang']);
    const kme = client(server.url, { timeoutMs: 300, retries: 0 });
    try {
      const started = Date.now();
      await assert.rejects(kme.status('sae-b1'), /timeout/i);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 2000, `gave up after ${elapsed} ms (timeout 300 ms)`);
    } finally {
      await kme.close();
      await server.close();
    }
  });

  it('sends each call as the standard says: paths, GET query forms, kept-alive connections', async () => {
    const server = await scripted([{ status: 200, body: container() }]);
    const kme = client(server.url);
    const id = randomUUID();
    try {
      await kme.status('sae b1');
      await kme.getKeys('sae-b1', { number: 2 });
      await kme.getKeysByQuery('sae-b1', 3, 128);
      await kme.getKeysWithIds('sae-a1', [id]);
      await kme.getKeyWithId('sae-a1', id);
      assert.deepEqual(server.seen.paths, [
        'GET /api/v1/keys/sae%20b1/status',
        'POST /api/v1/keys/sae-b1/enc_keys',
        'GET /api/v1/keys/sae-b1/enc_keys?number=3&size=128',
        'POST /api/v1/keys/sae-a1/dec_keys',
        `GET /api/v1/keys/sae-a1/dec_keys?key_ID=${id}`,
      ]);
      for (let i = 0; i < 10; i++) await kme.status('sae-b1');
      // Keep-alive: connections do not grow with calls. (undici opens a second connection for the
      // call right after the first one; from then on it reuses them.)
      assert.ok(server.seen.connections <= 2, `15 calls on ${server.seen.connections} connections`);
    } finally {
      await kme.close();
      await server.close();
    }
  });
});
