/**
 * What the IPsec agent needs of an IKE daemon, whichever it is: PPKs installed under their PPK_ID
 * (the QKD key ID), and new IKE SAs brought up with a given PPK. strongSwan and Libreswan each
 * implement it.
 */
export interface IpsecConnection {
  /** The connection's name in the daemon. */
  readonly name: string;
  readonly localAddr: string;
  readonly remoteAddr: string;
  /** IKE identities of the two gateways (e.g. `a.qkd.test`). */
  readonly localId: string;
  readonly remoteId: string;
  /** The IKE authentication secret (PSK auth). The PPK is mixed in on top of it. */
  readonly ikeSecret: string;
  /** Traffic selectors (subnets, e.g. `10.99.1.1/32`). */
  readonly localTs: string;
  readonly remoteTs: string;
  readonly ikeProposal?: string;
  readonly espProposal?: string;
  /** true (default): a peer without the PPK is refused. false: falls back to no PPK (a downgrade). */
  readonly ppkRequired: boolean;
}

export interface Ppk {
  /** The PPK_ID: the QKD key ID. */
  readonly id: string;
  /** Key bytes; never logged. */
  readonly key: Buffer;
}

export interface SaState {
  /** The daemon's name for this IKE SA (strongSwan unique ID, Libreswan serial). */
  readonly ikeId: string;
  readonly state: string;
  /** Whether the SA's authentication used a PPK, as the daemon reports it. */
  readonly ppk: boolean;
  /** Bytes carried by its Child SAs, both ways. */
  readonly bytes: number;
  readonly children: number;
}

export interface IpsecGateway {
  readonly kind: 'strongswan' | 'libreswan';
  /** Connects to the daemon and loads the connection's IKE secret. */
  open(): Promise<void>;
  /**
   * Makes the daemon hold these PPKs (every key the SAE pair holds, the current one last) and use
   * the current one for new IKE SAs of the connection.
   */
  setPpks(ppks: readonly Ppk[]): Promise<void>;
  /**
   * Brings up a new IKE SA (and its Child SA) with the current PPK; resolves with its ID.
   * `lastTry`: no retry follows if this fails, so a daemon that had to close the old SA first
   * brings it back.
   */
  establish(opts?: { lastTry?: boolean }): Promise<string>;
  /** Closes an IKE SA (after its successor is up). */
  terminate(ikeId: string): Promise<void>;
  /** The connection's IKE SAs now. */
  sas(): Promise<SaState[]>;
  /** Calls `onDown` with the ID of each of the connection's IKE SAs that goes down, as it goes. */
  watch?(onDown: (ikeId: string) => void): Promise<void>;
  /** Loads again what someone else unloaded from the daemon (an operator's reload): true if anything. */
  restoreIfUnloaded?(): Promise<boolean>;
  close(): Promise<void>;
}

/** The daemon said no: absent, refused, or the peer failed authentication (e.g. another PPK). */
export class IpsecError extends Error {
  constructor(
    readonly code: 'daemon_unavailable' | 'auth_failed' | 'establish_failed' | 'daemon_error',
    message: string,
    /** A daemon that had to close the old SA first brought it back with the old PPK: its ID. */
    readonly restoredIkeId?: string,
  ) {
    super(message);
  }
}
