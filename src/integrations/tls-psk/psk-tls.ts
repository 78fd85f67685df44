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
 * The server's (EC)DHE groups, by OpenSSL name and IANA number. For psk_ke the server has P-256
 * only and the client X25519 only: no group in common, so OpenSSL (which cannot prefer psk_ke)
 * has to pick it. The numbers let the server tell which mode a ClientHello will get.
 */
export const SERVER_GROUPS: Record<PskMode, { readonly curves: string; readonly ids: readonly number[] }> = {
  psk_ke: { curves: 'P-256', ids: [23] },
  psk_dhe_ke: { curves: 'X25519:P-256:P-384', ids: [29, 23, 24] },
};

/** For psk_ke, both sides allow a handshake without (EC)DHE and are given no group in common. */
export function serverPskOptions(mode: PskMode): TlsOptions {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: SUITES,
    secureOptions: NO_RESUMPTION | (mode === 'psk_ke' ? constants.SSL_OP_ALLOW_NO_DHE_KEX : 0),
    ecdhCurve: SERVER_GROUPS[mode].curves,
  };
}

/**
 * An OpenSSL client's options. The tunnel client uses them for psk_dhe_ke only: for psk_ke OpenSSL
 * would still offer psk_dhe_ke and a key share, so it has a client of its own (psk-ke-client.ts).
 */
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
 * (Node shows the key exchange only to clients; the tunnel server reads the ClientHello instead,
 * see client-hello.ts.)
 */
export function negotiatedMode(socket: TLSSocket): PskMode {
  const info = socket.getEphemeralKeyInfo();
  return info && Object.keys(info).length > 0 ? 'psk_dhe_ke' : 'psk_ke';
}

/** psk_dhe_ke is psk_ke plus (EC)DHE; a handshake weaker than configured is refused. */
export function modeAcceptable(configured: PskMode, negotiated: PskMode): boolean {
  return configured === 'psk_ke' || negotiated === 'psk_dhe_ke';
}
