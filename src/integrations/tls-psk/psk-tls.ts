import { constants } from 'node:crypto';
import type { ConnectionOptions, TlsOptions, TLSSocket } from 'node:tls';

/**
 * TLS 1.3 keyed by an external pre-shared key (RFC 8446): `psk_ke` uses the PSK alone (safe
 * against a quantum adversary as long as the key is), `psk_dhe_ke` mixes in an (EC)DHE exchange.
 */
export type PskMode = 'psk_ke' | 'psk_dhe_ke';

/** Node can do PSK only with SHA-256 suites. */
const SUITES = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';
/** No tickets: a resumed session would not be keyed from the current QKD key. */
const NO_RESUMPTION = constants.SSL_OP_NO_TICKET;

/**
 * For psk_ke, both sides allow a handshake without (EC)DHE and are given no group in common, so
 * OpenSSL (which cannot prefer psk_ke) has to pick it.
 */
export function serverPskOptions(mode: PskMode): TlsOptions {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: SUITES,
    secureOptions: NO_RESUMPTION | (mode === 'psk_ke' ? constants.SSL_OP_ALLOW_NO_DHE_KEX : 0),
    ...(mode === 'psk_ke' ? { ecdhCurve: 'P-256' } : {}),
  };
}

export function clientPskOptions(mode: PskMode): ConnectionOptions {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: SUITES,
    secureOptions: NO_RESUMPTION | (mode === 'psk_ke' ? constants.SSL_OP_ALLOW_NO_DHE_KEX : 0),
    ...(mode === 'psk_ke' ? { ecdhCurve: 'X25519' } : {}),
    // No certificates in a PSK handshake: the key authenticates the peer.
    checkServerIdentity: () => undefined,
  };
}

/**
 * The mode a client's finished handshake used: with no ephemeral key exchange it was psk_ke.
 * (Node shows the key exchange only to clients; a server enforces its mode through OpenSSL:
 * without SSL_OP_ALLOW_NO_DHE_KEX it refuses handshakes that have no (EC)DHE.)
 */
export function negotiatedMode(socket: TLSSocket): PskMode {
  const info = socket.getEphemeralKeyInfo();
  return info && Object.keys(info).length > 0 ? 'psk_dhe_ke' : 'psk_ke';
}

/** psk_dhe_ke is psk_ke plus (EC)DHE; a handshake weaker than configured is refused. */
export function modeAcceptable(configured: PskMode, negotiated: PskMode): boolean {
  return configured === 'psk_ke' || negotiated === 'psk_dhe_ke';
}
