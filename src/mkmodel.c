/* mkmodel.c - write a random, reproducible checkpoint of any architecture
 * of arch.h - Qwen3, Llama, Qwen2 (see mkmodel.h for the layout and the
 * weight distribution).
 *
 * Steps: read and validate config.json; list every tensor the architecture
 * needs (name, shape, how to fill it); sort the names (safetensors writers
 * sort them, and so the header is canonical); split them into shards by
 * bytes; then for each shard write the header and stream every tensor
 * through a small conversion buffer. Memory use is a few MB whatever the
 * model size.
 *
 * Docs: docs/testing.md (golden tests), docs/weights.md (the layout).
 */
#include "mkmodel.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "arch.h"
#include "json.h"

/* Same bytes everywhere: forbid turning a*b+c into one fused operation. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- the noise source ------------------------------------------------- */

/* One stream per tensor: seed mixed with a hash (FNV-1a) of the name, so a
 * tensor's values do not depend on which other tensors exist or their order. */
static void rng_seed(fs_rng *r, uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    fs_rng_seed(r, seed ^ h); /* util.h's xoshiro256**, seeded by splitmix64 */
}

/* Unit noise: four 16-bit uniforms summed (an exact integer in
 * [0, 262140]), centred and divided by the sum's exact standard deviation
 * sqrt(4 * (65536^2 - 1) / 12). Integer sum, one subtraction, one multiply:
 * bit-identical everywhere, unlike Box-Muller's log/cos from libm. */
static double unit_noise(fs_rng *r, double k) {
    uint64_t v = fs_rng_next(r);
    uint32_t s = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) + (uint32_t)((v >> 32) & 0xffff) +
                 (uint32_t)(v >> 48);
    return ((double)s - 131070.0) * k;
}

/* ---- the tensor list -------------------------------------------------- */

typedef enum { FILL_EMBED, FILL_LINEAR, FILL_NORM, FILL_BIAS } fill_kind;

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    fill_kind fill;
    int64_t fan_in;      /* FILL_LINEAR: the `in` dimension */
    size_t nbytes;
    int shard;           /* 0-based */
    size_t begin;        /* offset in its shard's data section */
} tensor_spec;

typedef struct {
    int64_t L, H, Hq, Hkv, D, I, V;
    int tied;
    const fs_arch *a;   /* which optional tensors (arch.h), config.json's names */
} arch;

static void add_tensor(tensor_spec *t, int *n, const char *name, int ndim, int64_t d0, int64_t d1, fill_kind fill,
                       size_t esize) {
    tensor_spec *s = &t[(*n)++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    s->shape[0] = d0;
    s->shape[1] = d1;
    s->fill = fill;
    s->fan_in = ndim == 2 ? d1 : 0;
    size_t elems;
    if (!fs_mul_size((size_t)d0, (size_t)(ndim == 2 ? d1 : 1), &elems) || !fs_mul_size(elems, esize, &s->nbytes))
        s->nbytes = SIZE_MAX; /* caught by check_sizes */
}

/* The tensors' bytes, and their sum, fit in size_t (matters on 32-bit). */
static int check_sizes(const tensor_spec *t, int n, fs_err *e) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (t[i].nbytes == SIZE_MAX || !fs_add_size(total, t[i].nbytes, &total))
            return fs_errf(e, "model too large for this machine (%s)", t[i].name);
    return 0;
}

static int cmp_spec(const void *a, const void *b) {
    return strcmp(((const tensor_spec *)a)->name, ((const tensor_spec *)b)->name);
}

/* Every tensor of the architecture, sorted by name. Sizes were checked for
 * overflow by read_arch. */
