/* fuzz_model.c - libFuzzer target for config.json + tensor binding: a whole
 * model directory built from the input, loaded with fs_model_load.
 *
 * Input:  CONFIG \0 GENERATION_CONFIG \0 CONTROL
 *   CONFIG             written as config.json (any bytes)
 *   GENERATION_CONFIG  written as generation_config.json when not empty
 *   CONTROL            bytes that steer how the weights are written
 * When the config loads and its architecture is small, the harness writes
 * every tensor the architecture needs (its own list, written out below from
 * the Hugging Face names, not taken from model.c) into model.safetensors, or
 * into two shards and an index. CONTROL picks dtypes and the values stored,
 * and may then break the checkpoint: drop a tensor, change a dimension, the
 * rank or the dtype, rename it, put it in both shards, map it to the wrong
 * shard. So random bytes reach the shape checks of every tensor, not only
 * the JSON parser.
 *
 * What must hold:
 *   - every failure is one line that names what is wrong (no newline, no
 *     control byte: strings from the file are quoted with escapes);
 *   - an unbroken checkpoint of a config that loads must load;
 *   - after a load, every bound tensor has the shape the config implies (the
 *     harness's own table), lies inside its file, and every element can be
 *     read; lm_head is embed_tokens exactly when the config ties them;
 *   - a loaded model converts (fs_model_convert, as --weights does) to the
 *     dtype CONTROL picks, or fails with one line: the values stored are
 *     any bytes, so NaN, infinities and blocks too large for an f16 scale
 *     come up, and a block format must refuse a NaN, never hide it.
 *
 *   make fuzz && build/fuzz/fuzz_model fuzz/corpus/model -max_total_time=300
 *
 * Docs: docs/testing.md
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "quant.h"

static char dir[256];

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_model: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void put(const char *name, const void *p, size_t n) {
    char path[512];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f)) die("cannot write", path);
}

static void clear_dir(void) {
    static const char *names[] = {"config.json", "generation_config.json", "model.safetensors",
                                  "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                  "model-00002-of-00002.safetensors"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_of(path, sizeof path, names[i]);
        unlink(path);
    }
}

static void remove_dir(void) {
    clear_dir();
    rmdir(dir);
}

/* ---- the control bytes ------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} reader;

static unsigned next(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }

/* ---- the checkpoint the config asks for -------------------------------- */

enum { MAX_SPECS = 1200, MAX_ELEMS = 1 << 17 };

typedef struct {
    char name[96];
    const char *dtype;
    int ndim;
    int64_t shape[3];
    int shard;   /* 0 or 1 */
    int twice;   /* also written into the other shard */
} spec;

static spec specs[MAX_SPECS];
static int n_specs;

static void add(const char *name, int64_t a, int64_t b, int ndim) {
    spec *s = &specs[n_specs++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->dtype = "BF16";
    s->ndim = ndim;
    s->shape[0] = a;
    s->shape[1] = b;
    s->shard = n_specs & 1;
    s->twice = 0;
}

/* Which optional tensors an architecture has, by the harness's own
 * knowledge of the HF classes: Qwen3 has q_norm / k_norm, Qwen2 q/k/v
 * biases, Llama neither. */
static int has_qk_norm(const fs_config *c) { return !strcmp(c->arch->name, "Qwen3ForCausalLM"); }
static int has_qkv_bias(const fs_config *c) { return !strcmp(c->arch->name, "Qwen2ForCausalLM"); }

/* The tensors of the checkpoint and their shapes, from the config. */
static int arch_specs(const fs_config *c, int with_lm_head) {
    int64_t H = c->hidden, D = c->head_dim, I = c->ffn, V = c->vocab;
    int64_t qd = (int64_t)c->n_heads * D, kvd = (int64_t)c->n_kv_heads * D;
    int64_t per_layer = 2 * H + qd * H + 2 * kvd * H + H * qd + 2 * D + qd + 2 * kvd + 3 * I * H;
    if (c->n_layers > 64 || (V * H * 2 + H + per_layer * c->n_layers) > MAX_ELEMS) return -1;
    n_specs = 0;
    add("model.embed_tokens.weight", V, H, 2);
    add("model.norm.weight", H, 0, 1);
    char nm[96];
#define LAYER(suffix, a, b, nd) (snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, suffix), add(nm, a, b, nd))
    for (int l = 0; l < c->n_layers; l++) {
        LAYER("input_layernorm", H, 0, 1);
        LAYER("self_attn.q_proj", qd, H, 2);
        LAYER("self_attn.k_proj", kvd, H, 2);
        LAYER("self_attn.v_proj", kvd, H, 2);
        LAYER("self_attn.o_proj", H, qd, 2);
        if (has_qk_norm(c)) {
            LAYER("self_attn.q_norm", D, 0, 1);
            LAYER("self_attn.k_norm", D, 0, 1);
        }
        if (has_qkv_bias(c)) {
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_proj.bias", l), add(nm, qd, 0, 1);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_proj.bias", l), add(nm, kvd, 0, 1);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.v_proj.bias", l), add(nm, kvd, 0, 1);
        }
        LAYER("post_attention_layernorm", H, 0, 1);
        LAYER("mlp.gate_proj", I, H, 2);
        LAYER("mlp.up_proj", I, H, 2);
        LAYER("mlp.down_proj", H, I, 2);
    }
#undef LAYER
    if (with_lm_head) add("lm_head.weight", V, H, 2);
    return 0;
}

