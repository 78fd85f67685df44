/**
 * One side of the native tunnel in a process of its own, for bench/tls-tunnel.ts (stunnel runs as
 * processes too). The first key comes in QKS_BENCH_KEY as `KEY_ID:HEX`; each further line
 * `KEY_ID:HEX` on stdin is a rotation (the key becomes current). QKS_BENCH_MAX_AGE_MS sets the
 * maximum connection age.
 *
 *   node dist/bench/tunnel-side.js client|server psk_ke|psk_dhe_ke LISTEN_PORT CONNECT_PORT
 */
import { createInterface } from 'node:readline';
import type { PskMode } from '../src/integrations/tls-psk/psk-tls.js';
import { TunnelClient, TunnelServer } from '../src/integrations/tls-psk/psk-tunnel.js';
import { KeyRing } from '../src/sae/key-ring.js';

const [role, mode, listen, connect] = process.argv.slice(2);
const ring = new KeyRing();
const addKey = (line: string) => {
  const [keyId, hex] = line.split(':');
  if (keyId && hex) ring.add({ keyId, key: Buffer.from(hex, 'hex') });
};
addKey(process.env['QKS_BENCH_KEY'] ?? '');
createInterface({ input: process.stdin }).on('line', addKey);
const maxAge = Number(process.env['QKS_BENCH_MAX_AGE_MS'] ?? 0);
const age = maxAge > 0 ? { maxConnectionAgeMs: maxAge } : {};
const local = (port: string | undefined) => ({ host: '127.0.0.1', port: Number(port) });
const tunnel =
  role === 'server'
    ? new TunnelServer({ listen: local(listen), target: local(connect), keys: ring, mode: mode as PskMode })
    : new TunnelClient({ listen: local(listen), server: local(connect), keys: ring, mode: mode as PskMode, ...age });
await tunnel.listen();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void tunnel.close().then(() => process.exit(0)));
