/** The SAE's own certificate and key, and the CA its peers' certificates come from (PEM). */
export interface SaeTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly ca: string | Buffer;
  /**
   * The CA's revocation list (PEM file): the peer SAE's certificate is checked against it at each
   * handshake, and an open connection of a certificate it comes to name is closed. Reloaded when
   * the file changes; once it expires, handshakes fail (as at the KMEs).
   */
  readonly crlFile?: string;
}

export interface AgreedKey {
  readonly keyId: string;
  /** Key bytes: hand them to the consumer, never to a log. */
  readonly key: Buffer;
}

export interface AgreedKeys {
  readonly exchange: string;
  readonly peer: string;
  readonly keys: readonly AgreedKey[];
  /** Milliseconds: time at the KME, and the whole exchange as this side saw it. */
  readonly timings: { readonly kmeMs: number; readonly totalMs: number; readonly [step: string]: number };
}
