import type { ErrorObject } from 'ajv';

/**
 * What a configuration file's schema found wrong, one line per problem, each naming where:
 * `unknown key "colour" at the top level; allowed: kme_id, data_dir, …`, `sae_api.port must be an
 * integer`, `missing key "cert" in kme_api`. Validators must be compiled with `verbose: true` (the
 * allowed keys and descriptions come from the failing schema) and `discriminator: true` for
 * `oneOf`s that choose by a `type` key.
 */
export function schemaProblems(errors: readonly ErrorObject[]): string[] {
  // An anyOf or oneOf that failed explains itself; the failures of its branches would only confuse.
  const alternatives = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.schemaPath);
  const problems = errors
    .filter((e) => !alternatives.some((p) => e.schemaPath.startsWith(`${p}/`)))
    .map((e) => problemOf(e));
  return [...new Set(problems)];
}

/** `/links/0/source` → `links[0].source`; the empty path is the top level. */
export function dottedPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, p) => (/^\d+$/.test(p) ? `${path}[${p}]` : path ? `${path}.${p}` : p), '');
}

const where = (path: string) => (path ? `in ${path}` : 'at the top level');
const A = (type: string) =>
  ({ integer: 'an integer', object: 'an object', array: 'a list', string: 'a string', number: 'a number' })[type] ??
  `a ${type}`;
const shown = (v: unknown) => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
};

function problemOf(e: ErrorObject): string {
  const path = dottedPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  const description = (e.parentSchema as { description?: string } | undefined)?.description;
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return `unknown key "${String(p['additionalProperty'])}" ${where(path)}; allowed: ${allowed.join(', ')}`;
    }
    case 'required':
      return `missing key "${String(p['missingProperty'])}" ${where(path)}`;
    case 'type':
      return `${path || 'the configuration'} must be ${A(String(p['type']))}`;
    case 'enum':
      return `${path} must be one of ${(p['allowedValues'] as unknown[]).map(String).join(', ')} (not ${shown(e.data)})`;
    case 'const':
      return `${path} must be ${shown(p['allowedValue'])}`;
    case 'minLength':
      return p['limit'] === 1 ? `${path} must not be empty` : `${path} ${e.message ?? 'is too short'}`;
    case 'minItems':
    case 'maxItems': {
      const n = Number(p['limit']);
      return `${path} must have ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${n} item${n === 1 ? '' : 's'}`;
    }
    case 'pattern': {
      // A value that may hold a secret (`writeOnly`, e.g. a connection string with a password) is not quoted.
      const secret = (e.parentSchema as { writeOnly?: boolean } | undefined)?.writeOnly === true;
      return `${path} must be ${description ?? `text matching ${String(p['pattern'])}`}${secret ? '' : ` (not ${shown(e.data)})`}`;
    }
    case 'anyOf':
    case 'oneOf':
      return `${path} must be ${description ?? 'one of the forms docs/configuration.md gives'}`;
    case 'discriminator': {
      const tag = String(p['tag']);
      const values = (
        (e.parentSchema as { oneOf?: Array<{ properties?: Record<string, { const?: unknown }> }> }).oneOf ?? []
      ).map((s) => String(s.properties?.[tag]?.const));
      const at = path ? `${path}.${tag}` : tag;
      return p['tagValue'] === undefined
        ? `missing key "${tag}" ${where(path)} (one of ${values.join(', ')})`
        : `${at} must be one of ${values.join(', ')} (not ${shown(p['tagValue'])})`;
    }
    default:
      return `${path || 'the configuration'} ${e.message ?? `fails ${e.keyword}`}`;
  }
}