static tensor_spec *list_tensors(const arch *a, size_t esize, int *count) {
    int cap = 3 + 14 * (int)a->L;
    tensor_spec *t = fs_xcalloc((size_t)cap, sizeof *t);
    int n = 0;
    char name[96];
    add_tensor(t, &n, "model.embed_tokens.weight", 2, a->V, a->H, FILL_EMBED, esize);
    for (int64_t l = 0; l < a->L; l++) {
        const char *p = "model.layers";
#define T(suffix, nd, d0, d1, fill)                                            \
    do {                                                                       \
        snprintf(name, sizeof name, "%s.%lld.%s", p, (long long)l, suffix);    \
        add_tensor(t, &n, name, nd, d0, d1, fill, esize);                      \
    } while (0)
        T("input_layernorm.weight", 1, a->H, 0, FILL_NORM);
        T("self_attn.q_proj.weight", 2, a->Hq * a->D, a->H, FILL_LINEAR);
        T("self_attn.k_proj.weight", 2, a->Hkv * a->D, a->H, FILL_LINEAR);
        T("self_attn.v_proj.weight", 2, a->Hkv * a->D, a->H, FILL_LINEAR);
        T("self_attn.o_proj.weight", 2, a->H, a->Hq * a->D, FILL_LINEAR);
        if (a->a->qkv_bias) {
            T("self_attn.q_proj.bias", 1, a->Hq * a->D, 0, FILL_BIAS);
            T("self_attn.k_proj.bias", 1, a->Hkv * a->D, 0, FILL_BIAS);
            T("self_attn.v_proj.bias", 1, a->Hkv * a->D, 0, FILL_BIAS);
        }
        if (a->a->qk_norm) {
            T("self_attn.q_norm.weight", 1, a->D, 0, FILL_NORM);
            T("self_attn.k_norm.weight", 1, a->D, 0, FILL_NORM);
        }
        T("post_attention_layernorm.weight", 1, a->H, 0, FILL_NORM);
        T("mlp.gate_proj.weight", 2, a->I, a->H, FILL_LINEAR);
        T("mlp.up_proj.weight", 2, a->I, a->H, FILL_LINEAR);
        T("mlp.down_proj.weight", 2, a->H, a->I, FILL_LINEAR);
#undef T
    }
    add_tensor(t, &n, "model.norm.weight", 1, a->H, 0, FILL_NORM, esize);
    if (!a->tied) add_tensor(t, &n, "lm_head.weight", 2, a->V, a->H, FILL_EMBED, esize);
    qsort(t, (size_t)n, sizeof *t, cmp_spec);
    *count = n;
    return t;
}

/* ---- config ----------------------------------------------------------- */

static int need_int(const fs_json *root, const char *key, int64_t lo, int64_t hi, int64_t *out, fs_err *e) {
    const fs_json *v = fs_json_get(root, key);
    if (!v) return fs_errf(e, "config: missing \"%s\"", key);
    if (!fs_json_int(v, lo, hi, out))
        return fs_errf(e, "config: \"%s\" must be an integer in [%lld, %lld]", key, (long long)lo, (long long)hi);
    return 0;
}

/* Optional positive number; absent is fine (transformers has a default). */
static int check_positive(const fs_json *root, const char *key, fs_err *e) {
    const fs_json *v = fs_json_get(root, key);
    if (!v || v->type == FS_JSON_NULL) return 0;
    if (v->type != FS_JSON_NUMBER || !(v->number > 0))
        return fs_errf(e, "config: \"%s\" must be a positive number", key);
    return 0;
}

