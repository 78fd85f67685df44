/*
 * Cascade's corrector (cascade.ts describes the protocol and wraps this): the state machine that
 * runs every binary search at once, fed with the responder's answers, asking the next questions.
 * The same questions, in the same order, as the JavaScript it replaced: per block, its search's
 * range and flags in flat arrays; views of the key per pass with range parities (a Fenwick tree
 * of XORs over words for passes whose blocks are long, a scan for the others).
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

/* Ranges shorter than this many words are scanned; only longer ones use the tree. */
#define SCAN_WORDS 24

enum { LO, HI, CHECKED, FLIPS }; /* a block's four words of state */

struct order {
  size_t length;           /* bits in the pass's order */
  int32_t *rows, *columns; /* NULL: the key's own order */
  int32_t *row_of, *column_of;
  uint32_t row_key, column_key;
};

struct view {
  uint32_t *bits, *tree; /* tree: NULL when every range is scanned */
  size_t words;
};

struct qks_corrector {
  uint32_t *key;
  size_t n, passes, blocks;
  struct order *orders;
  struct view *views;
  size_t *size, *first; /* per pass: block size; number of its first block (passes + 1) */
  uint8_t *pass_of, *top, *odd, *searching, *parity;
  int32_t *state;
  int32_t *pending, *spare, *asked;
  size_t pending_count, asked_count;
  long opened;
  int answered;
  long failed; /* the first error returned (< 0), returned again by every later call */
  uint64_t disclosed, corrected, rounds;
};

static inline unsigned turn(uint32_t i, uint32_t key) { return ((i ^ key) + 0x7f4a7c15u) * 0x9e3779b1u >> 27; }

static size_t to_key(const struct order *o, uint32_t q) {
  if (!o->rows) return q;
  const uint32_t v = (uint32_t)o->column_of[q >> 5];
  const uint32_t i = (v & ~31u) + ((q - turn(v, o->column_key)) & 31);
  return 32 * (size_t)(uint32_t)o->rows[i] + ((v - turn(i, o->row_key)) & 31);
}

static size_t to_pass(const struct order *o, uint32_t p) {
  if (!o->rows) return p;
  const uint32_t i = (uint32_t)o->row_of[p >> 5];
  const uint32_t v = (i & ~31u) + ((p + turn(i, o->row_key)) & 31);
  return 32 * (size_t)(uint32_t)o->columns[v] + ((i + turn(v, o->column_key)) & 31);
}

static inline unsigned parity32(uint32_t x) { return (unsigned)__builtin_parity(x); }

static void view_flip(struct view *v, size_t i) {
  const uint32_t d = 1u << (i & 31);
  v->bits[i >> 5] ^= d;
  if (v->tree)
    for (size_t w = (i >> 5) + 1; w <= v->words; w += w & -w) v->tree[w] ^= d;
}

static uint32_t view_prefix(const struct view *v, size_t w) {
  uint32_t x = 0;
  for (; w > 0; w -= w & -w) x ^= v->tree[w];
  return x;
}

static unsigned view_range(const struct view *v, size_t lo, size_t hi) {
  if (hi <= lo) return 0;
  const uint32_t *b = v->bits;
  const size_t wl = lo >> 5, wh = (hi - 1) >> 5;
  const uint32_t mask_lo = 0xffffffffu << (lo & 31), mask_hi = 0xffffffffu >> (31 - ((hi - 1) & 31));
  if (wl == wh) return parity32(b[wl] & mask_lo & mask_hi);
  uint32_t x = (b[wl] & mask_lo) ^ (b[wh] & mask_hi);
  if (wh - wl < SCAN_WORDS || !v->tree)
    for (size_t w = wl + 1; w < wh; w++) x ^= b[w];
  else
    x ^= view_prefix(v, wh) ^ view_prefix(v, wl + 1);
  return parity32(x);
}

static void free_order(struct order *o) {
  free(o->rows);
  free(o->columns);
  free(o->row_of);
  free(o->column_of);
}

