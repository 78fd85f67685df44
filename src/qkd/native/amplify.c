/*
 * Privacy amplification's product in GMP: h(x) = ((a·x + b) mod 2^w) >> (w − ℓ), w = n + ℓ − 1
 * (hashing.ts gives the family). GMP multiplies these millions of bits two to three times faster
 * than V8's BigInt, and its operands are plain buffers that are wiped here before they are freed.
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#include "gmp-calls.h"

/* The first `bits` bits of little-endian bytes as limbs (the rest zero). */
static void limbs_of(mp_limb_t *out, size_t limbs, const uint8_t *bytes, size_t bits) {
  memset(out, 0, limbs * 8);
  memcpy(out, bytes, (bits + 7) / 8);
  if (bits % 64) out[bits / 64] &= ~(mp_limb_t)0 >> (64 - bits % 64);
}

int qks_amplify(const uint8_t *x, size_t n, const uint8_t *a, const uint8_t *b, size_t out_bits, uint32_t *out) {
  const size_t w = n + out_bits - 1;
  const size_t wn = (w + 63) / 64, xn = (n + 63) / 64;
  mp_limb_t *al = malloc(wn * 8), *bl = malloc(wn * 8), *xl = malloc(xn * 8), *p = malloc((wn + xn + 1) * 8);
  int ok = al && bl && xl && p;
  if (ok) {
    limbs_of(al, wn, a, w);
    limbs_of(bl, wn, b, w);
    limbs_of(xl, xn, x, n);
    mpn_mul(p, al, wn, xl, xn); /* wn ≥ xn since w ≥ n */
    mpn_add_n(p, p, bl, wn);    /* the carry out of limb wn − 1 is beyond 2^w */
    p[wn] = 0;
    /* Bits [w − ℓ, w) of p, that is [n − 1, w): ℓ bits from bit n − 1, the part above w cleared. */
    if (w % 64) p[wn - 1] &= ~(mp_limb_t)0 >> (64 - w % 64);
    const size_t shift = n - 1, words = (out_bits + 31) / 32;
    for (size_t i = 0; i < words; i++) {
      const size_t bit = shift + 32 * i, limb = bit / 64, at = bit % 64;
      mp_limb_t v = p[limb] >> at;
      if (at > 32) v |= p[limb + 1] << (64 - at);
      out[i] = (uint32_t)v;
    }
    if (out_bits % 32) out[words - 1] &= 0xffffffffu >> (32 - out_bits % 32);
  }
  qks_wipe_free(al, wn * 8);
  qks_wipe_free(bl, wn * 8);
  qks_wipe_free(xl, xn * 8);
  qks_wipe_free(p, (wn + xn + 1) * 8);
  return ok;
}