static int read_arch(const fs_json *root, arch *a, fs_err *e) {
    if (!fs_json_is(root, FS_JSON_OBJECT)) return fs_errf(e, "config: top level must be a JSON object");
    /* The architecture (arch.h) from "architectures" or "model_type";
     * a config with neither is a Qwen3 one (what this tool first wrote). */
    if (!fs_json_get(root, "architectures") && !fs_json_get(root, "model_type")) a->a = fs_arch_by_name("Qwen3ForCausalLM");
    else if (!(a->a = fs_arch_find(root, e))) return -1;
    /* Bounds keep every product below 2^62 and the tensor names short. */
    const int64_t big = 1 << 20;
    if (need_int(root, "num_hidden_layers", 1, 1024, &a->L, e) || need_int(root, "hidden_size", 1, big, &a->H, e) ||
        need_int(root, "num_attention_heads", 1, 4096, &a->Hq, e) ||
        need_int(root, "num_key_value_heads", 1, 4096, &a->Hkv, e) ||
        need_int(root, "intermediate_size", 1, big, &a->I, e) || need_int(root, "vocab_size", 1, 1 << 24, &a->V, e))
        return -1;
    /* head_dim is required for Qwen3: transformers' Qwen3Config defaults it
     * to 128 (not hidden_size / num_attention_heads), a silent trap for
     * small configs. Llama's and Qwen2's default is H / Hq, as the loader's. */
    if (a->a->head_dim && need_int(root, "head_dim", 1, 4096, &a->D, e)) return -1;
    if (!a->a->head_dim) {
        a->D = a->H / a->Hq;
        const fs_json *hd = fs_json_get(root, "head_dim");
        if (hd && hd->type != FS_JSON_NULL && need_int(root, "head_dim", 1, 4096, &a->D, e)) return -1;
    }
    if (a->Hq % a->Hkv)
        return fs_errf(e, "config: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                       (long long)a->Hq, (long long)a->Hkv);
    if (a->D % 2) return fs_errf(e, "config: head_dim %lld must be even (RoPE rotates pairs)", (long long)a->D);
    if (a->Hq * a->D > big) return fs_errf(e, "config: num_attention_heads * head_dim is too large");
    const fs_json *tie = fs_json_get(root, "tie_word_embeddings");
    if (tie && tie->type != FS_JSON_BOOL) return fs_errf(e, "config: \"tie_word_embeddings\" must be true or false");
    a->tied = tie ? tie->boolean : 0; /* Qwen3Config's default is false */
    if (check_positive(root, "rms_norm_eps", e) || check_positive(root, "rope_theta", e)) return -1;
    const fs_json *act = fs_json_get(root, "hidden_act");
    if (act && (!fs_json_string(act) || strcmp(act->str, "silu") != 0))
        return fs_errf(e, "config: hidden_act must be \"silu\"");
    static const char *flags[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2 && a->a->bias_flags; i++) {
        const fs_json *bias = fs_json_get(root, flags[i]);
        if (bias && !(bias->type == FS_JSON_BOOL && !bias->boolean))
            return fs_errf(e, "config: %s must be false (fs runs no such biases)", flags[i]);
    }
    return 0;
}

/* ---- JSON writing ----------------------------------------------------- */

/* Numbers are copied from the input text, not printed from the parsed
 * double, so "attention_dropout": 0.0 stays a float and 1e-06 stays 1e-06
 * (transformers reads 0 and 0.0 as different Python types). The parser
 * keeps no offsets, so we list the number literals of the (already
 * validated) text in document order; the writer walks the tree in the same
 * order and takes them one by one. */
typedef struct {
    const char *text;
    size_t *start, *len; /* the k-th number literal */
    size_t n, next;
} numbers;

static void list_numbers(numbers *nb, const char *text, size_t n) {
    size_t cap = 16;
    nb->text = text;
    nb->start = fs_xmalloc(cap * sizeof *nb->start);
    nb->len = fs_xmalloc(cap * sizeof *nb->len);
    nb->n = nb->next = 0;
    for (size_t i = 0; i < n;) {
        char c = text[i];
        if (c == '"') { /* skip a string, escapes included */
            for (i++; i < n && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < n && text[j] && strchr("+-0123456789.eE", text[j])) j++;
            if (nb->n == cap) {
                cap *= 2;
                nb->start = fs_xrealloc(nb->start, cap * sizeof *nb->start);
                nb->len = fs_xrealloc(nb->len, cap * sizeof *nb->len);
            }
            nb->start[nb->n] = i, nb->len[nb->n++] = j - i;
            i = j;
        } else {
            i++;
        }
    }
}

static size_t count_numbers(const fs_json *v) {
    if (v->type == FS_JSON_NUMBER) return 1;
    size_t k = 0;
    if (v->type == FS_JSON_ARRAY || v->type == FS_JSON_OBJECT)
        for (const fs_json *c = v->child; c; c = c->next) k += count_numbers(c);
    return k;
}

static void indent(FILE *f, int depth) {
    for (int i = 0; i < depth; i++) fputs("  ", f);
}

static void write_member_key(FILE *f, const char *key, size_t len, int depth) {
    indent(f, depth);
    fs_json_write_string(f, key, len);
    fputs(": ", f);
}

static void write_value(FILE *f, const fs_json *v, int depth, numbers *nb) {
    switch (v->type) {
    case FS_JSON_NULL: fputs("null", f); break;
    case FS_JSON_BOOL: fputs(v->boolean ? "true" : "false", f); break;
    case FS_JSON_NUMBER:
        if (nb->next < nb->n) {
            fwrite(nb->text + nb->start[nb->next], 1, nb->len[nb->next], f);
            nb->next++;
        } else {
            fprintf(f, "%.17g", v->number); /* unreachable for parser-accepted text */
        }
        break;
    case FS_JSON_STRING: fs_json_write_string(f, v->str, v->len); break;
    case FS_JSON_ARRAY:
    case FS_JSON_OBJECT: {
        int obj = v->type == FS_JSON_OBJECT;
        if (!v->child) {
            fputs(obj ? "{}" : "[]", f);
            break;
        }
        fputs(obj ? "{\n" : "[\n", f);
        for (const fs_json *c = v->child; c; c = c->next) {
            if (obj) write_member_key(f, c->key, c->key_len, depth + 1);
            else indent(f, depth + 1);
            write_value(f, c, depth + 1, nb);
            fputs(c->next ? ",\n" : "\n", f);
        }
        indent(f, depth);
        fputs(obj ? "}" : "]", f);
        break;
    }
    }
}

static int key_is(const fs_json *c, const char *k) { return c->key_len == strlen(k) && !memcmp(c->key, k, c->key_len); }

/* The input config, member order kept, with the keys transformers needs to
 * pick the model class (the architecture found, arch.h) and the dtype
 * replaced (or appended when absent). */
static void write_config(FILE *f, const fs_json *root, numbers *nb, const fs_arch *arch, const char *torch_dtype) {
    int have_arch = 0, have_type = 0, have_dtype = 0;
    fputs("{\n", f);
    int first = 1;
    for (const fs_json *c = root->child; c; c = c->next) {
        if (!first) fputs(",\n", f);
        first = 0;
        write_member_key(f, c->key, c->key_len, 1);
        int replaced = 1;
        if (key_is(c, "architectures")) {
            fprintf(f, "[\n    \"%s\"\n  ]", arch->name);
            have_arch = 1;
        } else if (key_is(c, "model_type")) {
            fprintf(f, "\"%s\"", arch->model_type);
            have_type = 1;
        } else if (key_is(c, "torch_dtype") || key_is(c, "dtype")) {
            /* transformers 5 calls it "dtype"; older versions "torch_dtype" */
            fprintf(f, "\"%s\"", torch_dtype);
            have_dtype |= key_is(c, "torch_dtype");
        } else {
            write_value(f, c, 1, nb);
            replaced = 0;
        }
        if (replaced) nb->next += count_numbers(c);
    }
    if (!have_arch) fprintf(f, "%s  \"architectures\": [\n    \"%s\"\n  ]", first ? "" : ",\n", arch->name), first = 0;
    if (!have_type) fprintf(f, "%s  \"model_type\": \"%s\"", first ? "" : ",\n", arch->model_type), first = 0;
    if (!have_dtype) fprintf(f, "%s  \"torch_dtype\": \"%s\"", first ? "" : ",\n", torch_dtype), first = 0;
    fputs("\n}\n", f);
}

/* ---- files ------------------------------------------------------------ */

static int write_bytes(const char *path, const void *data, size_t len, fs_err *e) {
    FILE *f = fopen(path, "wb");
    if (!f) return fs_errf(e, "%s: cannot create: %s", path, strerror(errno));
    size_t w = fwrite(data, 1, len, f);
    int bad = w != len;
    if (fclose(f) != 0) bad = 1;
    if (bad) return fs_errf(e, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

static int copy_file(const char *src, const char *dst, fs_err *e) {
    char *data;
    size_t len;
    if (fs_read_file(src, &data, &len, e)) return -1;
    int rc = write_bytes(dst, data, len, e);
    free(data);
    return rc;
}

static int make_dir(const char *dir, fs_err *e) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return fs_errf(e, "%s: exists and is not a directory", dir);
        return 0;
    }
    if (mkdir(dir, 0755) != 0) return fs_errf(e, "%s: cannot create directory: %s", dir, strerror(errno));
    return 0;
}

/* "model-00001-of-00003.safetensors" */
static int is_shard_name(const char *s) {
    unsigned a, b;
    char tail[32];
    if (strlen(s) != strlen("model-00001-of-00001.safetensors")) return 0;
    return sscanf(s, "model-%5u-of-%5u%31s", &a, &b, tail) == 3 && !strcmp(tail, ".safetensors");
}

/* Remove weights a previous run left, so a loader never mixes two models. */
static int remove_stale(const char *dir, fs_err *e) {
    DIR *d = opendir(dir);
    if (!d) return fs_errf(e, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, "model.safetensors") && strcmp(n, "model.safetensors.index.json") && !is_shard_name(n)) continue;
        if (fs_path_join(path, sizeof path, dir, n) || unlink(path) != 0) {
            rc = fs_errf(e, "%s/%s: cannot remove stale file", dir, n);
            break;
        }
    }
    closedir(d);
    return rc;
}

