import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

/** The media type of RESTCONF data (RFC 8040 §5.2). */
export const YANG_JSON = 'application/yang-data+json';
export const NODE_PATH = '/restconf/data/etsi-qkd-sdn-node:qkd_node';

export interface RestconfClientOptions {
  /** The KME's listener that serves the node interface (its SAE API listener). */
  readonly url: string;
  /** PEM or path: the CA of the KME's certificate, and the operator's certificate and key. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly timeoutMs?: number;
}

/** A RESTCONF request that did not succeed: the status and the first error-message of the RFC 8040 body. */
export class RestconfError extends Error {
  override name = 'RestconfError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const pem = (v: string) => (v.includes('-----BEGIN') ? v : readFileSync(v, 'utf8'));

/** A controller's client of one KME's ETSI GS QKD 015 interface, with operator mutual TLS. */
export class RestconfClient {
  readonly #url: string;
  readonly #agent: Agent;

  constructor(opts: RestconfClientOptions) {
    this.#url = opts.url.replace(/\/$/, '');
    const timeout = opts.timeoutMs ?? 3000;
    this.#agent = new Agent({
      connect: { ca: pem(opts.ca), cert: pem(opts.cert), key: pem(opts.key), timeout },
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  }

  node(): Promise<unknown> {
    return this.#send('GET', NODE_PATH);
  }

  /** POST, PUT or DELETE under the node (e.g. `/qkd_links`), with an RFC 7951 body. */
  write(method: 'POST' | 'PUT' | 'DELETE', subPath: string, body?: unknown): Promise<unknown> {
    return this.#send(method, NODE_PATH + subPath, body);
  }

  async #send(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await request(this.#url + path, {
      method: method as 'GET',
      dispatcher: this.#agent,
      headers: { accept: YANG_JSON, ...(body === undefined ? {} : { 'content-type': YANG_JSON }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) return text ? JSON.parse(text) : undefined;
    let message = `HTTP ${res.statusCode}`;
    try {
      const first = (JSON.parse(text) as { 'ietf-restconf:errors'?: { error?: Array<{ 'error-message'?: string }> } })[
        'ietf-restconf:errors'
      ]?.error?.[0];
      if (first?.['error-message']) message += `: ${first['error-message']}`;
    } catch {
      // Not an RFC 8040 body: the status says enough.
    }
    throw new RestconfError(res.statusCode, message);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
