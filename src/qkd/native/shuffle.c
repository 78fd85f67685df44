/*
 * Cascade's shuffles (cascade-shuffle.ts documents them): the permutations of words and a pass's
 * view of the key, the same operations as there, exactly.
 */
#include <string.h>
#include "kernels.h"

void qks_permutation(int32_t *out, size_t size, const uint32_t seed[4]) {
  uint32_t x = seed[0] | 1, y = seed[1], z = seed[2], w = seed[3];
  for (size_t i = 0; i < size; i++) out[i] = (int32_t)i;
  for (size_t i = size - 1; i > 0 && size > 0; i--) {
    const uint32_t t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = w ^ (w >> 19) ^ t ^ (t >> 8);
    const size_t j = (size_t)(((uint64_t)w * (i + 1)) >> 32); /* floor(w·(i+1)/2^32), as there */
    const int32_t v = out[i];
    out[i] = out[j];
    out[j] = v;
  }
}

static inline uint32_t rotl(uint32_t x, unsigned k) { return k ? (x << k) | (x >> (32 - k)) : x; }

static inline unsigned turn(uint32_t i, uint32_t key) { return ((i ^ key) + 0x7f4a7c15u) * 0x9e3779b1u >> 27; }

/* 32 × 32 bits in place: bit j of word r trades places with bit r of word j. */
static void transpose32(uint32_t m[32]) {
  static const uint32_t masks[5] = {0x0000ffffu, 0x00ff00ffu, 0x0f0f0f0fu, 0x33333333u, 0x55555555u};
  for (unsigned s = 0, j = 16; s < 5; s++, j >>= 1)
    for (unsigned k = 0; k < 32; k = ((k | j) + 1) & ~j) {
      const uint32_t t = ((m[k] >> j) ^ m[k + j]) & masks[s];
      m[k] ^= t << j;
      m[k + j] ^= t;
    }
}

void qks_view(const uint32_t *key, size_t n, const int32_t *rows, const int32_t *columns, size_t words,
              uint32_t row_key, uint32_t column_key, uint32_t *out) {
  const size_t key_words = (n + 31) / 32;
  const uint32_t tail = n % 32 ? 0xffffffffu >> (32 - n % 32) : 0xffffffffu;
  uint32_t tile[32];
  for (size_t t = 0; t < words; t += 32) {
    for (unsigned r = 0; r < 32; r++) {
      const size_t w = (size_t)rows[t + r];
      const uint32_t word = w + 1 < key_words ? key[w] : w + 1 == key_words ? key[w] & tail : 0;
      tile[r] = rotl(word, turn((uint32_t)(t + r), row_key));
    }
    transpose32(tile);
    for (unsigned j = 0; j < 32; j++) {
      const uint32_t column = (uint32_t)columns[t + j];
      if (column < words) out[column] = rotl(tile[j], turn((uint32_t)(t + j), column_key));
    }
  }
  explicit_bzero(tile, sizeof tile);
}