/* ---- safetensors ------------------------------------------------------ */

static const char *st_dtype(fs_dtype t) { return t == FS_DTYPE_F32 ? "F32" : t == FS_DTYPE_F16 ? "F16" : "BF16"; }
static size_t esize_of(fs_dtype t) { return t == FS_DTYPE_F32 ? 4 : 2; }

/* The header: {"__metadata__":{"format":"pt"}, name: {dtype, shape,
 * data_offsets}, ...} in sorted name order, padded with spaces to a multiple
 * of 8 bytes so the data section (and every tensor in it) stays aligned. */
static char *build_header(const tensor_spec *t, int n, int shard, fs_dtype dt, size_t *len) {
    size_t cap = 64, used = 0;
    for (int i = 0; i < n; i++) cap += strlen(t[i].name) + 128;
    char *h = fs_xmalloc(cap + 8);
    used += (size_t)snprintf(h + used, cap - used, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        if (t[i].shard != shard) continue;
        used += (size_t)snprintf(h + used, cap - used, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", t[i].name,
                                 st_dtype(dt), (long long)t[i].shape[0]);
        if (t[i].ndim == 2) used += (size_t)snprintf(h + used, cap - used, ",%lld", (long long)t[i].shape[1]);
        used += (size_t)snprintf(h + used, cap - used, "],\"data_offsets\":[%zu,%zu]}", t[i].begin,
                                 t[i].begin + t[i].nbytes);
    }
    h[used++] = '}';
    while (used % 8) h[used++] = ' ';
    h[used] = 0;
    *len = used;
    return h;
}

