/**
 * One side of the native tunnel in a process of its own, for bench/tls-tunnel.ts (stunnel runs as
 * processes too). The key comes in QKS_BENCH_KEY as `KEY_ID:HEX`.
 *
 *   node dist/bench/tunnel-side.js client|server psk_ke|psk_dhe_ke LISTEN_PORT CONNECT_PORT
 */
import type { PskMode } from '../src/integrations/tls-psk/psk-tls.js';
import { TunnelClient, TunnelServer } from '../src/integrations/tls-psk/psk-tunnel.js';
import { KeyRing } from '../src/sae/key-ring.js';

const [role, mode, listen, connect] = process.argv.slice(2);
const [keyId, hex] = (process.env['QKS_BENCH_KEY'] ?? '').split(':');
const ring = new KeyRing();
ring.add({ keyId: keyId!, key: Buffer.from(hex!, 'hex') });
const local = (port: string | undefined) => ({ host: '127.0.0.1', port: Number(port) });
const tunnel =
  role === 'server'
    ? new TunnelServer({ listen: local(listen), target: local(connect), keys: ring, mode: mode as PskMode })
    : new TunnelClient({ listen: local(listen), server: local(connect), keys: ring, mode: mode as PskMode });
await tunnel.listen();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void tunnel.close().then(() => process.exit(0)));
