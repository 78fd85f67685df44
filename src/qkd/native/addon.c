/*
 * The Node-API binding of the kernels. The checks here are the memory-safety ones (arrays of the
 * right type, long enough for the lengths given); kernels.ts's callers check the rest.
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernels.h"

static void *fail(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_type_error(env, "ERR_QKS_NATIVE", what);
  return NULL;
}

#define CALL(call) \
  if ((call) != napi_ok) return fail(env, "Node-API call failed")

#define ARGS(n)                                                  \
  size_t argc = (n);                                             \
  napi_value argv[(n)];                                          \
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));    \
  if (argc < (n)) return fail(env, "too few arguments")

/*
 * The memory of a typed array argument of `type` (Uint8Array also takes a Buffer) holding at
 * least `need` elements; its length in *length when asked.
 */
static void *typed(napi_env env, napi_value value, napi_typedarray_type type, size_t need, size_t *length,
                   const char *what) {
  static uint8_t none; /* an empty view may have no memory */
  bool is = false;
  napi_typedarray_type actual;
  size_t count, offset;
  void *data;
  napi_value buffer;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, value, &actual, &count, &data, &buffer, &offset) != napi_ok || actual != type)
    return fail(env, what);
  if (count < need) {
    char message[160];
    snprintf(message, sizeof message, "%s: at least %zu elements", what, need);
    napi_throw_range_error(env, "ERR_QKS_NATIVE", message);
    return NULL;
  }
  if (length) *length = count;
  return data ? data : &none;
}

static size_t size_arg(napi_env env, napi_value value) {
  int64_t v = -1;
  napi_get_value_int64(env, value, &v);
  return v < 0 ? 0 : (size_t)v;
}

static uint32_t u32_arg(napi_env env, napi_value value) {
  uint32_t v = 0;
  napi_get_value_uint32(env, value, &v);
  return v;
}

static napi_value number(napi_env env, double v) {
  napi_value out;
  return napi_create_double(env, v, &out) == napi_ok ? out : NULL;
}

/* A new typed array of `count` elements of `size` bytes (zeroed), and its memory. */
static napi_value new_array(napi_env env, napi_typedarray_type type, size_t size, size_t count, void **data) {
  napi_value buffer, array;
  if (napi_create_arraybuffer(env, count * size, data, &buffer) != napi_ok ||
      napi_create_typedarray(env, type, count, buffer, 0, &array) != napi_ok)
    return fail(env, "out of memory");
  return array;
}

/* amplify(x, n, a, b, outBits): Uint32Array of outBits bits. */
static napi_value amplify(napi_env env, napi_callback_info info) {
  ARGS(5);
  const size_t n = size_arg(env, argv[1]), out_bits = size_arg(env, argv[4]);
  if (n == 0 || out_bits == 0 || out_bits > n) {
    napi_throw_range_error(env, "ERR_QKS_NATIVE", "amplify: 1 ≤ outBits ≤ n");
    return NULL;
  }
  const size_t seed_bytes = (n + out_bits - 1 + 7) / 8;
  const uint32_t *x = typed(env, argv[0], napi_uint32_array, (n + 31) / 32, NULL, "amplify: key (Uint32Array)");
  const uint8_t *a = x ? typed(env, argv[2], napi_uint8_array, seed_bytes, NULL, "amplify: seed a (Uint8Array)") : NULL;
  const uint8_t *b = a ? typed(env, argv[3], napi_uint8_array, seed_bytes, NULL, "amplify: seed b (Uint8Array)") : NULL;
  uint32_t *out;
  napi_value result = b ? new_array(env, napi_uint32_array, 4, (out_bits + 31) / 32, (void **)&out) : NULL;
  if (result && !qks_amplify((const uint8_t *)x, n, a, b, out_bits, out)) return fail(env, "amplify: out of memory");
  return result;
}

