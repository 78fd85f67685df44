/*
 * The GMP calls the kernels use: from gmp.h when it is installed, else declared here, since
 * libgmp10 is always there without its headers (Debian's compiler itself needs the library).
 */
#ifndef QKS_GMP_CALLS_H
#define QKS_GMP_CALLS_H
#include <stddef.h>

#if __has_include(<gmp.h>)
#include <gmp.h>
#else
typedef unsigned long mp_limb_t;
typedef long mp_size_t;
mp_limb_t __gmpn_mul(mp_limb_t *, const mp_limb_t *, mp_size_t, const mp_limb_t *, mp_size_t);
mp_limb_t __gmpn_add_n(mp_limb_t *, const mp_limb_t *, const mp_limb_t *, mp_size_t);
void __gmp_set_memory_functions(void *(*)(size_t), void *(*)(void *, size_t, size_t), void (*)(void *, size_t));
#define mpn_mul __gmpn_mul
#define mpn_add_n __gmpn_add_n
#define mp_set_memory_functions __gmp_set_memory_functions
#endif

_Static_assert(sizeof(mp_limb_t) == 8, "64-bit limbs");

#endif
