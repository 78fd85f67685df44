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
 * permutations of [0, words): entries outside that range are skipped, never followed) into out.
 */
void qks_view(const uint32_t *key, size_t n, const int32_t *rows, const int32_t *columns, size_t words,
              uint32_t row_key, uint32_t column_key, uint32_t *out);

/* A pass of Cascade as the corrector needs it (rows NULL: the key's own order, length n). */
struct qks_pass {
  size_t length, block_size;
  const int32_t *rows, *columns; /* length / 32 words each, permutations (cascade-shuffle.ts) */
  uint32_t row_key, column_key;
};

/* What qks_corrector_answers found wrong; once it has, every later call says so again. */
enum { QKS_WRONG_COUNT = -1, QKS_INCONSISTENT = -2, QKS_NO_MEMORY = -3 };

/* Why qks_corrector_new made no corrector. */
enum { QKS_BAD_KEY_LENGTH, QKS_BAD_PASS, QKS_BAD_TABLES, QKS_TOO_MANY_BLOCKS, QKS_OUT_OF_MEMORY };

/*
 * Cascade's corrector (cascade.c): a copy of the key, corrected as the answers come. Checks every
 * pass (on its own copies of the tables); NULL and *error when one is wrong or memory runs out.
 */
struct qks_corrector;
struct qks_corrector *qks_corrector_new(const uint32_t *key, size_t n, size_t passes, const struct qks_pass *specs,
                                        int *error);
size_t qks_corrector_blocks(const struct qks_corrector *c);
/*
 * Takes the answers to the last batch (the first: every top-level block); writes the next batch
 * to out (3 words a question, room for 3 per block) and returns its size, 0 when Cascade is done,
 * or what is wrong (< 0).
 */
long qks_corrector_answers(struct qks_corrector *c, const uint8_t *answers, size_t bytes, uint32_t *out);
/* Disclosed parities, corrected bits, rounds. */
void qks_corrector_counts(const struct qks_corrector *c, double out[3]);
/* The key as corrected so far: qks_corrector_key_words(c) words. */
size_t qks_corrector_key_words(const struct qks_corrector *c);
void qks_corrector_key(const struct qks_corrector *c, uint32_t *out);
/* Wipes and frees (NULL: nothing). */
void qks_corrector_free(struct qks_corrector *c);

#endif