static const spec *find_spec(const char *name) {
    for (int i = 0; i < n_specs; i++)
        if (!strcmp(specs[i].name, name)) return &specs[i];
    return NULL;
}

static size_t spec_bytes(const spec *s) {
    size_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= (size_t)s->shape[d];
    if (!strcmp(s->dtype, "Q8_0")) return n / 32 * 34;
    if (!strcmp(s->dtype, "Q4_0")) return n / 32 * 18;
    return n * (strcmp(s->dtype, "F32") ? 2 : 4);
}

/* One safetensors file holding the specs of shard `which` (-1: all). Data
 * bytes repeat `fill`, so NaN and Inf patterns reach the element reads. */
static void write_st(const char *fname, int which, const uint8_t *fill, size_t n_fill) {
    size_t cap = 256 + (size_t)n_specs * 200, hl = 0, off = 0;
    char *hdr = malloc(cap);
    hl += (size_t)snprintf(hdr, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n_specs; i++) {
        const spec *s = &specs[i];
        if (which >= 0 && s->shard != which && !s->twice) continue;
        char shape[80] = "[";
        for (int d = 0; d < s->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), d ? ",%lld" : "%lld", (long long)s->shape[d]);
        strcat(shape, "]");
        size_t nb = spec_bytes(s);
        hl += (size_t)snprintf(hdr + hl, cap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                               s->name, s->dtype, shape, off, off + nb);
        off = (off + nb + 7) / 8 * 8; /* every tensor 8-aligned, as HF's writer keeps them */
    }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';
    size_t total = 8 + hl + off;
    uint8_t *buf = malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    for (size_t i = 0; i < off; i++) buf[8 + hl + i] = n_fill ? fill[i % n_fill] : (uint8_t)(i * 7);
    put(fname, buf, total);
    free(buf);
    free(hdr);
}

static const char *shard_name[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};

static void write_index(int wrong_map) {
    size_t cap = 256 + (size_t)n_specs * 160, n = 0;
    char *text = malloc(cap);
    n += (size_t)snprintf(text, cap, "{\"metadata\": {}, \"weight_map\": {");
    for (int i = 0; i < n_specs; i++) {
        const char *f = shard_name[specs[i].shard];
        if (i == wrong_map) f = shard_name[!specs[i].shard];
        n += (size_t)snprintf(text + n, cap - n, "%s\"%s\": \"%s\"", i ? ", " : "", specs[i].name, f);
    }
    n += (size_t)snprintf(text + n, cap - n, "}}");
    put("model.safetensors.index.json", text, n);
    free(text);
}

/* Apply up to 4 breakages; returns how many changed the checkpoint. */
static int break_specs(reader *r, int *wrong_map) {
    static const char *dtypes[] = {"BF16", "F16", "F32", "Q8_0", "Q4_0", "I8", "bf16"};
    int broken = 0, ops = (int)(next(r) % 5);
    for (int k = 0; k < ops && n_specs; k++) {
        unsigned op = next(r) % 7;
        spec *s = &specs[next(r) % (unsigned)n_specs];
        unsigned arg = next(r);
        switch (op) {
        case 0: /* drop it */
            *s = specs[--n_specs];
            broken++;
            break;
        case 1: /* one dimension off */
            if (s->ndim == 0) break;
            s->shape[arg % (unsigned)s->ndim] += arg & 0x80 ? 1 : -1;
            if (s->shape[arg % (unsigned)s->ndim] < 0) s->shape[arg % (unsigned)s->ndim] = 0;
            broken++;
            break;
        case 2: /* another rank */
            if (s->ndim < 3) s->shape[s->ndim] = 1;
            s->ndim = (int)(arg % 4);
            broken++;
            break;
        case 3: /* renamed */
            snprintf(s->name + strlen(s->name) - (arg % 4), 8, "%c", "xy.0"[arg % 4]);
            broken++;
            break;
        case 4: /* another dtype: Q8_0/Q4_0 are valid for matrices with K % 32 == 0 */
            s->dtype = dtypes[arg % 7];
            if (strcmp(s->dtype, "BF16") && strcmp(s->dtype, "F16") && strcmp(s->dtype, "F32")) {
                int quant_ok = (!strcmp(s->dtype, "Q8_0") || !strcmp(s->dtype, "Q4_0")) && s->ndim == 2 &&
                               s->shape[1] % 32 == 0;
                if (!quant_ok) broken++;
            }
            break;
        case 5: /* in both shards (only matters when sharded) */
            s->twice = 1;
            broken++;
            break;
        case 6: /* the index maps it to the other shard */
            *wrong_map = (int)(s - specs);
            broken++;
            break;
        }
    }
    return broken;
}

