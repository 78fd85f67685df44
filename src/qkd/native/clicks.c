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

size_t qks_gaps_size(const uint32_t *indices, size_t count) {
  size_t units = count;
  uint32_t prev = (uint32_t)-1;
  for (size_t i = 0; i < count; i++) {
    units += 2 * ((uint32_t)(indices[i] - prev - 1) >= ESCAPE);
    prev = indices[i];
  }
  return 2 * units;
}

void qks_gaps_encode(const uint32_t *indices, size_t count, uint8_t *out) {
  uint32_t prev = (uint32_t)-1;
  for (size_t i = 0; i < count; i++) {
    const uint32_t gap = indices[i] - prev - 1;
    prev = indices[i];
    if (gap < ESCAPE) {
      const uint16_t u = (uint16_t)gap;
      memcpy(out, &u, 2);
      out += 2;
    } else {
      const uint16_t u[3] = {ESCAPE, (uint16_t)gap, (uint16_t)(gap >> 16)};
      memcpy(out, u, 6);
      out += 6;
    }
  }
}

int qks_gaps_decode(const uint8_t *bytes, size_t length, size_t count, uint64_t below, uint32_t *out) {
  if (length & 1) return QKS_MALFORMED;
  const size_t end = length / 2;
  size_t at = 0;
  uint64_t prev = (uint64_t)-1; /* index −1, so that the first gap counts from 0 */
  for (size_t i = 0; i < count; i++) {
    if (at >= end) return QKS_MALFORMED;
    uint16_t u;
    memcpy(&u, bytes + 2 * at++, 2);
    uint64_t gap = u;
    if (u == ESCAPE) {
      if (at + 2 > end) return QKS_MALFORMED;
      uint16_t v[2];
      memcpy(v, bytes + 2 * at, 4);
      gap = v[0] | (uint64_t)v[1] << 16;
      at += 2;
      if (gap < ESCAPE) return QKS_MALFORMED; /* one code per list: short gaps are never escaped */
    }
    prev += gap + 1;
    if (prev >= below) return QKS_OUTSIDE;
    out[i] = (uint32_t)prev;
  }
  return at == end ? QKS_OK : QKS_TRAILING;
}

void qks_choices(const struct qks_choice_hash *h, const uint32_t *indices, size_t m, uint32_t *bases,
                 uint32_t *bits, uint32_t *decoys, uint32_t *vacuums, uint64_t counts[3]) {
  uint64_t n_decoy = 0, n_vacuum = 0;
  for (size_t j = 0, w = 0; j < m; w++) {
    const size_t end = m - j < 32 ? m : j + 32;
    uint32_t basis_word = 0, bit_word = 0, decoy_word = 0, vacuum_word = 0;
    for (unsigned k = 0; j < end; j++, k++) {
      uint32_t x = h->first_half ^ ((indices[j] + 0x7f4a7c15u) * 0x85ebca77u);
      x ^= x >> 16;
      x *= 0x85ebca6bu;
      x ^= x >> 13;
      x *= 0xc2b2ae35u;
      x ^= x >> 16;
      const uint32_t u = x >> 8;
      const uint32_t is_signal = u < h->signal_below, not_vacuum = u < h->decoy_below;
      bit_word |= (x & 1) << k;
      basis_word |= ((x >> 1) & 1) << k;
      decoy_word |= (not_vacuum ^ is_signal) << k;
      vacuum_word |= (not_vacuum ^ 1) << k;
    }
    bases[w] = basis_word;
    bits[w] = bit_word;
    decoys[w] = decoy_word;
    vacuums[w] = vacuum_word;
    n_decoy += (uint64_t)__builtin_popcount(decoy_word);
    n_vacuum += (uint64_t)__builtin_popcount(vacuum_word);
  }
  counts[0] += m - n_decoy - n_vacuum;
  counts[1] += n_decoy;
  counts[2] += n_vacuum;
}
