/*
 * SHA-256 for the state tree (src/host/state/sha256-record.ts), natively. A tree update hashes ~log2(n)
 * records of 65 bytes; for inputs that short a JavaScript call into node:crypto costs more than the hash, so
 * this addon takes a whole root-ward chain of records (or a key and value pair) in ONE call. The hashing is
 * OpenSSL's SHA256 as linked into the node binary (it uses the CPU's SHA extensions where present); nothing
 * here defines the hash: the digests are standard SHA-256, checked against the JavaScript fallback in tests.
 * Optional: without it the JavaScript SHA-256 computes the same digests.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final: deprecated in OpenSSL 3 in favour of EVP, and much faster for 65 bytes */
#include <node_api.h>
#include <openssl/sha.h>
#include <string.h>

#define RECORD 65

/* The low-level interface on purpose: OpenSSL 3's one-shot SHA256() goes through EVP and an algorithm fetch,
 * ~1 us per call; Init/Update/Final is the bare compression (SHA extensions where present), ~0.1 us here. */
static void sha256(const unsigned char *data, size_t len, unsigned char *out) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, data, len);
  SHA256_Final(out, &c);
}
#define HASH 32

static napi_value throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERANGE", msg);
  return NULL;
}

/* The bytes of a Uint8Array argument (its own view: byte offset applied). Throws a TypeError otherwise. */
static int u8(napi_env env, napi_value v, unsigned char **p, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) goto bad;
  napi_typedarray_type type;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &data, &ab, &off) != napi_ok || type != napi_uint8_array) goto bad;
  *p = (unsigned char *)data;
  return 0;
bad:
  napi_throw_type_error(env, "EINVAL", "expected a Uint8Array");
  return -1;
}

static int uint_arg(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected a whole number");
    return -1;
  }
  return 0;
}

/* leafRecord(key, value, rec): rec[0..65) = 0x00 ‖ sha256(key) ‖ sha256(value). */
static napi_value leaf_record(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_range(env, "leafRecord(key, value, rec)");
  unsigned char *key, *value, *rec;
  size_t key_len, value_len, rec_len;
  if (u8(env, argv[0], &key, &key_len) || u8(env, argv[1], &value, &value_len) || u8(env, argv[2], &rec, &rec_len)) return NULL;
  if (rec_len != RECORD) return throw_range(env, "leafRecord: the record must be 65 bytes");
  unsigned char kh[HASH], vh[HASH]; /* not straight into rec: key or value may overlap it */
  sha256(key, key_len, kh);
  sha256(value, value_len, vh);
  rec[0] = 0x00;
  memcpy(rec + 1, kh, HASH);
  memcpy(rec + 1 + HASH, vh, HASH);
  return NULL;
}

/*
 * hashChain(recs, count, slots, out): recs holds `count` records of 65 bytes back to back. For i = 1..count-1,
 * the hash of record i-1 is written into record i at byte slots[i] (1 or 33: its left or right child), then
 * record i is hashed; the hash of the last record goes to out[0..32). So a leaf-to-root path is one call.
 */
static napi_value hash_chain(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) return throw_range(env, "hashChain(recs, count, slots, out)");
  unsigned char *recs, *slots, *out;
  size_t recs_len, slots_len, out_len;
  uint32_t count;
  if (u8(env, argv[0], &recs, &recs_len) || uint_arg(env, argv[1], &count) || u8(env, argv[2], &slots, &slots_len) ||
      u8(env, argv[3], &out, &out_len))
    return NULL;
  if (count == 0 || (size_t)count > recs_len / RECORD || slots_len < count || out_len < HASH) {
    return throw_range(env, "hashChain: count, records, slots or output out of range");
  }
  for (uint32_t i = 1; i < count; i++) {
    if (slots[i] != 1 && slots[i] != 1 + HASH) return throw_range(env, "hashChain: a slot is neither 1 nor 33");
  }
  unsigned char h[HASH];
  sha256(recs, RECORD, h);
  for (uint32_t i = 1; i < count; i++) {
    unsigned char *rec = recs + (size_t)i * RECORD;
    memcpy(rec + slots[i], h, HASH);
    sha256(rec, RECORD, h);
  }
  memcpy(out, h, HASH);
  return NULL;
}

/* sha256Into(data, out, at): out[at..at+32) = sha256(data). */
static napi_value sha256_into(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_range(env, "sha256Into(data, out, at)");
  unsigned char *data, *out;
  size_t data_len, out_len;
  uint32_t at;
  if (u8(env, argv[0], &data, &data_len) || u8(env, argv[1], &out, &out_len) || uint_arg(env, argv[2], &at)) return NULL;
  if (at > out_len || out_len - at < HASH) return throw_range(env, "sha256Into: output out of range");
  unsigned char h[HASH];
  sha256(data, data_len, h);
  memcpy(out + at, h, HASH);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "leafRecord", NULL, leaf_record, NULL, NULL, NULL, napi_enumerable, NULL },
    { "hashChain", NULL, hash_chain, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sha256Into", NULL, sha256_into, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
