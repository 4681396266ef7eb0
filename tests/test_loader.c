/* test_loader.c - the safetensors reader and the model loader.
 *
 * The test writes its own tiny checkpoints (config.json + safetensors, the
 * format written by hand below) into a temporary directory: valid ones
 * (tied, untied, sharded, mixed dtypes) that must load with the right
 * config, shapes, values and parameter counts, and broken ones that must
 * each fail with their own specific message.
 *
 * Tiny architecture: L=2, H=16, Hq=4, Hkv=2, D=8, I=32, V=64.
 *
 * Docs: docs/weights.md
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "safetensors.h"
#include "test.h"

enum { L = 2, H = 16, HQ = 4, HKV = 2, D = 8, I = 32, V = 64 };

typedef struct {
    char name[96];
    const char *dtype; /* "BF16", "F16", "F32" or anything else for errors */
    int ndim;
    int64_t shape[FS_MAX_DIMS];
    int file; /* shard number (0 or 1) */
} spec;

static char root[200];
static int case_no;

/* A fresh directory per case: root/caseN. */
static void new_dir(char *out, size_t cap) {
    snprintf(out, cap, "%s/case%d", root, case_no++);
    mkdir(out, 0700);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void write_bytes(const char *dir, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static size_t dsize(const char *dt) { return !strcmp(dt, "F32") ? 4 : !strcmp(dt, "I8") ? 1 : 2; }

/* Element k of a tensor: a value exact in bf16, f16 and f32, derived from
 * the tensor's index so a mix-up between tensors shows. */
static float value_of(int tensor, size_t k) { return (float)((int)(k % 61) - 30) * 0.25f + (float)tensor; }

/* Write a safetensors file holding specs[i] for i with file == which. The
 * header is padded with spaces to a multiple of 8, as HF's writer does. */
static void write_st(const char *dir, const char *fname, const spec *s, int n, int which) {
    char *hdr = malloc(65536);
    size_t hl = 0, off = 0;
    hl += (size_t)sprintf(hdr + hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        if (s[i].file != which) continue;
        size_t el = 1;
        char sh[96];
        size_t sl = (size_t)sprintf(sh, "[");
        for (int d = 0; d < s[i].ndim; d++) {
            el *= (size_t)s[i].shape[d];
            sl += (size_t)sprintf(sh + sl, d ? ",%lld" : "%lld", (long long)s[i].shape[d]);
        }
        sprintf(sh + sl, "]");
        size_t nb = el * dsize(s[i].dtype);
        hl += (size_t)sprintf(hdr + hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}", s[i].name,
                              s[i].dtype, sh, off, off + nb);
        off += nb;
    }
    hdr[hl++] = '}';
    while (hl % 8) hdr[hl++] = ' ';
    size_t total = 8 + hl + off;
    unsigned char *buf = calloc(1, total);
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)hl >> (8 * b));
    memcpy(buf + 8, hdr, hl);
    unsigned char *data = buf + 8 + hl;
    for (int i = 0; i < n; i++) {
        if (s[i].file != which) continue;
        size_t el = 1;
        for (int d = 0; d < s[i].ndim; d++) el *= (size_t)s[i].shape[d];
        for (size_t k = 0; k < el; k++) {
            float v = value_of(i, k);
            if (!strcmp(s[i].dtype, "F32")) {
                memcpy(data, &v, 4);
                data += 4;
            } else {
                uint16_t h = !strcmp(s[i].dtype, "F16") ? fs_f32_to_f16(v) : fs_f32_to_bf16(v);
                memcpy(data, &h, 2);
                data += 2;
            }
        }
    }
    write_bytes(dir, fname, buf, total);
    free(buf);
    free(hdr);
}

static int add(spec *s, int n, const char *name, const char *dt, int ndim, int64_t a, int64_t b) {
    snprintf(s[n].name, sizeof s[n].name, "%s", name);
    s[n].dtype = dt;
    s[n].ndim = ndim;
    s[n].shape[0] = a;
    s[n].shape[1] = b;
    s[n].file = 0;
    return n + 1;
}

/* Every tensor of the tiny architecture (+ lm_head when asked). */
static int arch_specs(spec *s, const char *dt, int with_lm_head) {
    int n = 0;
    n = add(s, n, "model.embed_tokens.weight", dt, 2, V, H);
    for (int l = 0; l < L; l++) {
        char nm[96];
#define T(suffix, nd, a, b) (snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, suffix), n = add(s, n, nm, dt, nd, a, b))
        T("input_layernorm", 1, H, 0);
        T("self_attn.q_proj", 2, HQ * D, H);
        T("self_attn.k_proj", 2, HKV * D, H);
        T("self_attn.v_proj", 2, HKV * D, H);
        T("self_attn.o_proj", 2, H, HQ * D);
        T("self_attn.q_norm", 1, D, 0);
        T("self_attn.k_norm", 1, D, 0);
        T("post_attention_layernorm", 1, H, 0);
        T("mlp.gate_proj", 2, I, H);
        T("mlp.up_proj", 2, I, H);
        T("mlp.down_proj", 2, H, I);
#undef T
    }
    n = add(s, n, "model.norm.weight", dt, 1, H, 0);
    if (with_lm_head) n = add(s, n, "lm_head.weight", dt, 2, V, H);
    return n;
}

static int find_spec(const spec *s, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name)) return i;
    return -1;
}

/* config.json for the tiny model; `extra` members are appended and, being
 * later duplicates, override the defaults above them. */
