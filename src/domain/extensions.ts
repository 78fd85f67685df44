import { QksError } from './errors.js';
import type { Extensions } from './key-request.js';

/**
 * Vendor extensions this KME understands, by name. `qks_key_source` asks for keys from a given kind
 * of key source (for example "simulated" or "qkd-device"); a request that cannot be met is refused.
 */
export const SUPPORTED_EXTENSIONS = ['qks_key_source'] as const;

export interface ExtensionContext {
  /** The kind of key source that would serve this request. */
  readonly sourceKind: string;
}

/** Refuses unknown mandatory extensions, then mandatory ones this request cannot satisfy. */
export function checkMandatoryExtensions(ext: Extensions, ctx: ExtensionContext): void {
  const names = Object.keys(ext);
  const unsupported = names.filter((n) => !(SUPPORTED_EXTENSIONS as readonly string[]).includes(n));
  if (unsupported.length > 0) {
    throw new QksError(
      'EXTENSION_MANDATORY_UNSUPPORTED',
      undefined,
      unsupported.map((n) => ({ extension_mandatory_unsupported: `${n} is not supported` })),
    );
  }
  const unmet = names.filter((n) => !extensionMet(n, ext[n], ctx));
  if (unmet.length > 0) {
    throw new QksError(
      'EXTENSION_MANDATORY_UNMET',
      undefined,
      unmet.map((n) => ({ extension_mandatory_unmet: `${n} = ${JSON.stringify(ext[n])} cannot be met` })),
    );
  }
}

function extensionMet(name: string, value: unknown, ctx: ExtensionContext): boolean {
  switch (name) {
    case 'qks_key_source':
      return value === ctx.sourceKind;
    default:
      return false;
  }
}
