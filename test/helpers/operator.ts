import { request } from 'undici';
import type { TwoSites } from './two-kmes.js';
import { TestClient } from './sae-client.js';

/** A client with the deployment's operator certificate (an administrator), talking to one KME. */
export function operatorAt(sites: TwoSites, kme: string): TestClient {
  const op = sites.deployment.operator;
  if (!op) throw new Error('the deployment has no operator; start the sites with { operator: "operator" }');
  const config = sites.deployment.configs.find((c) => c.kme === kme)!.config;
  return new TestClient(`https://127.0.0.1:${config.sae_api.port}`, {
    ca: sites.deployment.ca,
    cert: op.cert,
    key: op.key,
  });
}

/** Prometheus text format, as `name{labels}` → value (no HELP/TYPE lines). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** The first `count` server-sent events of a stream, parsed as JSON. */
export async function readEvents(client: TestClient, path: string, count: number): Promise<unknown[]> {
  const res = await request(client.baseUrl + path, { dispatcher: client.agent });
  if (res.statusCode !== 200) throw new Error(`events answered ${res.statusCode}`);
  const events: unknown[] = [];
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += (chunk as Buffer).toString();
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      events.push(JSON.parse(data));
      if (events.length >= count) {
        res.body.destroy();
        return events;
      }
    }
  }
  return events;
}