void qks_corrector_free(struct qks_corrector *c) {
  if (!c) return;
  qks_wipe_free(c->key, 4 * ((c->n + 31) / 32));
  for (size_t p = 0; c->orders && p < c->passes; p++) free_order(&c->orders[p]);
  for (size_t p = 0; c->views && p < c->passes; p++) {
    qks_wipe_free(c->views[p].bits, 4 * c->views[p].words);
    qks_wipe_free(c->views[p].tree, 4 * (c->views[p].words + 1));
  }
  free(c->orders);
  free(c->views);
  free(c->size);
  free(c->first);
  free(c->pass_of);
  free(c->top);
  qks_wipe_free(c->odd, c->blocks);
  free(c->searching);
  qks_wipe_free(c->parity, c->blocks);
  qks_wipe_free(c->state, 16 * c->blocks);
  qks_wipe_free(c->pending, 4 * c->blocks + 4);
  qks_wipe_free(c->spare, 4 * c->blocks + 4);
  qks_wipe_free(c->asked, 4 * c->blocks + 4);
  free(c);
}

/* The inverse of p, a permutation of [0, size) (checked: NULL if it is not one, or no memory). */
static int32_t *inverse(const int32_t *p, size_t size) {
  int32_t *out = malloc(4 * size + 4);
  if (!out) return NULL;
  memset(out, 0xff, 4 * size);
  for (size_t i = 0; i < size; i++) {
    const uint32_t v = (uint32_t)p[i];
    if (v >= size || out[v] != -1) {
      free(out);
      return NULL;
    }
    out[v] = (int32_t)i;
  }
  return out;
}

/* A pass's order from its spec: the key's own, or a shuffle of the padded key; 0 when malformed. */
static int order_of(struct order *o, const struct qks_pass *s, size_t n, int *error) {
  const size_t padded = 1024 * ((n + 1023) / 1024);
  o->length = s->length;
  if (s->length != (s->rows ? padded : n) || s->block_size < 1 || s->block_size > s->length) {
    *error = QKS_BAD_PASS;
    return 0;
  }
  if (!s->rows) return 1;
  /* Copies, then checked: the caller's arrays may change under us (shared memory). */
  const size_t words = s->length / 32;
  o->rows = malloc(4 * words);
  o->columns = malloc(4 * words);
  *error = QKS_OUT_OF_MEMORY;
  if (!o->rows || !o->columns) return 0;
  memcpy(o->rows, s->rows, 4 * words);
  memcpy(o->columns, s->columns, 4 * words);
  o->row_of = inverse(o->rows, words);
  o->column_of = inverse(o->columns, words);
  o->row_key = s->row_key;
  o->column_key = s->column_key;
  if (!o->row_of || !o->column_of) *error = QKS_BAD_TABLES; /* (or out of memory: either way, none) */
  return o->row_of && o->column_of;
}

struct qks_corrector *qks_corrector_new(const uint32_t *key, size_t n, size_t passes, const struct qks_pass *specs,
                                        int *error) {
  /* The bound a peer's plan must keep (cascade-plan.ts's checkPass): memory, and int32 positions. */
  if (n < 1 || n >= ((size_t)1 << 26)) {
    *error = QKS_BAD_KEY_LENGTH;
    return NULL;
  }
  struct qks_corrector *c = calloc(1, sizeof *c);
  *error = QKS_OUT_OF_MEMORY;
  if (!c) return NULL;
  c->n = n;
  c->passes = passes;
  c->opened = -1;
  const size_t key_words = (n + 31) / 32;
  c->orders = calloc(passes, sizeof *c->orders);
  c->views = calloc(passes, sizeof *c->views);
  c->size = calloc(passes, sizeof *c->size);
  c->first = calloc(passes + 1, sizeof *c->first);
  c->key = malloc(4 * key_words);
  int ok = c->orders && c->views && c->size && c->first && c->key;
  for (size_t p = 0; ok && p < passes; p++) {
    if (!(ok = order_of(&c->orders[p], &specs[p], n, error))) break;
    c->size[p] = specs[p].block_size;
    c->first[p + 1] = c->first[p] + (specs[p].length + specs[p].block_size - 1) / specs[p].block_size;
  }
  /* As cascade.ts: no variant's plan comes near this; a peer's may not cost more memory. */
  if (ok && c->first[passes] > 1024 * ((n + 1023) / 1024) + 64) {
    *error = QKS_TOO_MANY_BLOCKS;
    ok = 0;
  }
  const size_t blocks = ok ? c->first[passes] : 0;
  c->blocks = blocks;
  if (ok) {
    *error = QKS_OUT_OF_MEMORY;
    memcpy(c->key, key, 4 * key_words);
    c->pass_of = malloc(blocks + 1);
    c->top = calloc(blocks + 1, 1);
    c->odd = calloc(blocks + 1, 1);
    c->searching = calloc(blocks + 1, 1);
    c->parity = calloc(blocks + 1, 1);
    c->state = calloc(4 * blocks + 4, 4);
    c->pending = malloc(4 * blocks + 4);
    c->spare = malloc(4 * blocks + 4);
    c->asked = malloc(4 * blocks + 4);
    ok = c->pass_of && c->top && c->odd && c->searching && c->parity && c->state && c->pending && c->spare && c->asked;
  }
  for (size_t p = 0; ok && p < passes; p++) memset(c->pass_of + c->first[p], (int)p, c->first[p + 1] - c->first[p]);
  if (!ok) {
    qks_corrector_free(c);
    return NULL;
  }
  return c;
}

