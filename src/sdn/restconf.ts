/**
 * RESTCONF (RFC 8040) for the ETSI GS QKD 015 node: data resource paths below
 * `/restconf/data/etsi-qkd-sdn-node:qkd_node` and the `ietf-restconf:errors` body. Pure.
 */

export const NODE_PATH = '/restconf/data/etsi-qkd-sdn-node:qkd_node';
export const MEDIA_TYPE = 'application/yang-data+json';
const MODULE = 'etsi-qkd-sdn-node';

export type ErrorTag =
  | 'access-denied'
  | 'data-exists'
  | 'invalid-value'
  | 'malformed-message'
  | 'operation-failed'
  | 'operation-not-supported'
  | 'too-big';

/** An RFC 8040 §7 error: its HTTP status, error-type, error-tag and message. */
export class RestconfError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: 'transport' | 'rpc' | 'protocol' | 'application',
    readonly tag: ErrorTag,
    message: string,
    /** For 405: the methods the resource takes. */
    readonly allow?: string,
  ) {
    super(message);
  }

  body(): unknown {
    return {
      'ietf-restconf:errors': {
        error: [{ 'error-type': this.errorType, 'error-tag': this.tag, 'error-message': this.message }],
      },
    };
  }
}

export const notFound = (what: string) =>
  new RestconfError(404, 'protocol', 'invalid-value', `no such resource: ${what}`);
export const invalidValue = (message: string) => new RestconfError(400, 'application', 'invalid-value', message);
export const malformed = (message: string) => new RestconfError(400, 'protocol', 'malformed-message', message);

/** One step of a data resource path: a node name, and for a list entry its key value. */
export interface Step {
  readonly name: string;
  readonly key?: string;
}

/** The key leaf of every list in the model, for `list=key` steps. */
const LIST_KEYS: Record<string, string> = {
  qkd_app: 'app_id',
  qkd_link: 'qkdl_id',
  qkd_interface: 'qkdi_id',
  statistics: 'end_time',
  phys_perf: 'perf_type',
};

/**
 * The steps below qkd_node of a request's path (query string already refused), e.g.
 * `.../qkd_links/qkd_link=<uuid>` → [{name: 'qkd_links'}, {name: 'qkd_link', key: '<uuid>'}].
 * Names of this module may come qualified (`etsi-qkd-sdn-node:qkd_links`); key values are
 * percent-decoded (RFC 8040 §3.5.3).
 */
export function parseDataPath(url: string): Step[] {
  const path = url.replace(/\/+$/, '');
  if (path !== NODE_PATH && !path.startsWith(`${NODE_PATH}/`)) throw notFound(path);
  const rest = path.slice(NODE_PATH.length + 1);
  if (rest === '') return [];
  return rest.split('/').map((segment) => {
    const eq = segment.indexOf('=');
    const rawName = eq < 0 ? segment : segment.slice(0, eq);
    let name: string;
    let key: string | undefined;
    try {
      name = decodeURIComponent(rawName);
      key = eq < 0 ? undefined : decodeURIComponent(segment.slice(eq + 1));
    } catch {
      throw malformed(`badly percent-encoded path segment: ${segment}`);
    }
    if (name.startsWith(`${MODULE}:`)) name = name.slice(MODULE.length + 1);
    return key === undefined ? { name } : { name, key };
  });
}

/** The member name of a resource in its answer: qualified as RFC 7951 §4 wants at the top. */
const memberName = (name: string) => (name.includes(':') ? name : `${MODULE}:${name}`);

/** What GET answers for `steps` in the node document `node` (the content of qkd_node). */
export function selectResource(node: unknown, steps: readonly Step[]): Record<string, unknown> {
  if (steps.length === 0) return { [`${MODULE}:qkd_node`]: node };
  let here: unknown = node;
  const walked: string[] = [];
  for (const step of steps) {
    walked.push(step.key === undefined ? step.name : `${step.name}=${step.key}`);
    const value = isObject(here) ? here[step.name] : undefined;
    if (value === undefined) throw notFound(walked.join('/'));
    if (Array.isArray(value) && LIST_KEYS[step.name]) {
      // A list is addressed one entry at a time.
      if (step.key === undefined) throw notFound(`${walked.join('/')} (a list: name an entry, ${step.name}=<key>)`);
      const keyLeaf = LIST_KEYS[step.name]!;
      here = value.find((entry) => isObject(entry) && String(entry[keyLeaf]) === step.key);
      if (here === undefined) throw notFound(walked.join('/'));
    } else {
      if (step.key !== undefined) throw notFound(walked.join('/'));
      here = value;
    }
  }
  const last = steps.at(-1)!;
  return { [memberName(last.name)]: last.key === undefined ? here : [here] };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * The one qkd_app entry of a write's body, `{"etsi-qkd-sdn-node:qkd_app": [ {...} ]}` (RFC 8040
 * §4.4.1 and §4.5: the target's child, or the target itself, named by its qualified name).
 */
export const appEntryOf = (body: unknown): unknown => entryOf(body, 'qkd_app');

/** The one entry of a written list member, `{"etsi-qkd-sdn-node:<list>": [entry]}`. */
export function entryOf(body: unknown, name: 'qkd_app' | 'qkd_link'): unknown {
  if (body === undefined) throw malformed('the request has no body');
  if (!isObject(body)) throw malformed('the body must be a JSON object');
  const names = Object.keys(body);
  if (names.length !== 1 || names[0] !== `${MODULE}:${name}`) {
    throw invalidValue(`the body must hold exactly one member, "${MODULE}:${name}"`);
  }
  const list = body[`${MODULE}:${name}`];
  if (!Array.isArray(list) || list.length !== 1) {
    throw invalidValue(`"${MODULE}:${name}" must be an array of exactly one entry`);
  }
  return list[0];
}
