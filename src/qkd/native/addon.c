/*
 * The Node-API binding of the kernels: arguments checked here are the memory-safety ones (a
 * buffer long enough for the lengths given); kernels.ts checks the rest before calling.
 */
#include <node_api.h>
#include <stdio.h>
#include "kernels.h"

#define CALL(env, call)                                                  \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error((env), "ERR_QKS_NATIVE", "Node-API call failed"); \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

/* The bytes of a typed array argument, at least `need` of them. */
static uint8_t *bytes_arg(napi_env env, napi_value value, size_t need, const char *what) {
  bool is;
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value buffer;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok) {
    napi_throw_type_error(env, "ERR_QKS_NATIVE", what);
    return NULL;
  }
  size_t size = type == napi_uint32_array ? 4 : type == napi_uint8_array ? 1 : 0;
  if (size == 0 || length * size < need) {
    char message[128];
    snprintf(message, sizeof message, "%s: a Uint8Array or Uint32Array of at least %zu bytes", what, need);
    napi_throw_range_error(env, "ERR_QKS_NATIVE", message);
    return NULL;
  }
  static uint8_t none;
  return data ? data : &none; /* an empty view may have no memory */
}

static size_t size_arg(napi_env env, napi_value value) {
  int64_t v = -1;
  napi_get_value_int64(env, value, &v);
  return v < 0 ? 0 : (size_t)v;
}

/* A new Uint32Array of `words` words (zeroed), and its memory. */
static napi_value new_words(napi_env env, size_t words, uint32_t **data) {
  napi_value buffer, array;
  if (napi_create_arraybuffer(env, words * 4, (void **)data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_uint32_array, words, buffer, 0, &array) != napi_ok)
    return NULL;
  return array;
}

#define ARGS(n)                                                    \
  size_t argc = (n);                                               \
  napi_value argv[(n)];                                            \
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  if (argc < (n)) {                                                \
    napi_throw_type_error(env, "ERR_QKS_NATIVE", "too few arguments"); \
    return NULL;                                                   \
  }

static napi_value number(napi_env env, double v) {
  napi_value out;
  return napi_create_double(env, v, &out) == napi_ok ? out : NULL;
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
  const uint8_t *x = bytes_arg(env, argv[0], (n + 7) / 8, "amplify: key");
  const uint8_t *a = x ? bytes_arg(env, argv[2], seed_bytes, "amplify: seed a") : NULL;
  const uint8_t *b = a ? bytes_arg(env, argv[3], seed_bytes, "amplify: seed b") : NULL;
  if (!b) return NULL;
  uint32_t *out;
  napi_value result = new_words(env, (out_bits + 31) / 32, &out);
  if (!result) return NULL;
  if (!qks_amplify(x, n, a, b, out_bits, out)) {
    napi_throw_error(env, "ERR_QKS_NATIVE", "amplify: out of memory");
    return NULL;
  }
  return result;
}

/* encodeGaps(indices: Uint32Array): Uint8Array, the gap code. */
static napi_value encode_gaps(napi_env env, napi_callback_info info) {
  ARGS(1);
  size_t count;
  napi_typedarray_type type;
  void *data;
  napi_value buffer, array;
  size_t offset;
  if (napi_get_typedarray_info(env, argv[0], &type, &count, &data, &buffer, &offset) != napi_ok ||
      type != napi_uint32_array) {
    napi_throw_type_error(env, "ERR_QKS_NATIVE", "encodeGaps: a Uint32Array");
    return NULL;
  }
  const size_t size = qks_gaps_size(data, count);
  uint8_t *out;
  CALL(env, napi_create_arraybuffer(env, size, (void **)&out, &buffer));
  CALL(env, napi_create_typedarray(env, napi_uint8_array, size, buffer, 0, &array));
  qks_gaps_encode(data, count, out);
  return array;
}

/* decodeGaps(bytes, count, below, out: Uint32Array): 0, or what is wrong (kernels.h). */
static napi_value decode_gaps(napi_env env, napi_callback_info info) {
  ARGS(4);
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &offset) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_QKS_NATIVE", "decodeGaps: a Uint8Array");
    return NULL;
  }
  const size_t count = size_arg(env, argv[1]);
  double below;
  CALL(env, napi_get_value_double(env, argv[2], &below));
  uint32_t *out = (uint32_t *)bytes_arg(env, argv[3], 4 * count, "decodeGaps: out");
  if (!out) return NULL;
  return number(env, qks_gaps_decode(data ? data : (void *)"", length, count, (uint64_t)below, out));
}

/* choices(firstHalf, signalBelow, decoyBelow, indices, bases, bits, decoys, vacuums): [signal, decoy, vacuum]. */
static napi_value choices(napi_env env, napi_callback_info info) {
  ARGS(8);
  struct qks_choice_hash h;
  CALL(env, napi_get_value_uint32(env, argv[0], &h.first_half));
  CALL(env, napi_get_value_uint32(env, argv[1], &h.signal_below));
  CALL(env, napi_get_value_uint32(env, argv[2], &h.decoy_below));
  napi_typedarray_type type;
  size_t m, offset;
  void *indices;
  napi_value buffer;
  if (napi_get_typedarray_info(env, argv[3], &type, &m, &indices, &buffer, &offset) != napi_ok ||
      type != napi_uint32_array) {
    napi_throw_type_error(env, "ERR_QKS_NATIVE", "choices: indices in a Uint32Array");
    return NULL;
  }
  uint32_t *strings[4];
  for (int i = 0; i < 4; i++)
    if (!(strings[i] = (uint32_t *)bytes_arg(env, argv[4 + i], 4 * ((m + 31) / 32), "choices: bit string")))
      return NULL;
  uint64_t counts[3] = {0, 0, 0};
  qks_choices(&h, indices, m, strings[0], strings[1], strings[2], strings[3], counts);
  napi_value out;
  CALL(env, napi_create_array_with_length(env, 3, &out));
  for (uint32_t i = 0; i < 3; i++) CALL(env, napi_set_element(env, out, i, number(env, (double)counts[i])));
  return out;
}

NAPI_MODULE_INIT() {
  qks_process_setup();
  static const struct {
    const char *name;
    napi_callback fn;
  } table[] = {{"amplify", amplify}, {"encodeGaps", encode_gaps}, {"decodeGaps", decode_gaps}, {"choices", choices}};
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    napi_value fn;
    if (napi_create_function(env, table[i].name, NAPI_AUTO_LENGTH, table[i].fn, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, table[i].name, fn) != napi_ok)
      return NULL;
  }
  return exports;
}
