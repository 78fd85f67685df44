/*
 * Per-click passes of sifting: the click-index gap codec (wire.ts documents the format) and
 * Alice's choices for Bob's clicks (Transmitter.packed gives the hash; this is the same, exactly,
 * a word of 32 clicks at a time). Little-endian hosts only, like the wire.
 */
#include <string.h>
#include "kernels.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the QKS kernels assume a little-endian host"
#endif

#define ESCAPE 0xffffu

/*
 * Both directions go 16 clicks at a time: a block with no escaped gap (nearly all of them at
 * typical click rates) is one vectorised loop; the others go click by click.
 */
#define BLOCK 16

size_t qks_gaps_size(const uint32_t *indices, size_t count) {
  size_t escaped = 0;
  uint32_t prev = (uint32_t)-1;
  for (size_t i = 0; i < count; i++) {
    escaped += indices[i] - prev - 1 >= ESCAPE;
    prev = indices[i];
  }
  return 2 * (count + 2 * escaped);
}

static inline uint8_t *put_gap(uint8_t *out, uint32_t gap) {
  if (gap < ESCAPE) {
    const uint16_t u = (uint16_t)gap;
    memcpy(out, &u, 2);
    return out + 2;
  }
  const uint16_t u[3] = {ESCAPE, (uint16_t)gap, (uint16_t)(gap >> 16)};
  memcpy(out, u, 6);
  return out + 6;
}

QKS_VECTOR void qks_gaps_encode(const uint32_t *indices, size_t count, uint8_t *out) {
  uint32_t prev = (uint32_t)-1;
  size_t i = 0;
  for (; i + BLOCK <= count; i += BLOCK) {
    uint32_t gaps[BLOCK], wide = 0;
    gaps[0] = indices[i] - prev - 1;
    for (unsigned k = 1; k < BLOCK; k++) gaps[k] = indices[i + k] - indices[i + k - 1] - 1;
    for (unsigned k = 0; k < BLOCK; k++) wide |= gaps[k] >= ESCAPE;
    prev = indices[i + BLOCK - 1];
    if (wide) {
      for (unsigned k = 0; k < BLOCK; k++) out = put_gap(out, gaps[k]);
      continue;
    }
    uint16_t narrow[BLOCK];
    for (unsigned k = 0; k < BLOCK; k++) narrow[k] = (uint16_t)gaps[k];
    memcpy(out, narrow, sizeof narrow);
    out += sizeof narrow;
  }
  for (; i < count; prev = indices[i++]) out = put_gap(out, indices[i] - prev - 1);
}

QKS_VECTOR int qks_gaps_decode(const uint8_t *bytes, size_t length, size_t count, uint64_t below, uint32_t *out) {
  if (length & 1) return QKS_MALFORMED;
  const size_t end = length / 2;
  size_t at = 0;
  uint64_t prev = (uint64_t)-1; /* index −1, so that the first gap counts from 0 */
  for (size_t i = 0; i < count;) {
    uint16_t u[BLOCK];
    unsigned escaped = 1;
    if (i + BLOCK <= count && at + BLOCK <= end) {
      memcpy(u, bytes + 2 * at, sizeof u);
      escaped = 0;
      for (unsigned k = 0; k < BLOCK; k++) escaped |= u[k] == ESCAPE;
    }
    if (!escaped) {
      /* Increasing: only the block's last index need be checked. */
      for (unsigned k = 0; k < BLOCK; k++) out[i + k] = (uint32_t)(prev += (uint64_t)u[k] + 1);
      if (prev >= below) return QKS_OUTSIDE;
      i += BLOCK;
      at += BLOCK;
      continue;
    }
    if (at >= end) return QKS_MALFORMED;
    uint16_t gap16;
    memcpy(&gap16, bytes + 2 * at++, 2);
    uint64_t gap = gap16;
    if (gap16 == ESCAPE) {
      if (at + 2 > end) return QKS_MALFORMED;
      uint16_t v[2];
      memcpy(v, bytes + 2 * at, 4);
      gap = v[0] | (uint64_t)v[1] << 16;
      at += 2;
      if (gap < ESCAPE) return QKS_MALFORMED; /* one code per list: short gaps are never escaped */
    }
    prev += gap + 1;
    if (prev >= below) return QKS_OUTSIDE;
    out[i++] = (uint32_t)prev;
  }
  return at == end ? QKS_OK : QKS_TRAILING;
}

/* Transmitter.packed's hash of one pulse, from the frame's first half. */
static inline uint32_t pulse_hash(uint32_t first_half, uint32_t index) {
  uint32_t x = first_half ^ ((index + 0x7f4a7c15u) * 0x85ebca77u);
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  return x ^ (x >> 16);
}

/* Bit i of the result is bit `flag` of byte i of v: eight flags gathered by one multiplication. */
static inline uint32_t gather8(uint64_t v, unsigned flag) {
  return (uint32_t)((((v >> flag) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56);
}

/*
 * Up to 32 clicks into one word of each string: a byte of flags per click (bit, basis, decoy,
 * vacuum), which vectorises, then each flag of eight bytes gathered at once. `flags` and `words`
 * are the caller's, so that it can wipe them (they hold Alice's bits).
 */
static inline void choice_word(const struct qks_choice_hash *h, const uint32_t *indices, unsigned count,
                               uint8_t flags[32], uint32_t words[4]) {
  memset(flags, 0, 32);
  for (unsigned k = 0; k < count; k++) {
    const uint32_t x = pulse_hash(h->first_half, indices[k]), u = x >> 8;
    const uint32_t is_signal = u < h->signal_below, not_vacuum = u < h->decoy_below;
    flags[k] = (uint8_t)((x & 3) | (not_vacuum ^ is_signal) << 2 | (not_vacuum ^ 1) << 3);
  }
  memset(words, 0, 16);
  for (unsigned g = 0; g < 4; g++) {
    uint64_t v;
    memcpy(&v, flags + 8 * g, 8);
    for (unsigned f = 0; f < 4; f++) words[f] |= gather8(v, f) << (8 * g);
  }
}

QKS_VECTOR void qks_choices(const struct qks_choice_hash *h, const uint32_t *indices, size_t m, uint32_t *bases,
                            uint32_t *bits, uint32_t *decoys, uint32_t *vacuums, uint64_t counts[3]) {
  uint64_t n_decoy = 0, n_vacuum = 0;
  uint8_t flags[32];
  uint32_t words[4]; /* flags 0 to 3: bits, bases, decoys, vacuums */
  for (size_t j = 0, w = 0; j < m; j += 32, w++) {
    choice_word(h, indices + j, m - j < 32 ? (unsigned)(m - j) : 32, flags, words);
    bits[w] = words[0];
    bases[w] = words[1];
    decoys[w] = words[2];
    vacuums[w] = words[3];
    n_decoy += (uint64_t)__builtin_popcount(words[2]);
    n_vacuum += (uint64_t)__builtin_popcount(words[3]);
  }
  explicit_bzero(flags, sizeof flags);
  explicit_bzero(words, sizeof words);
  counts[0] += m - n_decoy - n_vacuum;
  counts[1] += n_decoy;
  counts[2] += n_vacuum;
}