/* encodeGaps(indices: Uint32Array): Uint8Array, the gap code. */
static napi_value encode_gaps(napi_env env, napi_callback_info info) {
  ARGS(1);
  size_t count;
  const uint32_t *indices = typed(env, argv[0], napi_uint32_array, 0, &count, "encodeGaps: indices (Uint32Array)");
  if (!indices) return NULL;
  const size_t size = qks_gaps_size(indices, count);
  uint8_t *out;
  napi_value result = new_array(env, napi_uint8_array, 1, size, (void **)&out);
  if (result) qks_gaps_encode(indices, count, out);
  return result;
}

/* decodeGaps(bytes, count, below, out: Uint32Array): 0, or what is wrong (kernels.h). */
static napi_value decode_gaps(napi_env env, napi_callback_info info) {
  ARGS(4);
  size_t length;
  const uint8_t *bytes = typed(env, argv[0], napi_uint8_array, 0, &length, "decodeGaps: code (Uint8Array)");
  const size_t count = size_arg(env, argv[1]);
  double below = 0;
  napi_get_value_double(env, argv[2], &below);
  below = below >= 0 ? (below < 4294967296.0 ? below : 4294967296.0) : 0; /* indices are u32; NaN: 0 */
  uint32_t *out = bytes ? typed(env, argv[3], napi_uint32_array, count, NULL, "decodeGaps: out (Uint32Array)") : NULL;
  return out ? number(env, qks_gaps_decode(bytes, length, count, (uint64_t)below, out)) : NULL;
}

/* choices(firstHalf, signalBelow, decoyBelow, indices, bases, bits, decoys, vacuums): [signal, decoy, vacuum]. */
static napi_value choices(napi_env env, napi_callback_info info) {
  ARGS(8);
  const struct qks_choice_hash h = {u32_arg(env, argv[0]), u32_arg(env, argv[1]), u32_arg(env, argv[2])};
  size_t m;
  const uint32_t *indices = typed(env, argv[3], napi_uint32_array, 0, &m, "choices: indices (Uint32Array)");
  if (!indices) return NULL;
  uint32_t *strings[4];
  for (int i = 0; i < 4; i++)
    if (!(strings[i] = typed(env, argv[4 + i], napi_uint32_array, (m + 31) / 32, NULL, "choices: bit string")))
      return NULL;
  uint64_t counts[3] = {0, 0, 0};
  qks_choices(&h, indices, m, strings[0], strings[1], strings[2], strings[3], counts);
  napi_value out;
  CALL(napi_create_array_with_length(env, 3, &out));
  for (uint32_t i = 0; i < 3; i++) CALL(napi_set_element(env, out, i, number(env, (double)counts[i])));
  return out;
}

/* permutation(size, seed: Uint32Array of 4): Int32Array. */
static napi_value permutation(napi_env env, napi_callback_info info) {
  ARGS(2);
  const size_t size = size_arg(env, argv[0]);
  if (size > (1u << 26)) return fail(env, "permutation: at most 2^26 elements");
  const uint32_t *seed = typed(env, argv[1], napi_uint32_array, 4, NULL, "permutation: seed (Uint32Array)");
  int32_t *out;
  napi_value result = seed ? new_array(env, napi_int32_array, 4, size, (void **)&out) : NULL;
  if (result) qks_permutation(out, size, seed);
  return result;
}

