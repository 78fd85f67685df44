import { randomUUID } from 'node:crypto';
import { readJsonIfPresent, writeFileDurably } from '../../config/files.js';
import { Ajv } from 'ajv';

/**
 * End-to-end encrypted services (the slides' "node starts" workflow, docs/sdn.md): an operator
 * asks for a service between two SAEs with the slides' parameters; the controller computes the
 * path, installs it, and keeps the service here; each end then runs it (`qks service run`), the
 * source reporting the key handle (its first key ID).
 */
export interface ServiceRequest {
  readonly source: string;
  readonly destination: string;
  /** Bytes of each key (the QE subobject's key length; 32 in the slides). */
  readonly key_length: number;
  /** 3: IPsec (a PPK per key, RFC 8784); 4: the TLS 1.3 PSK tunnel. */
  readonly encryption_layer: 3 | 4;
  /** A new key after this many seconds (`time`) or bytes carried (`traffic`). */
  readonly refresh: { readonly type: 'time' | 'traffic'; readonly value: number };
  /** The slides' algorithm field, recorded as given (it selects nothing in QKS). */
  readonly algorithm?: number;
}

export interface Service extends ServiceRequest {
  readonly id: string;
  readonly created_at: string;
  /** KMEs from the source SAE's to the destination SAE's. */
  readonly path: readonly string[];
  /** The virtual link installed for it in the source's KME, when the path is relayed. */
  readonly virtual_link?: string;
  /** The first key ID the source agreed: the session's handle. */
  readonly handle?: string;
}

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'destination', 'key_length', 'encryption_layer', 'refresh'],
  properties: {
    source: { type: 'string', minLength: 1, maxLength: 128 },
    destination: { type: 'string', minLength: 1, maxLength: 128 },
    key_length: { type: 'integer', minimum: 16, maximum: 64 },
    encryption_layer: { enum: [3, 4] },
    refresh: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'value'],
      properties: {
        type: { enum: ['time', 'traffic'] },
        value: { type: 'integer', minimum: 1, maximum: 4_294_967_295 },
      },
    },
    algorithm: { type: 'integer', minimum: 0, maximum: 65535 },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile<ServiceRequest>(SCHEMA);

/** The first problem of a service request, or null when it is well formed. */
export function serviceRequestProblem(body: unknown): string | null {
  if (validate(body)) {
    return body.source === body.destination ? 'source and destination must be two SAEs' : null;
  }
  const e = validate.errors?.[0];
  return `${e?.instancePath || 'the request'} ${e?.message ?? 'is invalid'}`;
}

/** The services, kept in a file (rewritten whole and renamed into place) so that they outlive a restart. */
export class ServiceStore {
  readonly #file: string;
  readonly #services = new Map<string, Service>();

  constructor(file: string) {
    this.#file = file;
    for (const s of readJsonIfPresent<Service[]>(file) ?? []) this.#services.set(s.id, s);
  }

  list(): Service[] {
    return [...this.#services.values()];
  }

  get(id: string): Service | undefined {
    return this.#services.get(id);
  }

  add(request: ServiceRequest, path: readonly string[], virtualLink?: string): Service {
    const service: Service = {
      ...request,
      id: randomUUID(),
      created_at: new Date().toISOString(),
      path: [...path],
      ...(virtualLink ? { virtual_link: virtualLink } : {}),
    };
    this.#services.set(service.id, service);
    this.#save();
    return service;
  }

  /** Records the handle once; a later report keeps the first. */
  setHandle(id: string, handle: string): Service | undefined {
    const s = this.#services.get(id);
    if (!s) return undefined;
    if (s.handle) return s;
    const next = { ...s, handle };
    this.#services.set(id, next);
    this.#save();
    return next;
  }

  remove(id: string): Service | undefined {
    const s = this.#services.get(id);
    if (s && this.#services.delete(id)) this.#save();
    return s;
  }

  #save(): void {
    writeFileDurably(this.#file, JSON.stringify(this.list(), null, 2) + '\n');
  }
}
