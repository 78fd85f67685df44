/* The post-processing kernels in C (kernels.ts loads them; addon.c binds them to JavaScript). */
#ifndef QKS_KERNELS_H
#define QKS_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* Loops that vectorise: compiled also for AVX2, chosen when the processor has it (GCC's ifunc). */
#if defined(__x86_64__) && defined(__GNUC__)
#define QKS_VECTOR __attribute__((target_clones("avx2", "default")))
#else
#define QKS_VECTOR
/* A random permutation of [0, size): Fisher–Yates on xorshift128 from seed (cascade-shuffle.ts). */
void qks_permutation(int32_t *out, size_t size, const uint32_t seed[4]);

/*
 * A shuffled pass's view of the n-bit key: `words` words (a multiple of 32; rows and columns are
 * permutations of [0, words), checked by the caller) into out.
 */
void qks_view(const uint32_t *key, size_t n, const int32_t *rows, const int32_t *columns, size_t words,
              uint32_t row_key, uint32_t column_key, uint32_t *out);

#endif

/* Wipes and frees a buffer of key material (free(NULL) is a no-op). */
void qks_wipe_free(void *p, size_t bytes);

/*
 * Once per process (every thread shares it): GMP wipes its scratch space before freeing it, and
 * malloc keeps large freed blocks for reuse (wipe.c says why).
 */
void qks_process_setup(void);

/*
 * Privacy amplification of the n-bit key x under seeds a, b (each ⌈(n + ℓ − 1)/8⌉ bytes, little
 * endian) to out_bits = ℓ bits, written to out (⌈ℓ/32⌉ words). Returns 0 when out of memory.
 */
int qks_amplify(const uint8_t *x, size_t n, const uint8_t *a, const uint8_t *b, size_t out_bits, uint32_t *out);

/* What qks_gaps_decode found wrong. */
enum { QKS_OK = 0, QKS_MALFORMED = 1, QKS_OUTSIDE = 2, QKS_TRAILING = 3 };

/* Bytes of the gap code of `count` increasing indices, and the code itself. */
size_t qks_gaps_size(const uint32_t *indices, size_t count);
void qks_gaps_encode(const uint32_t *indices, size_t count, uint8_t *out);

/* `count` increasing indices below `below` from their gap code, or what is wrong with it. */
int qks_gaps_decode(const uint8_t *bytes, size_t length, size_t count, uint64_t below, uint32_t *out);

/* Transmitter's per-pulse hash for one frame: its first half, and the class thresholds (24-bit). */
struct qks_choice_hash {
  uint32_t first_half, signal_below, decoy_below;
};

/* Alice's choices for m clicks, 32 to a word from word 0 of each string; counts per class added. */
void qks_choices(const struct qks_choice_hash *h, const uint32_t *indices, size_t m, uint32_t *bases,
                 uint32_t *bits, uint32_t *decoys, uint32_t *vacuums, uint64_t counts[3]);

/* A random permutation of [0, size): Fisher–Yates on xorshift128 from seed (cascade-shuffle.ts). */
void qks_permutation(int32_t *out, size_t size, const uint32_t seed[4]);

/*
 * A shuffled pass's view of the n-bit key: `words` words (a multiple of 32; rows and columns are
 * permutations of [0, words), checked by the caller) into out.
 */
void qks_view(const uint32_t *key, size_t n, const int32_t *rows, const int32_t *columns, size_t words,
              uint32_t row_key, uint32_t column_key, uint32_t *out);

#endif