/* view(key, n, rows, columns, rowKey, columnKey): Uint32Array of rows.length words. */
static napi_value view(napi_env env, napi_callback_info info) {
  ARGS(6);
  const size_t n = size_arg(env, argv[1]);
  size_t words, column_words;
  const uint32_t *key = typed(env, argv[0], napi_uint32_array, (n + 31) / 32, NULL, "view: key (Uint32Array)");
  const int32_t *rows = key ? typed(env, argv[2], napi_int32_array, 0, &words, "view: rows (Int32Array)") : NULL;
  const int32_t *columns =
      rows ? typed(env, argv[3], napi_int32_array, words, &column_words, "view: columns (Int32Array)") : NULL;
  if (!columns) return NULL;
  if (words % 32 || column_words != words) return fail(env, "view: rows and columns of whole tiles, alike");
  for (size_t i = 0; i < words; i++)
    if ((uint32_t)rows[i] >= words || (uint32_t)columns[i] >= words) return fail(env, "view: not permutations");
  uint32_t *out;
  napi_value result = new_array(env, napi_uint32_array, 4, words, (void **)&out);
  if (result) qks_view(key, n, rows, columns, words, u32_arg(env, argv[4]), u32_arg(env, argv[5]), out);
  return result;
}

/* A corrector held by JavaScript: freed by corrector.free, or when collected, whichever is first. */
struct held {
  struct qks_corrector *c;
};

/* Marks the externals that are correctors (an External from another addon is not one). */
static const napi_type_tag CORRECTOR_TAG = {0x716b732d636f7272ull, 0x6563746f72000001ull};

static void collected(napi_env env, void *data, void *hint) {
  struct held *h = data;
  qks_corrector_free(h->c);
  free(h);
}

static struct held *held_of(napi_env env, napi_value value) {
  struct held *h = NULL;
  napi_valuetype type;
  bool tagged = false;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external ||
      napi_check_object_type_tag(env, value, &CORRECTOR_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, value, (void **)&h) != napi_ok || !h)
    return fail(env, "corrector: not a corrector");
  return h;
}

static struct qks_corrector *held_arg(napi_env env, napi_value value) {
  struct held *h = held_of(env, value);
  if (h && !h->c) return fail(env, "corrector: already freed");
  return h ? h->c : NULL;
}

static const char *const CORRECTOR_ERRORS[] = {
    [QKS_BAD_KEY_LENGTH] = "correctorNew: keys of 1 to 2^26 bits",
    [QKS_BAD_PASS] = "correctorNew: a pass is n bits (shuffled: n padded to 1024) in blocks of 1 to its length",
    [QKS_BAD_TABLES] = "correctorNew: a shuffled pass's rows and columns are permutations of its words",
    [QKS_TOO_MANY_BLOCKS] = "correctorNew: too many blocks",
    [QKS_OUT_OF_MEMORY] = "correctorNew: out of memory",
};

/*
 * correctorNew(key, n, specs: Uint32Array of [length, blockSize, rowKey, columnKey] a pass,
 * tables: [rows, columns] a pass, undefined for the key's own order). The tables' elements are
 * read first (reading them may run JavaScript), every pointer after; the corrector checks its
 * own copies of the tables.
 */