static void write_config(const char *dir, int tied, const char *extra) {
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\",\n"
             " \"num_hidden_layers\": %d, \"hidden_size\": %d, \"num_attention_heads\": %d,\n"
             " \"num_key_value_heads\": %d, \"head_dim\": %d, \"intermediate_size\": %d,\n"
             " \"vocab_size\": %d, \"max_position_embeddings\": 512, \"rope_theta\": 1000000,\n"
             " \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": %s, \"torch_dtype\": \"bfloat16\",\n"
             " \"bos_token_id\": 1, \"eos_token_id\": 2, \"attention_bias\": false, \"rope_scaling\": null,\n"
             " \"hidden_act\": \"silu\", \"use_sliding_window\": false, \"sliding_window\": null%s%s}\n",
             L, H, HQ, HKV, D, I, V, tied ? "true" : "false", extra && *extra ? ", " : "", extra ? extra : "");
    write_text(dir, "config.json", buf);
}

/* Build dir with config + model.safetensors from specs. */
static void make_model(char *dir, size_t cap, int tied, const char *extra, const spec *s, int n) {
    new_dir(dir, cap);
    write_config(dir, tied, extra);
    write_st(dir, "model.safetensors", s, n, 0);
}

/* Load dir and expect failure with `want` in the message. */
static void expect_fail(const char *dir, const char *want, int line) {
    fs_model m;
    fs_err e = {{0}};
    int rc = fs_model_load(&m, dir, &e);
    if (rc == 0) fs_model_free(&m);
    CHECKF(rc == -1 && strstr(e.msg, want), "line %d: rc %d, message \"%s\", want \"%s\"", line, rc, e.msg, want);
}
#define EXPECT_FAIL(dir, want) expect_fail(dir, want, __LINE__)

static size_t arch_params(int with_lm_head) {
    size_t per_layer = H + (size_t)HQ * D * H + 2 * (size_t)HKV * D * H + (size_t)H * HQ * D + 2 * D + H +
                       3 * (size_t)I * H;
    return (size_t)V * H + L * per_layer + H + (with_lm_head ? (size_t)V * H : 0);
}

static void test_valid_tied(void) {
    spec s[64];
    int n = arch_specs(s, "BF16", 0);
    char dir[256];
    make_model(dir, sizeof dir, 1, NULL, s, n);
    write_text(dir, "generation_config.json",
               "{\"temperature\": 0.6, \"top_k\": 20, \"top_p\": 0.95, \"min_p\": 0, \"repetition_penalty\": 1.1, "
               "\"eos_token_id\": [2, 7], \"do_sample\": true}");
    fs_model m;
    fs_err e = {{0}};
    int rc = fs_model_load(&m, dir, &e);
    CHECKF(rc == 0, "%s", e.msg);
    if (rc) return;
    const fs_config *c = &m.cfg;
    CHECK_EQ_INT(c->n_layers, L);
    CHECK_EQ_INT(c->hidden, H);
    CHECK_EQ_INT(c->n_heads, HQ);
    CHECK_EQ_INT(c->n_kv_heads, HKV);
    CHECK_EQ_INT(c->head_dim, D);
    CHECK_EQ_INT(c->ffn, I);
    CHECK_EQ_INT(c->vocab, V);
    CHECK_EQ_INT(c->max_pos, 512);
    CHECK(c->rope_theta == 1e6);
    CHECK(c->rms_eps == 1e-6);
    CHECK_EQ_INT(c->tie_embeddings, 1);
    CHECK_STR(c->torch_dtype, "bfloat16");
    CHECK_EQ_INT(c->bos_id, 1);
    CHECK_EQ_INT(c->n_eos, 2); /* {2} from config.json union {2, 7} */
    CHECK(c->eos_ids[0] == 2 && c->eos_ids[1] == 7);
    CHECK(c->has_temperature && c->temperature == 0.6);
    CHECK(c->has_top_k && c->top_k == 20);
    CHECK(c->has_top_p && c->top_p == 0.95);
    CHECK(c->has_min_p && c->min_p == 0);
    CHECK(c->has_repetition_penalty && c->repetition_penalty == 1.1);

    CHECK_EQ_INT(m.n_tensors, n);
    CHECK(m.lm_head.data == m.embed_tokens.data); /* tied: same bytes */
    CHECK_EQ_INT(m.lm_head.shape[0], V);
    CHECK_EQ_INT(m.stored_params, arch_params(0));
    CHECK_EQ_INT(m.logical_params, arch_params(0));
    CHECK_STR(fs_model_tensor_file(&m, 0), "model.safetensors");
    CHECK(fs_model_tensor_file(&m, n) == NULL);
    /* values: tensor index i in specs, element k */
    int iq = find_spec(s, n, "model.layers.1.self_attn.q_proj.weight");
    CHECK_EQ_INT(m.layers[1].q_proj.shape[0], HQ * D);
    CHECK_EQ_INT(m.layers[1].q_proj.shape[1], H);
    CHECK_EQ_INT(m.layers[1].q_proj.nbytes, HQ * D * H * 2);
    CHECK(fs_tensor_get_f32(&m.layers[1].q_proj, 0) == value_of(iq, 0));
    CHECK(fs_tensor_get_f32(&m.layers[1].q_proj, 100) == value_of(iq, 100));
    int id = find_spec(s, n, "model.layers.0.mlp.down_proj.weight");
    CHECK(fs_tensor_get_f32(&m.layers[0].down_proj, 37) == value_of(id, 37));
    CHECK(fs_tensor_get_f32(&m.norm, 3) == value_of(find_spec(s, n, "model.norm.weight"), 3));
    /* m.tensors is in file order, and file order is our write order */
    CHECK_STR(m.tensors[0].name, "model.embed_tokens.weight");
    CHECK_STR(m.tensors[n - 1].name, "model.norm.weight");
    /* data pointers are aligned to their element size */
    CHECK(((uintptr_t)m.layers[0].k_norm.data & 1) == 0);
    /* unmapping the file's pages changes no value: a view maps them again */
    fs_model_release_pages(&m);
    CHECK(fs_tensor_get_f32(&m.layers[1].q_proj, 100) == value_of(iq, 100));
    CHECK(fs_tensor_get_f32(&m.norm, 3) == value_of(find_spec(s, n, "model.norm.weight"), 3));
    fs_model_free(&m);
    fs_model_free(&m); /* second free is harmless */
}