/* ---- checks after a load ------------------------------------------------ */

static void expect_shape(const fs_model *m, const fs_tensor *t, const char *name, int ndim, int64_t a, int64_t b) {
    if (!t->data && t->nbytes) die("bound tensor has no data", name);
    if (!t->name || strcmp(t->name, name)) die("bound tensor has the wrong name", name);
    if (t->ndim != ndim || t->shape[0] != a || (ndim == 2 && t->shape[1] != b)) die("bound tensor has the wrong shape", name);
    size_t n = ndim == 2 ? (size_t)a * (size_t)b : (size_t)a;
    volatile float sink = 0;
    for (size_t k = 0; k < n; k++) sink += fs_tensor_get_f32(t, k);
    (void)sink;
    (void)m;
}

static void check_loaded(const fs_model *m) {
    const fs_config *c = &m->cfg;
    int64_t H = c->hidden, D = c->head_dim, I = c->ffn, V = c->vocab;
    int64_t qd = (int64_t)c->n_heads * D, kvd = (int64_t)c->n_kv_heads * D;
    expect_shape(m, &m->embed_tokens, "model.embed_tokens.weight", 2, V, H);
    expect_shape(m, &m->norm, "model.norm.weight", 1, H, 0);
    char nm[96];
    for (int l = 0; l < c->n_layers; l++) {
        const fs_layer *L = &m->layers[l];
#define EXPECT(field, suffix, nd, a, b) \
    (snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, suffix), expect_shape(m, &L->field, nm, nd, a, b))
        EXPECT(input_layernorm, "input_layernorm", 1, H, 0);
        EXPECT(q_proj, "self_attn.q_proj", 2, qd, H);
        EXPECT(k_proj, "self_attn.k_proj", 2, kvd, H);
        EXPECT(v_proj, "self_attn.v_proj", 2, kvd, H);
        EXPECT(o_proj, "self_attn.o_proj", 2, H, qd);
        if (has_qk_norm(c)) {
            EXPECT(q_norm, "self_attn.q_norm", 1, D, 0);
            EXPECT(k_norm, "self_attn.k_norm", 1, D, 0);
        } else if (L->q_norm.data || L->k_norm.data) {
            die("q_norm bound for an architecture without QK-norm", c->arch->name);
        }
        if (has_qkv_bias(c)) {
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_proj.bias", l), expect_shape(m, &L->q_bias, nm, 1, qd, 0);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_proj.bias", l), expect_shape(m, &L->k_bias, nm, 1, kvd, 0);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.v_proj.bias", l), expect_shape(m, &L->v_bias, nm, 1, kvd, 0);
        } else if (L->q_bias.data || L->k_bias.data || L->v_bias.data) {
            die("a q/k/v bias bound for an architecture without them", c->arch->name);
        }
        EXPECT(post_attention_layernorm, "post_attention_layernorm", 1, H, 0);
        EXPECT(gate_proj, "mlp.gate_proj", 2, I, H);
        EXPECT(up_proj, "mlp.up_proj", 2, I, H);
        EXPECT(down_proj, "mlp.down_proj", 2, H, I);
#undef EXPECT
    }
    if (c->tie_embeddings) {
        if (m->lm_head.data != m->embed_tokens.data) die("tied, but lm_head is not embed_tokens", NULL);
    } else {
        expect_shape(m, &m->lm_head, "lm_head.weight", 2, V, H);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        if (!fs_model_tensor_file(m, i)) die("a tensor has no file", m->tensors[i].name);
        if (!find_spec(m->tensors[i].name)) die("a tensor the harness did not write", m->tensors[i].name);
    }
    if (c->n_eos < 0 || c->n_eos > FS_MAX_EOS) die("n_eos out of range", NULL);
}

/* One line, and no control byte from the file reaches the terminal. */
static void check_message(const fs_err *e) {
    if (!e->msg[0]) die("failure without a message", NULL);
    for (const unsigned char *p = (const unsigned char *)e->msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) die("control byte in a message", e->msg);
}

/* The matrices fs_model_convert converts (norms stay as stored). */
static int matrices(fs_model *m, fs_tensor **out) {
    int n = 0;
    out[n++] = &m->embed_tokens;
    out[n++] = &m->lm_head;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        fs_layer *L = &m->layers[l];
        fs_tensor *ls[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj, &L->gate_proj, &L->up_proj, &L->down_proj};
        for (int i = 0; i < 7; i++) out[n++] = ls[i];
    }
    return n;
}

