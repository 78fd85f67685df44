/**
 * Per-SAE access rules, checked before any key is touched: which slaves an SAE may request keys
 * for, its largest request, and its request rate. Pure: the caller passes the time.
 */
export interface AccessRule {
  readonly sae: string;
  /** Slave SAEs this SAE may request keys for; `*` for any. */
  readonly slaves: readonly string[] | '*';
  /** Most keys in one enc_keys request (below the KME's max_key_per_request). */
  readonly maxKeysPerRequest?: number;
  /** Key requests per minute (enc_keys and dec_keys), with a burst of the same size. */
  readonly requestsPerMinute?: number;
}

export interface AccessPolicyConfig {
  /** With no rule, an SAE may request keys for any slave (the standard's behaviour). */
  readonly rules: readonly AccessRule[];
  /** SAEs that may change settings (besides callers whose token has the admin scope). */
  readonly admins: readonly string[];
  readonly adminScope: string;
}

export type AccessDecision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const ALLOW: AccessDecision = { allowed: true };

export class AccessPolicy {
  readonly #rules: Map<string, AccessRule>;
  readonly #config: AccessPolicyConfig;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(config: AccessPolicyConfig) {
    this.#config = config;
    this.#rules = new Map(config.rules.map((r) => [r.sae, r]));
  }

  /** A key request by `sae` (enc_keys for `slaves`, or dec_keys with no slaves). */
  checkKeyRequest(sae: string, slaves: readonly string[], keyCount: number, now: number): AccessDecision {
    const rule = this.#rules.get(sae);
    if (!rule) return ALLOW;
    if (rule.slaves !== '*') {
      const denied = slaves.filter((s) => !(rule.slaves as readonly string[]).includes(s));
      if (denied.length > 0) return { allowed: false, reason: `may not request keys for ${denied.join(', ')}` };
    }
    if (rule.maxKeysPerRequest !== undefined && keyCount > rule.maxKeysPerRequest) {
      return { allowed: false, reason: `asked for ${keyCount} keys; at most ${rule.maxKeysPerRequest} allowed` };
    }
    if (rule.requestsPerMinute !== undefined && !this.#take(sae, rule.requestsPerMinute, now)) {
      return { allowed: false, reason: `over ${rule.requestsPerMinute} requests per minute` };
    }
    return ALLOW;
  }

  checkAdmin(sae: string, scopes: readonly string[]): AccessDecision {
    if (this.#config.admins.includes(sae) || scopes.includes(this.#config.adminScope)) return ALLOW;
    return { allowed: false, reason: `changing settings needs the ${this.#config.adminScope} scope or an admin SAE` };
  }

  /** Token bucket: refills continuously at `perMinute`, holds at most `perMinute`. */
  #take(sae: string, perMinute: number, now: number): boolean {
    const bucket = this.#buckets.get(sae) ?? { tokens: perMinute, at: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + ((now - bucket.at) * perMinute) / 60_000);
    bucket.at = now;
    this.#buckets.set(sae, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
