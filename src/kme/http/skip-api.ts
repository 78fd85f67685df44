import { constants, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../../domain/access-policy.js';
import { QksError } from '../../domain/errors.js';
import type { KeyLimits } from '../../domain/limits.js';
import type { KeyService } from '../key-service.js';

/**
 * Cisco's Secure Key Integration Protocol (SKIP), key-provider side, as draft-cisco-skip-02
 * describes it (continued as draft-singh-skip-00): GET /capabilities, /key, /key/{keyId},
 * /entropy over TLS with an external PSK. A SKIP client (a router) is an SAE: its PSK identity
 * names the SAE, whose ID is the localSystemID; a remoteSystemID is the SAE of the other router.
 * Keys are ETSI 014 keys of the KME's key service, so they reach the other site directly or
 * through relays and are delivered once at each end. See docs/skip.md.
 */
export const SKIP_DRAFT = 'draft-cisco-skip-02';

/** One SKIP client: the PSK identity it presents, the SAE it acts as, its PSK. */
export interface SkipClient {
  readonly identity: string;
  readonly sae: string;
  readonly psk: Buffer;
}

export interface SkipApiOptions {
  readonly clients: readonly SkipClient[];
  readonly keys: KeyService;
  readonly access: AccessPolicy;
  readonly limits: KeyLimits;
  /** Every SAE of the deployment: the remote systems a client may name. */
  readonly saes: () => readonly string[];
  readonly log: Logger;
  readonly now?: () => number;
}

/**
 * The draft's suites: TLS 1.2 DHE-PSK (AES-256, both RECOMMENDED). Its REQUIRED TLS 1.3 suite
 * TLS_AES_256_GCM_SHA384 cannot be served: Node's PSK server callback gives OpenSSL a SHA-256 PSK,
 * so TLS 1.3 works only with TLS_AES_128_GCM_SHA256, offered as well (docs/skip.md).
 */
export const SKIP_CIPHERS = 'DHE-PSK-AES256-CBC-SHA384:DHE-PSK-AES256-CBC-SHA:TLS_AES_128_GCM_SHA256';
export const DEFAULT_KEY_BITS = 256; // the draft's default key length
export const DEFAULT_ENTROPY_BITS = 256;
const MAX_ENTROPY_BITS = 8192;

/** A refusal with the draft's status code; the message is for the client and the log. */
class SkipError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const KEY_ID = /^[0-9a-fA-F]{32}$/;

/** A QKS key ID (a UUID) as SKIP's hexadecimal keyId of 128 bits, and back. */
export const toSkipKeyId = (uuid: string) => uuid.replaceAll('-', '').toLowerCase();
const fromSkipKeyId = (hex: string) =>
  [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-').toLowerCase();

export function buildSkipApi(opts: SkipApiOptions): Server {
  const byIdentity = new Map(opts.clients.map((c) => [c.identity, c]));
  const callerOf = new WeakMap<TLSSocket, SkipClient>();
  const server = createServer({
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: SKIP_CIPHERS,
    dhparam: 'auto',
    // No resumption: every connection proves the PSK again.
    secureOptions: constants.SSL_OP_NO_TICKET,
    pskCallback: (socket: TLSSocket, identity: string) => {
      const client = byIdentity.get(identity);
      if (!client) {
        opts.log.warn({ identity }, 'SKIP: unknown PSK identity');
        return null;
      }
      callerOf.set(socket, client);
      return client.psk;
    },
  });
  server.on('tlsClientError', (err) => opts.log.info({ reason: err.message }, 'SKIP: TLS handshake refused'));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const caller = callerOf.get(req.socket as TLSSocket);
    handle(opts, caller, req)
      .then((body) => send(res, 200, body))
      .catch((err: unknown) => {
        const refusal = toSkipError(err);
        if (refusal.status === 500) opts.log.error({ err: (err as Error).message, url: pathOf(req) }, 'SKIP failed');
        else opts.log.info({ status: refusal.status, reason: refusal.message, url: pathOf(req) }, 'SKIP refused');
        if (refusal.status === 405) res.setHeader('Allow', 'GET');
        send(res, refusal.status, { message: refusal.message });
      });
  });
  return server;
}

const pathOf = (req: IncomingMessage) => (req.url ?? '').split('?')[0];

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Statuses only from the draft's tables: 404 (no such path), 405 (not GET), 400 (a malformed
 * request, an unknown system, a key not found), 500 (the key could not be read), 503 (no entropy).
 */
function toSkipError(err: unknown): SkipError {
  if (err instanceof SkipError) return err;
  if (err instanceof QksError) {
    switch (err.code) {
      case 'BAD_REQUEST':
      case 'KEYS_NOT_FOUND':
      case 'UNAUTHORIZED':
        return new SkipError(400, err.code === 'KEYS_NOT_FOUND' ? 'key not found' : err.message);
      default:
        return new SkipError(500, `the key could not be read: ${err.message}`);
    }
  }
  return new SkipError(500, 'internal error');
}