#define CHUNK 65536 /* elements converted per fwrite */

/* Generate one tensor's values and append them to f in dtype dt. */
static int write_tensor(FILE *f, const tensor_spec *t, const fs_mkmodel_opts *o, unsigned char *buf) {
    fs_rng r;
    rng_seed(&r, o->seed, t->name);
    double mean = 0, std = 1;
    if (t->fill == FILL_LINEAR) std = o->scale / sqrt((double)t->fan_in);
    else if (t->fill == FILL_NORM) mean = 1.0, std = 0.1;
    else if (t->fill == FILL_BIAS) std = 0.5;
    const double k = 1.0 / sqrt((65536.0 * 65536.0 - 1.0) / 3.0); /* 1 / std of the sum */
    size_t es = esize_of(o->dtype);
    size_t count = t->nbytes / es;
    for (size_t done = 0; done < count;) {
        size_t m = count - done < CHUNK ? count - done : CHUNK;
        for (size_t i = 0; i < m; i++) {
            /* Two statements, and FP_CONTRACT off above: a fused multiply-add
             * (clang's default on arm64) would round differently. */
            double dev = std * unit_noise(&r, k);
            float v = (float)(mean + dev);
            unsigned char *p = buf + i * es;
            if (o->dtype == FS_DTYPE_F32) {
                uint32_t u;
                memcpy(&u, &v, 4);
                p[0] = (unsigned char)u, p[1] = (unsigned char)(u >> 8);
                p[2] = (unsigned char)(u >> 16), p[3] = (unsigned char)(u >> 24);
            } else {
                uint16_t h = o->dtype == FS_DTYPE_F16 ? fs_f32_to_f16(v) : fs_f32_to_bf16(v);
                p[0] = (unsigned char)h, p[1] = (unsigned char)(h >> 8);
            }
        }
        if (fwrite(buf, es, m, f) != m) return -1;
        done += m;
    }
    return 0;
}

