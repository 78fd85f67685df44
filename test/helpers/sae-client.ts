import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { recordDeliveredKeys } from './log-leaks.js';

export interface HttpResult {
  status: number;
  /** Parsed JSON body, or null when the body is empty. */
  body: unknown;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface TlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

/** A small HTTPS client for tests: mutual TLS with the given files, keep-alive. */
export class TestClient {
  readonly agent: Agent;
  readonly baseUrl: string;

  constructor(baseUrl: string, files: TlsFiles) {
    this.baseUrl = baseUrl;
    this.agent = new Agent({
      connect: {
        ca: readFileSync(files.ca),
        ...(files.cert ? { cert: readFileSync(files.cert) } : {}),
        ...(files.key ? { key: readFileSync(files.key) } : {}),
      },
    });
  }

  async call(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResult> {
    const hasBody = body !== undefined;
    const res = await request(this.baseUrl + path, {
      method,
      dispatcher: this.agent,
      headers: hasBody && typeof body !== 'string' ? { 'content-type': 'application/json', ...headers } : headers,
      ...(hasBody ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    let parsed: unknown = null;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    const keys = (parsed as { keys?: Array<{ key?: unknown }> } | null)?.keys;
    // Fingerprints of every key a test receives, for the scans of the logs (log-leaks.ts).
    if (Array.isArray(keys)) recordDeliveredKeys(keys.flatMap((k) => (typeof k?.key === 'string' ? [k.key] : [])));
    return { status: res.statusCode, body: parsed, text, headers: res.headers };
  }

  get(path: string): Promise<HttpResult> {
    return this.call('GET', path);
  }

  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult> {
    return this.call('POST', path, body, headers);
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
