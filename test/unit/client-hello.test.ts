import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { describe, it } from 'node:test';
import {
  ClientHelloError,
  clientHelloMessage,
  GROUP,
  negotiatedServerMode,
  parseClientHello,
} from '../../src/integrations/tls-psk/client-hello.js';
import { clientPskOptions, SERVER_GROUPS, type PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import { pskKeClientHello } from '../../src/integrations/tls-psk/psk-ke-client.js';
import { PskKeSchedule } from '../../src/integrations/tls-psk/tls13-keys.js';

/** The first bytes a real Node TLS 1.3 PSK client sends for `mode`. */
async function realClientHello(mode: PskMode, identity: string): Promise<Buffer> {
  let resolve!: (b: Buffer) => void;
  const got = new Promise<Buffer>((r) => (resolve = r));
  const server = createServer((s) => {
    let seen = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      seen = Buffer.concat([seen, d]);
      if (clientHelloMessage(seen)) {
        resolve(seen);
        s.destroy();
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    ...clientPskOptions(mode),
    pskCallback: () => ({ psk: randomBytes(32), identity }),
  });
  client.on('error', () => undefined);
  const bytes = await got;
  client.destroy();
  await new Promise((r) => server.close(r));
  return bytes;
}

describe('reading a ClientHello to learn the PSK mode (tunnel server)', () => {
  // An OpenSSL client (stunnel's, or Node's TLS) configured as clientPskOptions says.
  it('parses what a real client offers: modes, groups, key shares, PSK identity', async () => {
    const id = randomUUID();
    const ke = parseClientHello(clientHelloMessage(await realClientHello('psk_ke', id))!);
    assert.deepEqual([...ke.pskModes].sort(), [0, 1], 'a psk_ke client allows both, and has no group for DHE');
    assert.deepEqual(ke.supportedGroups, [GROUP.x25519]);
    assert.deepEqual(ke.keyShareGroups, [GROUP.x25519]);
    assert.deepEqual(ke.pskIdentities, [id]);
    assert.equal(negotiatedServerMode(ke, 'psk_ke', SERVER_GROUPS.psk_ke.ids), 'psk_ke');

    const dhe = parseClientHello(clientHelloMessage(await realClientHello('psk_dhe_ke', id))!);
    assert.deepEqual(dhe.pskModes, [1]);
    assert.ok(dhe.supportedGroups.includes(GROUP.secp256r1));
    assert.equal(negotiatedServerMode(dhe, 'psk_dhe_ke', SERVER_GROUPS.psk_dhe_ke.ids), 'psk_dhe_ke');
    assert.equal(
      negotiatedServerMode(dhe, 'psk_ke', SERVER_GROUPS.psk_ke.ids),
      'psk_dhe_ke',
      'stronger, as OpenSSL does',
    );
  });

  it('waits for the whole message, even split over records and reads', async () => {
    const bytes = await realClientHello('psk_ke', randomUUID());
    const whole = clientHelloMessage(bytes)!;
    for (let cut = 0; cut < bytes.length; cut += 7) assert.equal(clientHelloMessage(bytes.subarray(0, cut)), undefined);
    // The same handshake message in two records.
    const half = Math.floor(whole.length / 2);
    const record = (part: Buffer) =>
      Buffer.concat([Buffer.from([22, 3, 1, part.length >> 8, part.length & 255]), part]);
    const split = Buffer.concat([record(whole.subarray(0, half)), record(whole.subarray(half))]);
    assert.ok(clientHelloMessage(split)!.equals(whole));
  });

  it('refuses what is not a ClientHello', () => {
    assert.throws(() => clientHelloMessage(Buffer.from('GET / HTTP/1.1\r\n\r\n')), ClientHelloError);
    assert.throws(() => clientHelloMessage(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])), /not a ClientHello/);
    assert.throws(() => parseClientHello(Buffer.from([1, 0, 0, 10, 3, 3, 1, 2])), /truncated/);
  });

  it('applies OpenSSL’s choice: (EC)DHE whenever offered with a group in common', () => {
    const offer = (pskModes: number[], groups: number[]) => ({
      pskModes,
      supportedGroups: groups,
      keyShareGroups: [],
      pskIdentities: [],
    });
    const ke = SERVER_GROUPS.psk_ke.ids;
    const dhe = SERVER_GROUPS.psk_dhe_ke.ids;
    assert.equal(negotiatedServerMode(offer([0], [GROUP.secp256r1]), 'psk_ke', ke), 'psk_ke');
    assert.equal(negotiatedServerMode(offer([0, 1], [GROUP.x25519]), 'psk_ke', ke), 'psk_ke', 'no group in common');
    assert.equal(negotiatedServerMode(offer([0, 1], [GROUP.secp256r1]), 'psk_ke', ke), 'psk_dhe_ke');
    assert.equal(negotiatedServerMode(offer([1], [GROUP.x25519]), 'psk_ke', ke), undefined, 'nothing possible');
    assert.equal(negotiatedServerMode(offer([0], [GROUP.x25519]), 'psk_dhe_ke', dhe), undefined, 'weaker: refused');
    assert.equal(negotiatedServerMode(offer([1], [GROUP.x25519]), 'psk_dhe_ke', dhe), 'psk_dhe_ke');
    assert.equal(negotiatedServerMode(offer([], []), 'psk_ke', ke), undefined);
  });
});

describe("the psk_ke tunnel client's own ClientHello", () => {
  it('offers psk_ke alone, with no key share and no groups, and its binder is the PSK’s', () => {
    const id = randomUUID();
    const key = randomBytes(32);
    const hello = pskKeClientHello(id, new PskKeSchedule(key));
    const offer = parseClientHello(hello);
    assert.deepEqual(offer.pskModes, [0]);
    assert.deepEqual(offer.keyShareGroups, []);
    assert.deepEqual(offer.supportedGroups, []);
    assert.deepEqual(offer.pskIdentities, [id]);
    // Any server takes it as psk_ke or not at all: no (EC)DHE is possible.
    assert.equal(negotiatedServerMode(offer, 'psk_ke', SERVER_GROUPS.psk_dhe_ke.ids), 'psk_ke');
    assert.equal(negotiatedServerMode(offer, 'psk_dhe_ke', SERVER_GROUPS.psk_dhe_ke.ids), undefined);
    // The binder (last 32 bytes) depends on the key: another key gives another binder.
    const other = pskKeClientHello(id, new PskKeSchedule(randomBytes(32)));
    assert.notDeepEqual(hello.subarray(-32), other.subarray(-32));
  });
});
