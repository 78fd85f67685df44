/** What one KME promises its SAEs; reported in every status object. */
export interface KeyLimits {
  /** Default key size in bits, used when a request gives none. */
  readonly keySize: number;
  readonly minKeySize: number;
  readonly maxKeySize: number;
  readonly maxKeyPerRequest: number;
  /** Largest number of additional slave SAE IDs in one request; 0 turns multicast off. */
  readonly maxSaeIdCount: number;
}

export const DEFAULT_LIMITS: KeyLimits = {
  keySize: 256,
  minKeySize: 64,
  maxKeySize: 8192,
  maxKeyPerRequest: 128,
  maxSaeIdCount: 8,
};

/** Checks a configuration's limits; returns the problems found, empty when sound. */
export function checkLimits(limits: KeyLimits): string[] {
  const problems: string[] = [];
  const positiveMultipleOf8 = (n: number) => Number.isSafeInteger(n) && n > 0 && n % 8 === 0;
  if (!positiveMultipleOf8(limits.minKeySize)) problems.push('min_key_size must be a positive multiple of 8');
  if (!positiveMultipleOf8(limits.maxKeySize)) problems.push('max_key_size must be a positive multiple of 8');
  if (!positiveMultipleOf8(limits.keySize)) problems.push('key_size must be a positive multiple of 8');
  if (limits.minKeySize > limits.keySize || limits.keySize > limits.maxKeySize) {
    problems.push('key sizes must satisfy min_key_size <= key_size <= max_key_size');
  }
  if (!Number.isSafeInteger(limits.maxKeyPerRequest) || limits.maxKeyPerRequest < 1) {
    problems.push('max_key_per_request must be a positive integer');
  }
  if (!Number.isSafeInteger(limits.maxSaeIdCount) || limits.maxSaeIdCount < 0) {
    problems.push('max_SAE_ID_count must be a non-negative integer');
  }
  return problems;
}