static napi_value corrector_new(napi_env env, napi_callback_info info) {
  ARGS(4);
  napi_value tables[2 * 255];
  uint32_t listed = 0;
  bool is_array = false;
  CALL(napi_is_array(env, argv[3], &is_array));
  if (!is_array) return fail(env, "correctorNew: tables in an array");
  CALL(napi_get_array_length(env, argv[3], &listed));
  if (listed > 2 * 255) return fail(env, "correctorNew: 1 to 255 passes");
  for (uint32_t i = 0; i < listed; i++) CALL(napi_get_element(env, argv[3], i, &tables[i]));
  const size_t n = size_arg(env, argv[1]);
  size_t spec_words;
  const uint32_t *key = typed(env, argv[0], napi_uint32_array, (n + 31) / 32, NULL, "correctorNew: key");
  const uint32_t *spec = key ? typed(env, argv[2], napi_uint32_array, 0, &spec_words, "correctorNew: specs") : NULL;
  if (!spec) return NULL;
  const size_t passes = spec_words / 4;
  if (spec_words % 4 || passes == 0 || passes > 255) return fail(env, "correctorNew: 1 to 255 passes");
  struct qks_pass specs[255];
  for (size_t p = 0; p < passes; p++) {
    const uint32_t *w = spec + 4 * p;
    specs[p] = (struct qks_pass){w[0], w[1], NULL, NULL, w[2], w[3]};
    napi_valuetype type = napi_undefined;
    if (2 * p + 1 < listed) CALL(napi_typeof(env, tables[2 * p], &type));
    if (type == napi_undefined || type == napi_null) continue;
    if (!(specs[p].rows = typed(env, tables[2 * p], napi_int32_array, w[0] / 32, NULL, "correctorNew: rows")) ||
        !(specs[p].columns = typed(env, tables[2 * p + 1], napi_int32_array, w[0] / 32, NULL, "correctorNew: columns")))
      return NULL;
  }
  struct held *h = malloc(sizeof *h);
  int error = QKS_OUT_OF_MEMORY;
  if (!h || !(h->c = qks_corrector_new(key, n, passes, specs, &error))) {
    free(h);
    return fail(env, CORRECTOR_ERRORS[error]);
  }
  napi_value out;
  if (napi_create_external(env, h, collected, NULL, &out) != napi_ok ||
      napi_type_tag_object(env, out, &CORRECTOR_TAG) != napi_ok) {
    collected(env, h, NULL);
    return fail(env, "correctorNew: Node-API call failed");
  }
  return out;
}

/* correctorAnswers(corrector, answers: Uint8Array, out: Uint32Array of 3 words a block): count, or < 0. */
static napi_value corrector_answers(napi_env env, napi_callback_info info) {
  ARGS(3);
  struct qks_corrector *c = held_arg(env, argv[0]);
  size_t bytes;
  const uint8_t *answers = c ? typed(env, argv[1], napi_uint8_array, 0, &bytes, "correctorAnswers: answers") : NULL;
  uint32_t *out =
      answers ? typed(env, argv[2], napi_uint32_array, 3 * qks_corrector_blocks(c), NULL, "correctorAnswers: out")
              : NULL;
  return out ? number(env, (double)qks_corrector_answers(c, answers, bytes, out)) : NULL;
}

/* correctorState(corrector, counts: Float64Array of 3, key: Uint32Array or undefined): counts, and the key when asked. */
static napi_value corrector_state(napi_env env, napi_callback_info info) {
  ARGS(3);
  struct qks_corrector *c = held_arg(env, argv[0]);
  double *counts = c ? typed(env, argv[1], napi_float64_array, 3, NULL, "correctorState: counts") : NULL;
  if (!counts) return NULL;
  qks_corrector_counts(c, counts);
  napi_valuetype type;
  CALL(napi_typeof(env, argv[2], &type));
  if (type != napi_undefined) {
    uint32_t *key = typed(env, argv[2], napi_uint32_array, qks_corrector_key_words(c), NULL, "correctorState: key");
    if (!key) return NULL;
    qks_corrector_key(c, key);
  }
  return NULL;
}

/* correctorFree(corrector): wipes and frees it now. */
static napi_value corrector_free(napi_env env, napi_callback_info info) {
  ARGS(1);
  struct held *h = held_of(env, argv[0]);
  if (!h) return NULL;
  qks_corrector_free(h->c);
  h->c = NULL;
  return NULL;
}

NAPI_MODULE_INIT() {
  qks_process_setup();
  static const struct {
    const char *name;
    napi_callback fn;
  } table[] = {
      {"amplify", amplify},         {"encodeGaps", encode_gaps}, {"decodeGaps", decode_gaps},
      {"choices", choices},         {"permutation", permutation}, {"view", view},
      {"correctorNew", corrector_new}, {"correctorAnswers", corrector_answers},
      {"correctorState", corrector_state}, {"correctorFree", corrector_free},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    napi_value fn;
    if (napi_create_function(env, table[i].name, NAPI_AUTO_LENGTH, table[i].fn, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, table[i].name, fn) != napi_ok)
      return NULL;
  }
  return exports;
}