/* Convert to t. On success every matrix that was converted (stored in
 * another dtype, and K a multiple of 32 for a block format) is t and can
 * be read, and a block format holds no NaN: a NaN weight must have been
 * refused. (A matrix already stored as t is kept as it is: its values are
 * the file's, like any bf16 NaN, and show up as NaN logits at run time.) */
static void convert(fs_model *m, fs_dtype t) {
    static fs_tensor *mats[2 + 7 * 64];
    static int was_other[2 + 7 * 64];
    int n = matrices(m, mats);
    for (int i = 0; i < n; i++)
        was_other[i] = mats[i]->dtype != t && !(fs_dtype_is_quant(t) && mats[i]->shape[1] % 32);
    fs_err e = {{0}};
    /* convert notes on stderr each matrix it keeps as stored (K % 32 != 0):
     * silenced here, or a long run's log fills with them */
    fflush(stderr);
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    int rc = fs_model_convert(m, t, &e);
    if (saved >= 0) dup2(saved, 2);
    if (saved >= 0) close(saved);
    if (null >= 0) close(null);
    if (rc) {
        check_message(&e);
        if (strncmp(e.msg, "convert: ", 9)) die("convert error without its prefix", e.msg);
        return;
    }
    for (int i = 0; i < n; i++) {
        const fs_tensor *w = mats[i];
        if (!was_other[i]) continue;
        if (w->dtype != t) die("a matrix was not converted", w->name);
        size_t elems = (size_t)w->shape[0] * (size_t)w->shape[1];
        for (size_t k = 0; k < elems; k++) {
            float v = fs_tensor_get_f32(w, k);
            if (fs_dtype_is_quant(t) && v != v) die("a NaN weight hides in a block format", w->name);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fs_fuzz_model.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) die("mkdtemp failed", dir);
        atexit(remove_dir); /* libFuzzer ends a timed run with exit() */
    }
    clear_dir();
    const uint8_t *nul1 = memchr(data, 0, size);
    size_t cfg_len = nul1 ? (size_t)(nul1 - data) : size;
    const uint8_t *gen = nul1 ? nul1 + 1 : data + size;
    const uint8_t *nul2 = memchr(gen, 0, (size_t)(data + size - gen));
    size_t gen_len = nul2 ? (size_t)(nul2 - gen) : (size_t)(data + size - gen);
    reader r = {nul2 ? nul2 + 1 : data + size, 0, 0};
    r.n = (size_t)(data + size - r.p);

    put("config.json", data, cfg_len);
    if (gen_len) put("generation_config.json", gen, gen_len);

    fs_config cfg;
    fs_err e = {{0}};
    if (fs_config_load(&cfg, dir, &e)) {
        check_message(&e);
        return 0;
    }
    unsigned flags = next(&r);
    int sharded = flags & 1, extra_lm_head = (flags & 2) != 0;
    int broken = 0, wrong_map = -1;
    if (arch_specs(&cfg, !cfg.tie_embeddings || extra_lm_head)) {
        /* Too big to write: a checkpoint that lacks everything must fail. */
        n_specs = 0;
        add("model.norm.weight", 1, 0, 1);
        broken = 1;
    } else {
        static const char *plain[] = {"BF16", "F16", "F32"};
        for (int i = 0; i < n_specs; i++) specs[i].dtype = plain[(flags >> 2) % 3];
        if (flags & 0x20) /* the big matrices quantized, as fs quantize writes them */
            for (int i = 0; i < n_specs; i++)
                if (specs[i].ndim == 2 && specs[i].shape[1] % 32 == 0) specs[i].dtype = flags & 0x40 ? "Q4_0" : "Q8_0";
        broken = break_specs(&r, &wrong_map);
    }
    const uint8_t *fill = r.p + r.i;
    size_t n_fill = r.n - r.i;
    if (sharded) {
        write_st(shard_name[0], 0, fill, n_fill);
        write_st(shard_name[1], 1, fill, n_fill);
        write_index(wrong_map);
    } else {
        write_st("model.safetensors", -1, fill, n_fill);
    }

    fs_model m;
    if (fs_model_load(&m, dir, &e)) {
        check_message(&e);
        if (!broken) die("an unbroken checkpoint did not load", e.msg);
        return 0;
    }
    check_loaded(&m);
    if (flags & 0x80) {
        static const fs_dtype to[] = {FS_DTYPE_Q8_0, FS_DTYPE_Q4_0, FS_DTYPE_F16, FS_DTYPE_BF16, FS_DTYPE_F32};
        convert(&m, to[(flags >> 2) % 5]);
    }
    fs_model_free(&m);
    return 0;
}