static void shard_file_name(char *out, size_t cap, int shard, int n_shards) {
    if (n_shards == 1) snprintf(out, cap, "model.safetensors");
    else snprintf(out, cap, "model-%05d-of-%05d.safetensors", shard + 1, n_shards);
}

static int write_shard(const char *dir, tensor_spec *t, int n, int shard, const fs_mkmodel_opts *o, fs_err *e) {
    char name[64], path[4096];
    shard_file_name(name, sizeof name, shard, o->shards);
    if (fs_path_join(path, sizeof path, dir, name)) return fs_errf(e, "%s: path too long", dir);
    size_t hlen;
    char *header = build_header(t, n, shard, o->dtype, &hlen);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(header);
        return fs_errf(e, "%s: cannot create: %s", path, strerror(errno));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen;
    free(header);
    unsigned char *buf = fs_xmalloc(CHUNK * 4);
    for (int i = 0; i < n && !bad; i++)
        if (t[i].shard == shard) bad = write_tensor(f, &t[i], o, buf) != 0;
    free(buf);
    if (fclose(f) != 0) bad = 1;
    if (bad) return fs_errf(e, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* Assign tensors (in sorted order) to shards of roughly equal bytes: each
 * shard non-empty, shard numbers never decrease or skip. */
static void assign_shards(tensor_spec *t, int n, int n_shards) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].nbytes;
    size_t before = 0;
    int prev = 0;
    for (int i = 0; i < n; i++) {
        int s = total ? (int)((double)before * n_shards / (double)total) : 0;
        if (s < prev) s = prev;
        if (s > prev + 1) s = prev + 1;
        if (i == 0) s = 0;
        if (s < n_shards - (n - i)) s = n_shards - (n - i);
        if (s > n_shards - 1) s = n_shards - 1;
        t[i].shard = s;
        prev = s;
        before += t[i].nbytes;
    }
    for (int s = 0, i = 0; s < n_shards; s++) {
        size_t o = 0;
        for (; i < n && t[i].shard == s; i++) t[i].begin = o, o += t[i].nbytes;
    }
}