static void test_valid_untied(void) {
    spec s[64];
    int n = arch_specs(s, "BF16", 1);
    char dir[256];
    make_model(dir, sizeof dir, 0, NULL, s, n);
    fs_model m;
    fs_err e = {{0}};
    CHECKF(fs_model_load(&m, dir, &e) == 0, "%s", e.msg);
    CHECK(m.lm_head.data != m.embed_tokens.data);
    CHECK(fs_tensor_get_f32(&m.lm_head, 5) == value_of(find_spec(s, n, "lm_head.weight"), 5));
    CHECK_EQ_INT(m.logical_params, arch_params(1));
    CHECK_EQ_INT(m.stored_params, arch_params(1));
    CHECK_EQ_INT(m.cfg.n_eos, 1);
    CHECK_EQ_INT(m.cfg.has_temperature, 0);
    fs_model_free(&m);

    /* tied but lm_head stored anyway: loads, and uses embed_tokens as HF does */
    make_model(dir, sizeof dir, 1, NULL, s, n);
    CHECKF(fs_model_load(&m, dir, &e) == 0, "%s", e.msg);
    CHECK(m.lm_head.data == m.embed_tokens.data);
    CHECK_EQ_INT(m.stored_params, arch_params(1));
    CHECK_EQ_INT(m.logical_params, arch_params(0));
    fs_model_free(&m);

    /* an unknown extra tensor is kept but harmless */
    n = add(s, n, "model.rotary_emb.inv_freq", "F32", 1, D / 2, 0);
    make_model(dir, sizeof dir, 0, NULL, s, n);
    CHECKF(fs_model_load(&m, dir, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(m.n_tensors, n);
    CHECK_EQ_INT(m.stored_params, arch_params(1) + D / 2);
    fs_model_free(&m);

    /* untied and no lm_head */
    n = arch_specs(s, "BF16", 0);
    make_model(dir, sizeof dir, 0, NULL, s, n);
    EXPECT_FAIL(dir, "missing tensor lm_head.weight");
}

static void test_dtypes(void) {
    spec s[64];
    int n = arch_specs(s, "F32", 0);
    int iemb = find_spec(s, n, "model.embed_tokens.weight");
    int iup = find_spec(s, n, "model.layers.1.mlp.up_proj.weight");
    int inorm = find_spec(s, n, "model.norm.weight");
    s[iemb].dtype = "F16";
    s[iup].dtype = "BF16";
    char dir[256];
    make_model(dir, sizeof dir, 1, "\"torch_dtype\": \"float32\"", s, n);
    fs_model m;
    fs_err e = {{0}};
    CHECKF(fs_model_load(&m, dir, &e) == 0, "%s", e.msg);
    CHECK(m.embed_tokens.dtype == FS_DTYPE_F16);
    CHECK(m.layers[1].up_proj.dtype == FS_DTYPE_BF16);
    CHECK(m.norm.dtype == FS_DTYPE_F32);
    CHECK_STR(m.cfg.torch_dtype, "float32");
    int ok = 1;
    for (size_t k = 0; k < (size_t)V * H; k++) ok &= fs_tensor_get_f32(&m.embed_tokens, k) == value_of(iemb, k);
    for (size_t k = 0; k < (size_t)I * H; k++) ok &= fs_tensor_get_f32(&m.layers[1].up_proj, k) == value_of(iup, k);
    for (size_t k = 0; k < (size_t)H; k++) ok &= fs_tensor_get_f32(&m.norm, k) == value_of(inorm, k);
    CHECK(ok);
    CHECK_EQ_INT(m.embed_tokens.nbytes, V * H * 2);
    CHECK_EQ_INT(m.norm.nbytes, H * 4);
    fs_model_free(&m);
    CHECK_STR(fs_dtype_name(FS_DTYPE_BF16), "BF16");
    CHECK_STR(fs_dtype_name(FS_DTYPE_F16), "F16");
    CHECK_STR(fs_dtype_name(FS_DTYPE_F32), "F32");
    CHECK_EQ_INT(fs_dtype_size(FS_DTYPE_F32), 4);
    CHECK_EQ_INT(fs_dtype_size(FS_DTYPE_BF16), 2);
    CHECK_EQ_INT(fs_dtype_size(FS_DTYPE_F16), 2);
}

/* Two shards + index; `mapping_fix` lets a case corrupt the index. */
static void write_sharded(char *dir, size_t cap, spec *s, int n, const char *index_override) {
    new_dir(dir, cap);
    write_config(dir, 1, NULL);
    for (int i = 0; i < n; i++) s[i].file = i >= n / 2;
    write_st(dir, "model-00001-of-00002.safetensors", s, n, 0);
    write_st(dir, "model-00002-of-00002.safetensors", s, n, 1);
    if (index_override) {
        write_text(dir, "model.safetensors.index.json", index_override);
        return;
    }
    char *idx = malloc(65536);
    size_t k = (size_t)sprintf(idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(idx + k, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", s[i].name,
                             s[i].file + 1);
    sprintf(idx + k, "}}");
    write_text(dir, "model.safetensors.index.json", idx);
    free(idx);
}

static void test_sharded(void) {
    spec s[64];
    int n = arch_specs(s, "BF16", 0);
    char dir[256];
    write_sharded(dir, sizeof dir, s, n, NULL);
    fs_model m;
    fs_err e = {{0}};
    CHECKF(fs_model_load(&m, dir, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(m.n_tensors, n);
    CHECK_STR(fs_model_tensor_file(&m, 0), "model-00001-of-00002.safetensors");
    CHECK_STR(fs_model_tensor_file(&m, n - 1), "model-00002-of-00002.safetensors");
    CHECK(fs_tensor_get_f32(&m.norm, 2) == value_of(find_spec(s, n, "model.norm.weight"), 2));
    fs_model_free(&m);

    /* index naming a shard that is not there */
    write_sharded(dir, sizeof dir, s, n,
                  "{\"weight_map\": {\"model.norm.weight\": \"model-00003-of-00003.safetensors\"}}");
    EXPECT_FAIL(dir, "weight_map names model-00003-of-00003.safetensors, which does not exist");
    /* index mapping a tensor to the wrong shard */
    write_sharded(dir, sizeof dir, s, n,
                  "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
    EXPECT_FAIL(dir, "tensor model.norm.weight is mapped to model-00001-of-00002.safetensors, which does not contain it");
    /* path traversal */
    write_sharded(dir, sizeof dir, s, n, "{\"weight_map\": {\"model.norm.weight\": \"../x.safetensors\"}}");
    EXPECT_FAIL(dir, "outside the model directory");
    write_sharded(dir, sizeof dir, s, n, "{\"weight_map\": {}}");
    EXPECT_FAIL(dir, "missing or empty \"weight_map\"");
    write_sharded(dir, sizeof dir, s, n, "{\"weight_map\": {\"a\": 1}}");
    EXPECT_FAIL(dir, "is not a file name");
    write_sharded(dir, sizeof dir, s, n, "{\"weight_map\": ");
    EXPECT_FAIL(dir, "model.safetensors.index.json: JSON error at byte 15");
    /* the same tensor in both shards */
    n = add(s, n, "model.norm.weight", "BF16", 1, H, 0);
    new_dir(dir, sizeof dir);
    write_config(dir, 1, NULL);
    for (int i = 0; i < n; i++) s[i].file = i == n - 1;
    write_st(dir, "model-00001-of-00002.safetensors", s, n, 0);
    write_st(dir, "model-00002-of-00002.safetensors", s, n, 1);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"model-00002-of-00002.safetensors\", "
               "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\"}}");
    EXPECT_FAIL(dir, "tensor model.norm.weight appears in both model-00001-of-00002.safetensors and "
                     "model-00002-of-00002.safetensors");
}

/* Write a safetensors file from a raw header (space-padded to a multiple of
 * 8 so the data section is aligned) and `data_len` zero bytes. */
static void write_raw_st(const char *dir, const char *hdr, size_t data_len, int64_t len_override) {
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    size_t total = 8 + padded + data_len;
    unsigned char *buf = calloc(1, total + 1);
    uint64_t n = len_override >= 0 ? (uint64_t)len_override : padded;
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)(n >> (8 * b));
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    write_bytes(dir, "model.safetensors", buf, total);
    free(buf);
}

/* One corrupt safetensors header, checked through fs_model_load (so the
 * whole path, including the error prefix, is covered). */
static void bad_header(const char *hdr, size_t data_len, int64_t len_override, const char *want, int line) {
    char dir[256];
    new_dir(dir, sizeof dir);
    write_config(dir, 1, NULL);
    write_raw_st(dir, hdr, data_len, len_override);
    expect_fail(dir, want, line);
}
#define BAD_HEADER(h, dl, lo, want) bad_header(h, dl, lo, want, __LINE__)

static void test_corrupt_files(void) {
    /* header of 40 bytes + 16 data bytes: x is F32 [2, 2] at [0, 16) */
    const char *ok = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}      ";
    char dir[256];
    /* a sane file with only x is a valid safetensors file but not a model */
    BAD_HEADER(ok, 16, -1, "missing tensor model.embed_tokens.weight");
    BAD_HEADER(ok, 8, -1, "model.safetensors: tensor x: data_offsets [0, 16] out of range: data section is 8 bytes");
    BAD_HEADER(ok, 16, 1000, "model.safetensors: header length 1000 runs past the end of the file");
    BAD_HEADER(ok, 16, (int64_t)0x7fffffffffffffffLL, "runs past the end of the file");
    BAD_HEADER("hello world!", 0, -1, "header is not a JSON object");
    BAD_HEADER("[1, 2, 3]   ", 0, -1, "header is not a JSON object");
    BAD_HEADER("{\"x\": {\"dtype\": \"F32\",}}", 0, -1, "model.safetensors: header (offsets from byte 8): JSON error at byte 22");
    BAD_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               16, -1, "tensor b: data_offsets [4, 12] overlap tensor a (ends at 8)");
    BAD_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
               16, -1, "overlap");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24, -1,
               "tensor x: F32 [2, 3] needs 24 bytes, data_offsets give 20");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,4]}}", 16, -1,
               "tensor x: data_offsets begin 8 > end 4");
    BAD_HEADER("{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, -1,
               "model.safetensors: tensor pos: unsupported dtype \"I64\"");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", 16, -1,
               "tensor x: shape overflows");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,16]}}", 16, -1,
               "tensor x: shape[0] is not a non-negative integer");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[9007199254740992, 1024],\"data_offsets\":[0,16]}}", 16, -1,
               "shape overflows (byte size too large)");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,16]}}", 16, -1, "shape[0] is not");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,16]}}", 16, -1, "shape[0] is not");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 16, -1,
               "shape has 5 dims");
    BAD_HEADER("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 16, -1, "tensor x: missing or non-string \"dtype\"");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 16, -1, "tensor x: missing or non-array \"shape\"");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 16, -1, "\"data_offsets\" must be");
    BAD_HEADER("{\"x\":[1]}", 16, -1, "tensor x: header entry is not a JSON object");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 16, -1, "not aligned");
    BAD_HEADER("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               16, -1, "tensor x: appears twice");
    BAD_HEADER("{\"__metadata__\": 5}", 0, -1, "\"__metadata__\" is not an object");

    /* shorter than the length prefix */
    new_dir(dir, sizeof dir);
    write_config(dir, 1, NULL);
    write_bytes(dir, "model.safetensors", "\x10\0\0", 3);
    EXPECT_FAIL(dir, "model.safetensors: file is 3 bytes, too short");

    /* a real model file cut short: the last tensor runs past EOF */
    spec s[64];
    int n = arch_specs(s, "BF16", 0);
    make_model(dir, sizeof dir, 1, NULL, s, n);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    stat(path, &st);
    CHECK(truncate(path, st.st_size - 10) == 0);
    EXPECT_FAIL(dir, "model.safetensors: tensor model.norm.weight: data_offsets");
    EXPECT_FAIL(dir, "out of range");

    /* the header parser through the buffer entry point directly */
    fs_safetensors f;
    fs_err e = {{0}};
    unsigned char buf[8 + 128] = {0};
    const char *h = "{\"__metadata__\":{\"k\":\"v\"},\"e\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[0,0]}}";
    size_t hl = strlen(h);
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, h, hl);
    CHECKF(fs_st_parse(&f, buf, 8 + hl, "mem", &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(f.n_tensors, 1);
    CHECK(fs_st_find(&f, "e") && fs_st_find(&f, "e")->nbytes == 0);
    CHECK(fs_st_find(&f, "x") == NULL);
    fs_st_close(&f);
    CHECK(fs_st_open(&f, "/nonexistent/x.safetensors", "x.safetensors", &e) == -1 &&
          strstr(e.msg, "x.safetensors: No such file"));
}

static void test_missing_and_shapes(void) {
    spec s[64];
    char dir[256];
    int n = arch_specs(s, "BF16", 0);
    /* drop one tensor */
    int iu = find_spec(s, n, "model.layers.1.mlp.up_proj.weight");
    s[iu] = s[--n];
    make_model(dir, sizeof dir, 1, NULL, s, n);
    EXPECT_FAIL(dir, "missing tensor model.layers.1.mlp.up_proj.weight");

    n = arch_specs(s, "BF16", 0);
    s[find_spec(s, n, "model.layers.1.mlp.up_proj.weight")].shape[1] = H / 2;
    make_model(dir, sizeof dir, 1, NULL, s, n);
    EXPECT_FAIL(dir, "model.safetensors: tensor model.layers.1.mlp.up_proj.weight: expected shape [32, 16], got [32, 8]");

    n = arch_specs(s, "BF16", 0);
    s[find_spec(s, n, "model.layers.0.self_attn.k_norm.weight")].ndim = 2;
    s[find_spec(s, n, "model.layers.0.self_attn.k_norm.weight")].shape[1] = 1;
    make_model(dir, sizeof dir, 1, NULL, s, n);
    EXPECT_FAIL(dir, "tensor model.layers.0.self_attn.k_norm.weight: expected shape [8], got [8, 1]");

    n = arch_specs(s, "BF16", 1);
    s[find_spec(s, n, "lm_head.weight")].shape[0] = V + 1;
    make_model(dir, sizeof dir, 0, NULL, s, n);
    EXPECT_FAIL(dir, "tensor lm_head.weight: expected shape [64, 16], got [65, 16]");

    /* the config says more layers than the checkpoint has */
    n = arch_specs(s, "BF16", 0);
    make_model(dir, sizeof dir, 1, "\"num_hidden_layers\": 3", s, n);
    EXPECT_FAIL(dir, "missing tensor model.layers.2.input_layernorm.weight");

    /* no weights at all */
    new_dir(dir, sizeof dir);
    write_config(dir, 1, NULL);
    EXPECT_FAIL(dir, "no model.safetensors or model.safetensors.index.json");
}

static void bad_config(const char *extra, const char *want, int line) {
    spec s[64];
    int n = arch_specs(s, "BF16", 0);
    char dir[256];
    make_model(dir, sizeof dir, 1, extra, s, n);
    expect_fail(dir, want, line);
}
#define BAD_CONFIG(extra, want) bad_config(extra, want, __LINE__)

static void test_config(void) {
    char dir[256];
    new_dir(dir, sizeof dir);
    EXPECT_FAIL(dir, "no config.json");
    fs_config c;
    fs_err e = {{0}};
    CHECK(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "no config.json"));
    write_text(dir, "config.json", "{\"model_type\": \"qwen3\",\n \"hidden_size\": 01}");
    CHECK(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "config.json: JSON error at byte 41 (line 2, column 18)"));

    BAD_CONFIG("\"model_type\": \"gpt2\", \"architectures\": [\"GPT2LMHeadModel\"]",
               "unsupported architecture GPT2LMHeadModel (model_type \"gpt2\"); fs runs Qwen3ForCausalLM, "
               "LlamaForCausalLM, Qwen2ForCausalLM");
    BAD_CONFIG("\"model_type\": \"mistral\", \"architectures\": null", "unsupported architecture (none) (model_type "
               "\"mistral\")");
    /* a Qwen3 checkpoint declared as Llama: its q_norm is not Llama's */
    BAD_CONFIG("\"model_type\": \"llama\", \"architectures\": [\"LlamaForCausalLM\"]",
               "unexpected tensor model.layers.0.self_attn.q_norm.weight: LlamaForCausalLM has none");
    BAD_CONFIG("\"architectures\": [\"Qwen2ForCausalLM\"]", "q_norm.weight: Qwen2ForCausalLM has none");
    BAD_CONFIG("\"architectures\": [\"LlamaForCausalLM\"], \"mlp_bias\": true", "unsupported mlp_bias = true");
    BAD_CONFIG("\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": true",
               "unsupported attention_bias = true for LlamaForCausalLM");
    BAD_CONFIG("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
               "\"high_freq_factor\": 4.0}", "rope_scaling of type \"llama3\" needs a positive number "
               "\"original_max_position_embeddings\"");
    BAD_CONFIG("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, "
               "\"high_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192}",
               "high_freq_factor (1) must be larger than low_freq_factor (4)");
    BAD_CONFIG("\"num_key_value_heads\": 3", "must be a multiple of num_key_value_heads (3)");
    BAD_CONFIG("\"num_key_value_heads\": 0", "\"num_key_value_heads\" must be an integer in [1,");
    BAD_CONFIG("\"head_dim\": 7", "head_dim (7) must be even");
    BAD_CONFIG("\"hidden_size\": -16", "\"hidden_size\" must be an integer in [1, 1048576], got -16");
    BAD_CONFIG("\"hidden_size\": 16.5", "got 16.5");
    BAD_CONFIG("\"hidden_size\": \"16\"", "\"hidden_size\" must be an integer");
    BAD_CONFIG("\"vocab_size\": 1e30", "\"vocab_size\" must be an integer");
    BAD_CONFIG("\"num_attention_heads\": 65536, \"num_key_value_heads\": 1, \"head_dim\": 65536",
               "num_attention_heads * head_dim");
    BAD_CONFIG("\"attention_bias\": true", "unsupported attention_bias");
    BAD_CONFIG("\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}", "unsupported rope_scaling type \"yarn\"");
    BAD_CONFIG("\"rope_scaling\": {\"factor\": 4.0}", "rope_scaling without a rope_type");
    BAD_CONFIG("\"rope_parameters\": {\"rope_type\": \"linear\"}", "unsupported rope_parameters type");
    BAD_CONFIG("\"rope_theta\": 0", "\"rope_theta\" must be a positive number");
    BAD_CONFIG("\"rms_norm_eps\": -1", "\"rms_norm_eps\" must be a positive number");
    BAD_CONFIG("\"tie_word_embeddings\": 1", "\"tie_word_embeddings\" must be true or false");
    BAD_CONFIG("\"use_sliding_window\": true", "unsupported use_sliding_window");
    BAD_CONFIG("\"hidden_act\": \"gelu\"", "unsupported hidden_act \"gelu\"");
    BAD_CONFIG("\"eos_token_id\": \"x\"", "\"eos_token_id\" must be");
    BAD_CONFIG("\"eos_token_id\": [1,2,3,4,5,6,7,8,9]", "more than 8 eos_token_id");
    BAD_CONFIG("\"layer_types\": [\"full_attention\", \"sliding_attention\"]", "unsupported layer type");
    BAD_CONFIG("\"num_hidden_layers\": null", "\"num_hidden_layers\" must be an integer");
    /* A string from the file is quoted with its control bytes escaped, so
     * the message stays one line and sends no escape sequence to a terminal
     * (found by fuzz_model). */
    BAD_CONFIG("\"model_type\": \"qw\\n\\u001b[2J3\", \"architectures\": []", "model_type \"qw\\n\\x1b[2J3\"");

    /* defaults: Qwen3Config's (head_dim 128; no kv heads -> = heads; no tie) */
    new_dir(dir, sizeof dir);
    write_text(dir, "config.json",
               "{\"model_type\": \"qwen3\", \"num_hidden_layers\": 1, \"hidden_size\": 8, \"num_attention_heads\": 2,"
               " \"intermediate_size\": 4, \"vocab_size\": 10, \"eos_token_id\": [5, 6], \"rope_scaling\": null,"
               " \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 5000}, \"dtype\": \"float16\"}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.n_kv_heads, 2);
    CHECK_EQ_INT(c.tie_embeddings, 0);
    CHECK_EQ_INT(c.max_pos, 32768);
    CHECK(c.rope_theta == 5000);
    CHECK(c.rms_eps == 1e-6);
    CHECK_EQ_INT(c.bos_id, -1);
    CHECK_EQ_INT(c.n_eos, 2);
    CHECK_STR(c.torch_dtype, "float16");
    /* generation_config.json errors */
    write_text(dir, "generation_config.json", "{\"top_p\": 1.5}");
    CHECK(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "generation_config.json: \"top_p\" must be a number in [0, 1]"));
    write_text(dir, "generation_config.json", "{\"top_k\": -1}");
    CHECK(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "\"top_k\" must be a non-negative integer"));
    write_text(dir, "generation_config.json", "{\"eos_token_id\": 6, \"temperature\": null}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(c.n_eos, 2);
    CHECK_EQ_INT(c.has_temperature, 0);
    write_text(dir, "generation_config.json", "[");
    CHECK(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "generation_config.json: JSON error at byte 1"));

    /* generation_config.json's bos_token_id where config.json has none */
    write_text(dir, "generation_config.json", "{\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009]}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(c.bos_id, 128000);
    CHECK_EQ_INT(c.n_eos, 5);   /* config.json's 5, 6 and these three */
    CHECK_EQ_INT(c.eos_ids[4], 128009);
    write_text(dir, "generation_config.json", "{\"bos_token_id\": -1}");
    CHECK(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "\"bos_token_id\" must be a non-negative integer"));

    /* tokenizer_config.json's eos_token: a string or an AddedToken object */
    write_text(dir, "generation_config.json", "{}");
    write_text(dir, "tokenizer_config.json", "{\"eos_token\": \"<|eot_id|>\"}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK_STR(c.eos_token, "<|eot_id|>");
    write_text(dir, "tokenizer_config.json", "{\"eos_token\": {\"content\": \"<|im_end|>\", \"lstrip\": false}}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK_STR(c.eos_token, "<|im_end|>");
    write_text(dir, "tokenizer_config.json", "{\"eos_token\": null}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK_STR(c.eos_token, "");
    write_text(dir, "tokenizer_config.json", "{\"eos_token\": 5}");
    CHECK(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "tokenizer_config.json: \"eos_token\" must be"));

    /* Llama's defaults (LlamaConfig): head_dim = H / Hq, max_pos 2048; and
     * Llama 3's rope_scaling, here in transformers 5's rope_parameters */
    new_dir(dir, sizeof dir);
    write_text(dir, "config.json",
               "{\"architectures\": [\"LlamaForCausalLM\"], \"num_hidden_layers\": 1, \"hidden_size\": 96, "
               "\"num_attention_heads\": 6, \"num_key_value_heads\": 2, \"intermediate_size\": 4, \"vocab_size\": 10, "
               "\"mlp_bias\": false, \"attention_bias\": false, \"rope_parameters\": {\"rope_type\": \"llama3\", "
               "\"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
               "\"original_max_position_embeddings\": 8192, \"rope_theta\": 500000.0}}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK(c.arch && !strcmp(c.arch->name, "LlamaForCausalLM") && !c.arch->qk_norm && !c.arch->qkv_bias);
    CHECK_EQ_INT(c.head_dim, 16);
    CHECK_EQ_INT(c.max_pos, 2048);
    CHECK(c.rope_theta == 500000);
    CHECK(c.rope_scaling.type == FS_ROPE_LLAMA3 && c.rope_scaling.factor == 32 &&
          c.rope_scaling.original_max_pos == 8192);
    /* Qwen2 by model_type alone; its sliding window off is fine, on is not */
    write_text(dir, "config.json",
               "{\"model_type\": \"qwen2\", \"num_hidden_layers\": 1, \"hidden_size\": 64, \"num_attention_heads\": 4,"
               " \"intermediate_size\": 4, \"vocab_size\": 10, \"use_sliding_window\": false, \"sliding_window\": 4096}");
    CHECKF(fs_config_load(&c, dir, &e) == 0, "%s", e.msg);
    CHECK(c.arch && c.arch->qkv_bias && !c.arch->qk_norm);
    CHECK_EQ_INT(c.head_dim, 16);
    CHECK(c.rope_scaling.type == FS_ROPE_DEFAULT);
}

/* The other architectures' tensors: Llama has no q_norm / k_norm, Qwen2
 * neither, and q/k/v biases; each loads, and a bias of the wrong shape is
 * named. */
static void test_architectures(void) {
    spec s[96];
    char dir[256];
    int n = arch_specs(s, "BF16", 0), m = 0;
    for (int i = 0; i < n; i++)   /* drop the QK-norm weights */
        if (!strstr(s[i].name, "_norm.weight") || strstr(s[i].name, "layernorm")) s[m++] = s[i];
    make_model(dir, sizeof dir, 1, "\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"", s, m);
    fs_model mdl;
    fs_err e = {{0}};
    CHECKF(fs_model_load(&mdl, dir, &e) == 0, "llama: %s", e.msg);
    if (!e.msg[0]) {
        CHECK(mdl.layers[0].q_norm.data == NULL && mdl.layers[0].q_bias.data == NULL);
        CHECK(mdl.logical_params == arch_params(0) - 2 * (size_t)D * L);
        fs_model_free(&mdl);
    }
    for (int l = 0; l < L; l++) {
        char nm[96];
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_proj.bias", l);
        m = add(s, m, nm, "BF16", 1, HQ * D, 0);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_proj.bias", l);
        m = add(s, m, nm, "BF16", 1, HKV * D, 0);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.v_proj.bias", l);
        m = add(s, m, nm, "BF16", 1, HKV * D, 0);
    }
    make_model(dir, sizeof dir, 1, "\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\"", s, m);
    e.msg[0] = 0;
    CHECKF(fs_model_load(&mdl, dir, &e) == 0, "qwen2: %s", e.msg);
    if (!e.msg[0]) {
        CHECK(mdl.layers[1].k_bias.data != NULL && mdl.layers[1].k_bias.shape[0] == HKV * D);
        CHECK(mdl.logical_params == arch_params(0) - 2 * (size_t)D * L + (size_t)(HQ + 2 * HKV) * D * L);
        fs_model_free(&mdl);
    }
    make_model(dir, sizeof dir, 1, "\"architectures\": [\"Qwen2ForCausalLM\"]", s, m - 1);   /* without the last v bias */
    EXPECT_FAIL(dir, "missing tensor model.layers.1.self_attn.v_proj.bias");
    s[find_spec(s, m, "model.layers.1.self_attn.v_proj.bias")].shape[0] = HQ * D;
    make_model(dir, sizeof dir, 1, "\"architectures\": [\"Qwen2ForCausalLM\"]", s, m);
    EXPECT_FAIL(dir, "tensor model.layers.1.self_attn.v_proj.bias: expected shape [");
    /* Qwen3 with biases is not Qwen3 */
    n = arch_specs(s, "BF16", 0);
    n = add(s, n, "model.layers.0.self_attn.q_proj.bias", "BF16", 1, HQ * D, 0);
    make_model(dir, sizeof dir, 1, NULL, s, n);
    EXPECT_FAIL(dir, "unexpected tensor model.layers.0.self_attn.q_proj.bias: Qwen3ForCausalLM has none");
}

/* A file the loader needs that is there but is not a regular file (a
 * directory, a FIFO, a device) is named as what it is, not reported missing
 * or silently skipped, and a FIFO is never opened (that would hang: the test
 * runs under alarm()). */
static void make_special(const char *dir, const char *name, char kind) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    if (kind == 'd') mkdir(path, 0700);
    if (kind == 'p') mkfifo(path, 0600);
    if (kind == 'c') CHECK(symlink("/dev/null", path) == 0);
}

static void test_not_regular_files(void) {
    spec s[64];
    char dir[256];
    int n = arch_specs(s, "BF16", 0);
    static const struct {
        const char *file;
        char kind;
        const char *want;
    } cases[] = {
        {"config.json", 'd', "config.json is a directory, not a regular file"},
        {"config.json", 'p', "config.json is a FIFO (named pipe), not a regular file"},
        {"config.json", 'c', "config.json is a device, not a regular file"},
        {"generation_config.json", 'd', "generation_config.json is a directory, not a regular file"},
        {"generation_config.json", 'p', "generation_config.json is a FIFO (named pipe), not a regular file"},
        {"model.safetensors", 'd', "model.safetensors is a directory, not a regular file"},
        {"model.safetensors", 'p', "model.safetensors is a FIFO (named pipe), not a regular file"},
        {"model.safetensors.index.json", 'd', "model.safetensors.index.json is a directory, not a regular file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_model(dir, sizeof dir, 1, NULL, s, n);
        make_special(dir, cases[i].file, cases[i].kind);
        EXPECT_FAIL(dir, cases[i].want);
    }
    /* A shard named by the index. */
    spec sh[64];
    int m = arch_specs(sh, "BF16", 0);
    write_sharded(dir, sizeof dir, sh, m, NULL);
    make_special(dir, "model-00002-of-00002.safetensors", 'p');
    EXPECT_FAIL(dir, "model-00002-of-00002.safetensors is a FIFO (named pipe), not a regular file");
    write_sharded(dir, sizeof dir, sh, m, NULL);
    make_special(dir, "model-00001-of-00002.safetensors", 'd');
    EXPECT_FAIL(dir, "model-00001-of-00002.safetensors is a directory, not a regular file");
    /* fs_config_load alone (fs pull and fs inspect call it) says the same. */
    new_dir(dir, sizeof dir);
    make_special(dir, "config.json", 'p');
    fs_config c;
    fs_err e = {{0}};
    CHECKF(fs_config_load(&c, dir, &e) == -1 && strstr(e.msg, "config.json is a FIFO"), "%s", e.msg);
}

/* fs_st_check_header: the header alone (a download still arriving) gives
 * the size the whole file must have; a cut header or a bad one fails. */
static void test_check_header(void) {
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}";
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    unsigned char buf[512] = {0};
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    size_t whole = 8 + padded + 22;
    uint64_t need = 0;
    fs_err e = {{0}};
    CHECKF(fs_st_check_header(buf, 8 + padded, "x.safetensors", &need, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(need, whole);
    CHECK(fs_st_check_header(buf, whole, "x.safetensors", &need, &e) == 0 && need == whole);
    fs_safetensors f;
    CHECK(fs_st_parse(&f, buf, whole, "x.safetensors", &e) == 0 && f.data_end == whole);
    fs_st_close(&f);
    CHECK(fs_st_check_header(buf, 8 + padded - 1, "x.safetensors", &need, &e) == -1);
    CHECKF(strstr(e.msg, "runs past the end") != NULL, "%s", e.msg);
    buf[8 + 30] = '#';
    CHECK(fs_st_check_header(buf, 8 + padded, "x.safetensors", &need, &e) == -1);
    CHECKF(strncmp(e.msg, "x.safetensors: ", 15) == 0, "%s", e.msg);

    /* An empty tensor whose offsets lie past every other tensor's: the size
     * announced covers them, and a file of that size parses (a fuzzer
     * found the header passing with 6 bytes announced where 10 were
     * needed, and the file of 6 refused). */
    const char *hdr2 = "{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                       "\"b\":{\"dtype\":\"F16\",\"shape\":[1,0],\"data_offsets\":[10,10]}}";
    hl = strlen(hdr2), padded = (hl + 7) / 8 * 8;
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hdr2, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    CHECKF(fs_st_check_header(buf, 8 + padded, "x.safetensors", &need, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(need, 8 + padded + 10);
    CHECKF(fs_st_parse(&f, buf, 8 + padded + 10, "x.safetensors", &e) == 0, "%s", e.msg);
    CHECK(f.data_end == 8 + padded + 10);
    fs_st_close(&f);
    CHECK(fs_st_parse(&f, buf, 8 + padded + 6, "x.safetensors", &e) == -1);
    CHECKF(strstr(e.msg, "out of range") != NULL, "%s", e.msg);
}

static void rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *ent;
        while ((ent = readdir(d))) {
            if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, ent->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/fs_test_loader_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_valid_tied();
    test_valid_untied();
    test_dtypes();
    test_sharded();
    test_corrupt_files();
    test_missing_and_shapes();
    test_config();
    test_architectures();
    test_check_header();
    alarm(60);
    test_not_regular_files();
    alarm(0);
    rm_rf(root);
    return TEST_SUMMARY();
}
