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
static const uint8_t *bytes_arg(napi_env env, napi_value value, size_t need, const char *what) {
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
  return data ? data : (const uint8_t *)"";
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

/* amplify(x, n, a, b, outBits): Uint32Array of outBits bits. */
static napi_value amplify(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
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

NAPI_MODULE_INIT() {
  qks_wipe_gmp_scratch();
  napi_value fn;
  if (napi_create_function(env, "amplify", NAPI_AUTO_LENGTH, amplify, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "amplify", fn) != napi_ok)
    return NULL;
  return exports;
}
