/* The post-processing kernels in C (kernels.ts loads them; addon.c binds them to JavaScript). */
#ifndef QKS_KERNELS_H
#define QKS_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* Wipes and frees a buffer of key material (free(NULL) is a no-op). */
void qks_wipe_free(void *p, size_t bytes);

/* Makes GMP wipe its scratch space before freeing it (once per process; every thread shares it). */
void qks_wipe_gmp_scratch(void);

/*
 * Privacy amplification of the n-bit key x under seeds a, b (each ⌈(n + ℓ − 1)/8⌉ bytes, little
 * endian) to out_bits = ℓ bits, written to out (⌈ℓ/32⌉ words). Returns 0 when out of memory.
 */
int qks_amplify(const uint8_t *x, size_t n, const uint8_t *a, const uint8_t *b, size_t out_bits, uint32_t *out);

#endif
