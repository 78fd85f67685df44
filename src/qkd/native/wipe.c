/*
 * Memory: wiping of key material, for our buffers and for GMP's scratch space (GMP allocates
 * through the functions installed here, which clear every block before freeing it), and glibc's
 * malloc kept from returning freed megabytes to the kernel.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#include "gmp-calls.h"

void qks_wipe_free(void *p, size_t bytes) {
  if (!p) return;
  explicit_bzero(p, bytes);
  free(p);
}

static void *gmp_alloc(size_t bytes) {
  void *p = malloc(bytes);
  if (!p) abort(); /* what GMP itself does when memory runs out */
  return p;
}

static void *gmp_realloc(void *old, size_t old_bytes, size_t new_bytes) {
  void *p = gmp_alloc(new_bytes);
  memcpy(p, old, old_bytes < new_bytes ? old_bytes : new_bytes);
  qks_wipe_free(old, old_bytes);
  return p;
}

static void install(void) {
  mp_set_memory_functions(gmp_alloc, gmp_realloc, qks_wipe_free);
#ifdef __GLIBC__
  /*
   * A frame's arrays are megabytes each, freed and allocated again per frame: served by mmap, as
   * glibc does above its threshold, every page of each one faults on first touch, which cost more
   * than the loops that fill them. Kept in the heap (up to 32 MiB, glibc's largest threshold, and
   * 256 MiB kept on free) they are reused; calloc then clears them, several times faster.
   */
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

void qks_process_setup(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, install);
}