static void search(struct qks_corrector *c, size_t s) {
  const size_t pass = c->pass_of[s], size = c->size[pass];
  const size_t lo = (s - c->first[pass]) * size, end = lo + size;
  int32_t *st = c->state + 4 * s;
  c->searching[s] = 1;
  st[LO] = (int32_t)lo;
  st[HI] = (int32_t)(end < c->orders[pass].length ? end : c->orders[pass].length);
  c->parity[s] = c->top[s];
  st[CHECKED] = -1;
  c->pending[c->pending_count++] = (int32_t)s;
}

static int open_next(struct qks_corrector *c) {
  const size_t pass = (size_t)++c->opened;
  const struct order *o = &c->orders[pass];
  struct view *v = &c->views[pass];
  const size_t size = c->size[pass], words = (o->length + 31) / 32, key_words = (c->n + 31) / 32;
  v->words = words;
  v->bits = malloc(4 * words + 4);
  if (!v->bits) return 0;
  if (o->rows)
    qks_view(c->key, c->n, o->rows, o->columns, words, o->row_key, o->column_key, v->bits);
  else {
    memcpy(v->bits, c->key, 4 * key_words);
    if (c->n % 32) v->bits[key_words - 1] &= 0xffffffffu >> (32 - c->n % 32);
  }
  if (size > (SCAN_WORDS - 1) * 32) {
    uint32_t *t = v->tree = calloc(words + 1, 4);
    if (!t) return 0;
    memcpy(t + 1, v->bits, 4 * words);
    for (size_t i = 1; i <= words; i++)
      if (i + (i & -i) <= words) t[i + (i & -i)] ^= t[i];
  }
  for (size_t s = c->first[pass], lo = 0; s < c->first[pass + 1]; s++, lo += size) {
    const size_t hi = lo + size < o->length ? lo + size : o->length;
    c->odd[s] = (uint8_t)(view_range(v, lo, hi) ^ c->top[s]);
    if (c->odd[s]) search(c, s);
  }
  return 1;
}

static int still_odd(struct qks_corrector *c, size_t s) {
  int32_t *st = c->state + 4 * s;
  /* No bit of the block flipped since the range was last known odd: it still is. */
  if (st[CHECKED] == st[FLIPS]) return 1;
  if (view_range(&c->views[c->pass_of[s]], (size_t)st[LO], (size_t)st[HI]) == c->parity[s]) return 0;
  st[CHECKED] = st[FLIPS];
  return 1;
}

static void finish(struct qks_corrector *c, size_t s) {
  c->searching[s] = 0;
  /* Another correction may have left the block odd again while this search ran. */
  if (c->odd[s]) search(c, s);
}

/* One binary-search step with the responder's parity of the first half. */
static void step(struct qks_corrector *c, size_t s, unsigned first_half) {
  if (!still_odd(c, s)) return finish(c, s);
  int32_t *st = c->state + 4 * s;
  const int32_t lo = st[LO], mid = lo + ((st[HI] - lo) >> 1);
  if (view_range(&c->views[c->pass_of[s]], (size_t)lo, (size_t)mid) != first_half) {
    st[HI] = mid;
    c->parity[s] = (uint8_t)first_half;
  } else {
    st[LO] = mid;
    c->parity[s] ^= (uint8_t)first_half;
  }
  /* The half kept is odd too (its parity and the other half's add up to the whole's). */
  st[CHECKED] = st[FLIPS];
  c->pending[c->pending_count++] = (int32_t)s;
}

