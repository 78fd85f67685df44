import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { ipsecCommand } from './ipsec.js';
import type { Service, ServiceRequest } from '../sdn/controller/services.js';
import type { SERVICE } from './commands.js';
import { readManifest } from './manifest.js';
import type { CommandLine } from './parse.js';
import { print } from './sae.js';
import { tunnelCommand } from './tunnel.js';
import { UsageError, UserError } from './usage-error.js';

type Values = CommandLine<typeof SERVICE.options>['values'];

/** The controller's API: --controller, or the one the manifest names. */
function controllerOf(v: Values): string {
  if (v.controller) return v.controller.replace(/\/$/, '');
  const url = v.manifest ? readManifest(v.manifest).controller?.url : undefined;
  if (!url) throw new UsageError('--controller URL is required (or a --manifest of a demo that runs one)');
  return url;
}

async function call(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown): Promise<unknown> {
  const res = await request(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch((err: Error) => {
    throw new UserError(`the controller at ${url} does not answer: ${err.message}`);
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) {
    const message = (JSON.parse(text || '{}') as { message?: string }).message ?? `HTTP ${res.statusCode}`;
    throw new UserError(`the controller refused: ${message}`);
  }
  return text ? JSON.parse(text) : undefined;
}

const positive = (value: string | undefined, flag: string): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number above 0`);
  return n;
};

export async function serviceCommand({ sub, values: v }: CommandLine<typeof SERVICE.options>): Promise<number> {
  const api = controllerOf(v);
  switch (sub!.name) {
    case 'create': {
      if (!v.source || !v.destination) throw new UsageError('--source SAE and --destination SAE are required');
      if (v.layer !== '3' && v.layer !== '4') throw new UsageError('--layer must be 3 (IPsec) or 4 (TLS)');
      if (v['refresh-type'] !== 'time' && v['refresh-type'] !== 'traffic') {
        throw new UsageError('--refresh-type must be time or traffic');
      }
      const body: ServiceRequest = {
        source: v.source,
        destination: v.destination,
        encryption_layer: v.layer === '3' ? 3 : 4,
        key_length: positive(v['key-length'], '--key-length') ?? 32,
        refresh: { type: v['refresh-type'], value: positive(v['refresh-value'], '--refresh-value') ?? 300 },
        ...(v.algorithm === undefined ? {} : { algorithm: positive(v.algorithm, '--algorithm')! }),
      };
      print(await call('POST', `${api}/api/v1/services`, body));
      return 0;
    }
    case 'list':
      for (const s of ((await call('GET', `${api}/api/v1/services`)) as { services: Service[] }).services) print(s);
      return 0;
    case 'delete':
      if (!v.id) throw new UsageError('--id ID is required');
      await call('DELETE', `${api}/api/v1/services/${encodeURIComponent(v.id)}`);
      return 0;
    case 'run':
      return run(api, v);
    default:
      throw new Error(`no runner for qks service ${sub!.name}`);
  }
}

/**
 * One end of a service: layer 4 runs the TLS tunnel, its client at the source (which agrees the
 * keys, refreshing them by time or traffic, and reports the first key ID as the service's handle)
 * and its server at the destination.
 */
async function run(api: string, v: Values): Promise<number> {
  if (!v.id) throw new UsageError('--id ID is required');
  if (!v.sae) throw new UsageError('--sae ID is required: the end of the service this is');
  const service = (await call('GET', `${api}/api/v1/services/${encodeURIComponent(v.id)}`)) as Service;
  const side = v.sae === service.source ? 'source' : v.sae === service.destination ? 'destination' : null;
  if (!side) throw new UsageError(`SAE ${v.sae} is neither end of service ${service.id}`);
  const byTime = service.refresh.type === 'time';
  let reported = false;
  const onKey = (keyId: string) => {
    if (side !== 'source' || reported) return;
    reported = true;
    call('POST', `${api}/api/v1/services/${service.id}/handle`, { key_ID: keyId }).then(
      () => print({ event: 'handle', service: service.id, key_ID: keyId }),
      (err: Error) => print({ event: 'handle-not-reported', message: err.message }),
    );
  };
  if (service.encryption_layer === 3) return runIpsec(service, side, v, onKey);
  const values = {
    ...v,
    role: side === 'source' ? 'client' : 'server',
    peer: side === 'source' ? service.destination : service.source,
    ...(side === 'source'
      ? byTime
        ? { 'rotate-every': String(service.refresh.value) }
        : { 'rotate-bytes': String(service.refresh.value) }
      : {}),
    name: `service ${service.id.slice(0, 8)}`,
  };
  return tunnelCommand({ name: 'tunnel', values }, 'native', { keyBits: service.key_length * 8, onKey });
}

/**
 * Layer 3: the gateway's own `qks ipsec` configuration (its daemon, connection, agreement
 * address), with what the service decides: this SAE and its peer, initiator at the source, and
 * the refresh as the agent's rotation. The PPKs are the KME's key size.
 */
async function runIpsec(
  service: Service,
  side: 'source' | 'destination',
  v: Values,
  onKey: (keyId: string) => void,
): Promise<number> {
  if (!v['ipsec-config']) throw new UsageError('a layer 3 service runs the IPsec agent: give --ipsec-config FILE');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(v['ipsec-config'], 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--ipsec-config ${v['ipsec-config']}: ${(err as Error).message}`);
  }
  const refresh = service.refresh;
  const derived = {
    ...config,
    sae: { ...(config['sae'] as object), id: v.sae, ...(v.manifest ? { manifest: v.manifest } : {}) },
    peer: side === 'source' ? service.destination : service.source,
    role: side === 'source' ? 'initiator' : 'responder',
    rotation:
      refresh.type === 'time' ? { every_seconds: refresh.value } : { every_seconds: 3600, bytes: refresh.value },
  };
  const dir = mkdtempSync(join(tmpdir(), 'qks-service-'));
  const file = join(dir, 'ipsec.json');
  writeFileSync(file, JSON.stringify(derived, null, 2), { mode: 0o600 });
  try {
    return await ipsecCommand({ name: 'ipsec', values: { config: file } }, onKey);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