async function handle(opts: SkipApiOptions, caller: SkipClient | undefined, req: IncomingMessage): Promise<unknown> {
  const url = new URL(req.url ?? '/', 'https://skip.invalid');
  const route = routeOf(url.pathname);
  if (!route) throw new SkipError(404, 'no such path');
  if (req.method !== 'GET') throw new SkipError(405, 'only GET is supported');
  if (!caller) throw new SkipError(500, 'connection without a PSK identity');
  const query = queryOf(url, route.params);
  switch (route.name) {
    case 'capabilities':
      return capabilities(opts, caller);
    case 'entropy':
      return entropy(query['minentropy']);
    case 'new-key':
      return newKey(opts, caller, remoteOf(opts, caller, query), query['size']);
    case 'key-by-id':
      return keyById(opts, caller, remoteOf(opts, caller, query), route.keyId!);
  }
}

function routeOf(path: string): { name: string; params: string[]; keyId?: string } | null {
  if (path === '/capabilities') return { name: 'capabilities', params: [] };
  if (path === '/entropy') return { name: 'entropy', params: ['minentropy'] };
  if (path === '/key') return { name: 'new-key', params: ['remoteSystemID', 'size'] };
  const m = /^\/key\/([^/]+)$/.exec(path);
  if (m) return { name: 'key-by-id', params: ['remoteSystemID'], keyId: decodeURIComponent(m[1]!) };
  return null;
}

function queryOf(url: URL, allowed: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    if (!allowed.includes(k)) throw new SkipError(400, `unknown parameter ${k}`);
    if (k in out) throw new SkipError(400, `parameter ${k} given twice`);
    out[k] = v;
  }
  return out;
}

function remoteSystems(opts: SkipApiOptions, caller: SkipClient): string[] {
  return opts.saes().filter((s) => s !== caller.sae);
}

function remoteOf(opts: SkipApiOptions, caller: SkipClient, query: Record<string, string>): string {
  const remote = query['remoteSystemID'];
  if (remote === undefined) throw new SkipError(400, 'remoteSystemID is required');
  if (!remoteSystems(opts, caller).includes(remote)) throw new SkipError(400, `unknown remoteSystemID ${remote}`);
  return remote;
}

function capabilities(opts: SkipApiOptions, caller: SkipClient) {
  return {
    entropy: true,
    key: true,
    algorithm: 'QKD',
    localSystemID: caller.sae,
    remoteSystemID: remoteSystems(opts, caller),
  };
}

function bits(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]{1,6}$/.test(value)) throw new SkipError(400, `${name} must be a number of bits`);
  const n = Number(value);
  if (n < min || n > max || n % 8 !== 0)
    throw new SkipError(400, `${name} must be a multiple of 8 from ${min} to ${max}`);
  return n;
}

function entropy(minentropy: string | undefined) {
  const n = bits(minentropy, 'minentropy', DEFAULT_ENTROPY_BITS, 8, MAX_ENTROPY_BITS);
  return {
    randomStr: randomBytes(n / 8)
      .toString('hex')
      .toUpperCase(),
    minentropy: n,
  };
}

async function newKey(opts: SkipApiOptions, caller: SkipClient, remote: string, sizeParam: string | undefined) {
  const { minKeySize, maxKeySize } = opts.limits;
  const size = bits(sizeParam, 'size', DEFAULT_KEY_BITS, minKeySize, maxKeySize);
  const decision = opts.access.checkKeyRequest(caller.sae, [remote], 1, (opts.now ?? Date.now)());
  if (!decision.allowed) throw new SkipError(400, `refused by access rules: ${decision.reason}`);
  const container = await opts.keys.getKeys(caller.sae, remote, {
    number: 1,
    size,
    additionalSlaveSaeIds: [],
    extensionMandatory: {},
    extensionOptional: {},
  });
  return skipKey(container.keys[0]!);
}

async function keyById(opts: SkipApiOptions, caller: SkipClient, remote: string, keyId: string) {
  if (!KEY_ID.test(keyId)) throw new SkipError(400, 'malformed keyId: 32 hexadecimal digits expected');
  const decision = opts.access.checkKeyRequest(caller.sae, [], 0, (opts.now ?? Date.now)());
  if (!decision.allowed) throw new SkipError(400, `refused by access rules: ${decision.reason}`);
  const container = await opts.keys.getKeysWithIds(caller.sae, remote, [fromSkipKeyId(keyId)]);
  return skipKey(container.keys[0]!);
}

function skipKey(key: { key_ID: string; key: string }) {
  const bytes = Buffer.from(key.key, 'base64');
  const hex = bytes.toString('hex');
  bytes.fill(0);
  return { keyId: toSkipKeyId(key.key_ID), key: hex };
}