/* The bit at the search's lo is wrong: flip it everywhere, and reopen every block it makes odd. */
static int fix(struct qks_corrector *c, size_t s) {
  const size_t position = to_key(&c->orders[c->pass_of[s]], (uint32_t)c->state[4 * s + LO]);
  /*
   * Padding is the same at both ends: only answers that contradict each other lead there. Nor
   * can consistent answers correct more bits than the key has (each fix removes an error):
   * contradicting ones could make fixes undo each other forever (blocks of one bit).
   */
  if (position >= c->n || c->corrected >= c->n) return 0;
  c->key[position >> 5] ^= 1u << (position & 31);
  c->corrected++;
  for (size_t pass = 0; (long)pass <= c->opened; pass++) {
    const size_t in_pass = to_pass(&c->orders[pass], (uint32_t)position);
    view_flip(&c->views[pass], in_pass);
    const size_t t = c->first[pass] + in_pass / c->size[pass];
    c->state[4 * t + FLIPS]++;
    c->odd[t] ^= 1;
    if (c->odd[t] && !c->searching[t]) search(c, t);
  }
  finish(c, s);
  return 1;
}

/* The next batch into out (3 words a question): their number, 0 when Cascade is done, or < 0. */
static long next_questions(struct qks_corrector *c, uint32_t *out) {
  for (;;) {
    /* Searches down to one bit need no question: that bit is wrong. */
    int32_t *ready = c->pending;
    const size_t count = c->pending_count;
    c->pending = c->spare;
    c->spare = ready;
    c->pending_count = 0;
    for (size_t i = 0; i < count; i++) {
      const size_t s = (size_t)ready[i];
      if (!still_odd(c, s))
        finish(c, s);
      else if (c->state[4 * s + HI] - c->state[4 * s + LO] == 1) {
        if (!fix(c, s)) return QKS_INCONSISTENT;
      } else
        c->asked[c->asked_count++] = (int32_t)s;
    }
    if (c->pending_count > 0) continue;
    if (c->asked_count > 0) break;
    if (c->opened == (long)c->passes - 1) return 0;
    /*
     * From the third pass on (whole-key-sized blocks in the improved variants, few errors left)
     * the remaining passes run together: a few duplicate parities instead of ~log2(n) round trips
     * per pass.
     */
    do
      if (!open_next(c)) return QKS_NO_MEMORY;
    while (c->opened >= 2 && c->opened < (long)c->passes - 1);
  }
  for (size_t i = 0; i < c->asked_count; i++) {
    const size_t s = (size_t)c->asked[i];
    const int32_t lo = c->state[4 * s + LO];
    out[3 * i] = c->pass_of[s];
    out[3 * i + 1] = (uint32_t)lo;
    out[3 * i + 2] = (uint32_t)(lo + ((c->state[4 * s + HI] - lo) >> 1));
  }
  return (long)c->asked_count;
}

static long answers(struct qks_corrector *c, const uint8_t *answers, size_t bytes, uint32_t *out) {
  if (!c->answered) {
    if (bytes != (c->blocks + 7) / 8) return QKS_WRONG_COUNT;
    c->answered = 1;
    for (size_t i = 0; i < c->blocks; i++) c->top[i] = (answers[i >> 3] >> (i & 7)) & 1;
    c->disclosed += c->blocks;
    if (!open_next(c)) return QKS_NO_MEMORY;
  } else {
    const size_t count = c->asked_count;
    if (bytes != (count + 7) / 8) return QKS_WRONG_COUNT;
    c->disclosed += count;
    /* step never adds to the asked list, so it is read in place. */
    c->asked_count = 0;
    for (size_t i = 0; i < count; i++) step(c, (size_t)c->asked[i], (answers[i >> 3] >> (i & 7)) & 1);
  }
  return next_questions(c, out);
}

long qks_corrector_answers(struct qks_corrector *c, const uint8_t *bytes, size_t length, uint32_t *out) {
  if (c->failed) return c->failed;
  c->rounds++;
  const long result = answers(c, bytes, length, out);
  /* A wrong count changes nothing and may be retried; after the others the state is unusable. */
  if (result < 0 && result != QKS_WRONG_COUNT) c->failed = result;
  return result;
}

size_t qks_corrector_blocks(const struct qks_corrector *c) { return c->blocks; }

void qks_corrector_counts(const struct qks_corrector *c, double out[3]) {
  out[0] = (double)c->disclosed;
  out[1] = (double)c->corrected;
  out[2] = (double)c->rounds;
}

size_t qks_corrector_key_words(const struct qks_corrector *c) { return (c->n + 31) / 32; }

void qks_corrector_key(const struct qks_corrector *c, uint32_t *out) { memcpy(out, c->key, 4 * ((c->n + 31) / 32)); }
