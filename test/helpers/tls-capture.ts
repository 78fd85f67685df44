import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTshark } from './tshark.js';

/** What the handshakes on one port showed on the wire. */
export interface HandshakeEvidence {
  /** psk_key_exchange_modes offered in each ClientHello (0 = psk_ke, 1 = psk_dhe_ke). */
  readonly offeredModes: number[][];
  /** Per ClientHello: whether it carried a key_share (51) and a supported_groups (10) extension. */
  readonly clientHellos: Array<{ keyShare: boolean; supportedGroups: boolean }>;
  /** Per ServerHello: whether it carried a key_share (51) and a pre_shared_key (41) extension. */
  readonly serverHellos: Array<{ keyShare: boolean; preSharedKey: boolean }>;
}

/** A tshark capture on loopback, limited to one TCP port (tests run as root, as CI does). */
export class TlsCapture {
  readonly #port: number;
  readonly #dir = mkdtempSync(join(tmpdir(), 'qks-capture-'));
  #tshark: Awaited<ReturnType<typeof startTshark>> | undefined;

  constructor(port: number) {
    this.#port = port;
  }

  get #file(): string {
    return join(this.#dir, 'capture.pcapng');
  }

  async start(): Promise<void> {
    this.#tshark = await startTshark(['tshark', '-i', 'lo', '-f', `tcp port ${this.#port}`, '-w', this.#file, '-q']);
  }

  /** Stops the capture and reads the handshakes from it. */
  async stop(): Promise<HandshakeEvidence> {
    await this.#tshark!.stop();
    const out = spawnSync(
      'tshark',
      [
        '-r',
        this.#file,
        '-d',
        `tcp.port==${this.#port},tls`,
        '-Y',
        'tls.handshake.type == 1 || tls.handshake.type == 2',
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'tls.handshake.type',
        '-e',
        'tls.extension.psk_ke_mode',
        '-e',
        'tls.handshake.extension.type',
      ],
      { encoding: 'utf8' },
    );
    if (process.env['QKS_DEBUG_CAPTURE']) console.error(out.stderr, out.stdout);
    if (!process.env['QKS_DEBUG_CAPTURE']) rmSync(this.#dir, { recursive: true, force: true });
    const evidence: HandshakeEvidence = { offeredModes: [], clientHellos: [], serverHellos: [] };
    for (const line of out.stdout.trim().split('\n').filter(Boolean)) {
      const [type, modes, extensions] = line.split('|');
      const ext = (extensions ?? '').split(',').map(Number);
      if (type === '1') {
        evidence.offeredModes.push((modes ?? '').split(',').filter(Boolean).map(Number));
        evidence.clientHellos.push({ keyShare: ext.includes(51), supportedGroups: ext.includes(10) });
      }
      if (type === '2') evidence.serverHellos.push({ keyShare: ext.includes(51), preSharedKey: ext.includes(41) });
    }
    return evidence;
  }
}

/**
 * Asserts the handshakes captured negotiated `mode`: the (last) ServerHello of each handshake
 * selected the external PSK, with a key_share for psk_dhe_ke and none for psk_ke. A
 * HelloRetryRequest (a ServerHello asking for another key share, without pre_shared_key) may
 * precede it.
 */
export function assertModeOnWire(evidence: HandshakeEvidence, mode: 'psk_ke' | 'psk_dhe_ke', handshakes = 1): void {
  const final = evidence.serverHellos.filter((h) => h.preSharedKey);
  if (final.length !== handshakes) {
    throw new Error(`${handshakes} ServerHello(s) selecting the PSK expected, captured ${final.length}`);
  }
  for (const hello of final) {
    if (hello.keyShare !== (mode === 'psk_dhe_ke')) {
      throw new Error(`ServerHello ${hello.keyShare ? 'has' : 'has no'} key_share: not ${mode}`);
    }
  }
}