static int write_index(const char *dir, const tensor_spec *t, int n, int n_shards, fs_err *e) {
    char path[4096], name[64];
    if (fs_path_join(path, sizeof path, dir, "model.safetensors.index.json"))
        return fs_errf(e, "%s: path too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return fs_errf(e, "%s: cannot create: %s", path, strerror(errno));
    size_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].nbytes;
    fprintf(f, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {\n", total);
    for (int i = 0; i < n; i++) {
        shard_file_name(name, sizeof name, t[i].shard, n_shards);
        fprintf(f, "    \"%s\": \"%s\"%s\n", t[i].name, name, i + 1 < n ? "," : "");
    }
    fputs("  }\n}\n", f);
    if (ferror(f) | (fclose(f) != 0)) return fs_errf(e, "%s: write failed", path);
    return 0;
}

/* ---- the whole checkpoint --------------------------------------------- */

static int dir_of(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) return snprintf(out, cap, ".") >= (int)cap ? -1 : 0;
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/config.json" */
    if (n + 1 > cap) return -1;
    memcpy(out, path, n);
    out[n] = 0;
    return 0;
}

int fs_mkmodel(const fs_mkmodel_opts *o, fs_err *e) {
    if (o->shards < 1 || o->shards > 99999) return fs_errf(e, "shards must be in [1, 99999]");
    fs_mkmodel_opts opts = *o;
    if (opts.scale == 0) opts.scale = FS_MKMODEL_DEFAULT_SCALE;
    if (!(opts.scale > 0) || opts.scale > 1e6) return fs_errf(e, "scale must be a positive number");
    o = &opts;

    char *text;
    size_t len;
    if (fs_read_file(o->config_path, &text, &len, e)) return -1;
    fs_json_doc doc;
    if (fs_json_parse(&doc, text, len, e)) {
        free(text);
        return fs_err_prefix(e, "%s", o->config_path);
    }
    numbers nb;
    list_numbers(&nb, text, len);
    arch a;
    int rc = -1;
    tensor_spec *t = NULL;
    char path[4096], srcdir[4096];
    if (read_arch(doc.root, &a, e)) {
        fs_err_prefix(e, "%s", o->config_path);
        goto done;
    }
    int n;
    t = list_tensors(&a, esize_of(o->dtype), &n);
    if (check_sizes(t, n, e)) goto done;
    if (o->shards > n) {
        fs_errf(e, "--shards %d is more than the %d tensors of this model", o->shards, n);
        goto done;
    }
    if (make_dir(o->out_dir, e) || remove_stale(o->out_dir, e)) goto done;

    /* config.json */
    const char *torch_dtype = o->dtype == FS_DTYPE_F32 ? "float32" : o->dtype == FS_DTYPE_F16 ? "float16" : "bfloat16";
    if (fs_path_join(path, sizeof path, o->out_dir, "config.json")) {
        fs_errf(e, "%s: path too long", o->out_dir);
        goto done;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        fs_errf(e, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    write_config(f, doc.root, &nb, a.a, torch_dtype);
    if (ferror(f) | (fclose(f) != 0)) {
        fs_errf(e, "%s: write failed", path);
        goto done;
    }

    /* generation_config.json: NAME.generation_config.json beside NAME.json
     * (configs/ holds several models), else generation_config.json beside
     * it, else the architecture's family default (arch.c) */
    char gsrc[4096], named[4096];
    size_t clen = strlen(o->config_path);
    int has_ext = clen > 5 && !strcmp(o->config_path + clen - 5, ".json");
    if (dir_of(o->config_path, srcdir, sizeof srcdir) || fs_path_join(gsrc, sizeof gsrc, srcdir, "generation_config.json") ||
        fs_path_join(path, sizeof path, o->out_dir, "generation_config.json") ||
        snprintf(named, sizeof named, "%.*s.generation_config.json", (int)(has_ext ? clen - 5 : clen), o->config_path) >=
            (int)sizeof named) {
        fs_errf(e, "path too long");
        goto done;
    }
    if (fs_file_exists(named)) {
        if (copy_file(named, path, e)) goto done;
    } else if (fs_file_exists(gsrc) && strcmp(gsrc, path) != 0) {
        if (copy_file(gsrc, path, e)) goto done;
    } else if (!fs_file_exists(gsrc)) {
        const char *g = a.a->generation_config;
        if (write_bytes(path, g, strlen(g), e)) goto done;
    }

    /* tokenizer */
    if (o->tokenizer_dir) {
        static const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
        for (int i = 0; i < 2; i++) {
            char src[4096];
            if (fs_path_join(src, sizeof src, o->tokenizer_dir, files[i]) ||
                fs_path_join(path, sizeof path, o->out_dir, files[i])) {
                fs_errf(e, "path too long");
                goto done;
            }
            if (!fs_file_exists(src)) {
                fs_errf(e, "%s: not found (--tokenizer needs tokenizer.json and tokenizer_config.json)", src);
                goto done;
            }
            if (strcmp(src, path) != 0 && copy_file(src, path, e)) goto done;
        }
    }

    /* weights */
    assign_shards(t, n, o->shards);
    for (int s = 0; s < o->shards; s++)
        if (write_shard(o->out_dir, t, n, s, o, e)) goto done;
    if (o->shards > 1 && write_index(o->out_dir, t, n, o->shards, e)) goto done;
    rc = 0;
done:
    free(t);
    free(nb.start);
    free(nb.len);
    free(text);
    fs_json_free(&doc);
    return rc;
}
