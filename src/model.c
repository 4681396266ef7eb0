/* model.c - load a model directory: config.json, generation_config.json,
 * tokenizer_config.json's eos_token, and the safetensors weights (one
 * file, or shards listed in model.safetensors.index.json).
 *
 * Loading is "open, map, check": every safetensors file is mmap'd (see
 * safetensors.c), then every tensor the architecture needs is looked up by
 * its Hugging Face name and its shape compared with what the config implies:
 *
 *   model.embed_tokens.weight                [V, H]
 *   model.layers.N.input_layernorm.weight    [H]
 *   model.layers.N.self_attn.q_proj.weight   [Hq*D, H]
 *   model.layers.N.self_attn.k_proj.weight   [Hkv*D, H]
 *   model.layers.N.self_attn.v_proj.weight   [Hkv*D, H]
 *   model.layers.N.self_attn.q_proj.bias     [Hq*D]   (Qwen2 only)
 *   model.layers.N.self_attn.k_proj.bias     [Hkv*D]  (Qwen2 only)
 *   model.layers.N.self_attn.v_proj.bias     [Hkv*D]  (Qwen2 only)
 *   model.layers.N.self_attn.o_proj.weight   [H, Hq*D]
 *   model.layers.N.self_attn.q_norm.weight   [D]      (Qwen3 only)
 *   model.layers.N.self_attn.k_norm.weight   [D]      (Qwen3 only)
 *   model.layers.N.post_attention_layernorm.weight  [H]
 *   model.layers.N.mlp.gate_proj.weight      [I, H]
 *   model.layers.N.mlp.up_proj.weight        [I, H]
 *   model.layers.N.mlp.down_proj.weight      [H, I]
 *   model.norm.weight                        [H]
 *   lm_head.weight                           [V, H]  (absent when tied)
 *
 * Which of the optional ones a checkpoint must have is the architecture's
 * row in arch.c; a tensor the architecture does not have is an error too
 * (a Qwen3 checkpoint with biases is not a Qwen3 checkpoint). After
 * fs_model_load returns 0, the forward pass may index these tensors
 * without any further checks. Config defaults follow transformers' config
 * classes (arch.c), so a config that omits a field means what it means to
 * the Python reference.
 *
 * Docs: docs/weights.md, docs/models.md
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "safetensors.h"


/* ---- config ----------------------------------------------------------- */

/* Required integer field in [lo, hi]. */
static int cfg_int(const fs_json *root, const char *key, int64_t lo, int64_t hi, int *out, fs_err *e) {
    const fs_json *v = fs_json_get(root, key);
    if (!v) return fs_errf(e, "config.json: missing \"%s\"", key);
    int64_t x;
    if (!fs_json_int(v, lo, hi, &x)) {
        if (fs_json_is(v, FS_JSON_NUMBER))
            return fs_errf(e, "config.json: \"%s\" must be an integer in [%lld, %lld], got %.17g", key,
                           (long long)lo, (long long)hi, v->number);
        return fs_errf(e, "config.json: \"%s\" must be an integer in [%lld, %lld]", key, (long long)lo,
                       (long long)hi);
    }
    *out = (int)x;
    return 0;
}

/* Optional integer: absent or null keeps *out. */
static int cfg_int_opt(const fs_json *root, const char *key, int64_t lo, int64_t hi, int *out, fs_err *e) {
    const fs_json *v = fs_json_get(root, key);
    if (!v || fs_json_is(v, FS_JSON_NULL)) return 0;
    return cfg_int(root, key, lo, hi, out, e);
}

/* Optional positive finite number. */
static int cfg_pos(const char *file, const fs_json *root, const char *key, double *out, fs_err *e) {
    const fs_json *v = fs_json_get(root, key);
    if (!v || fs_json_is(v, FS_JSON_NULL)) return 0;
    if (!fs_json_is(v, FS_JSON_NUMBER) || !(v->number > 0) || !isfinite(v->number))
        return fs_errf(e, "%s: \"%s\" must be a positive number", file, key);
    *out = v->number;
    return 0;
}

static int cfg_bool(const fs_json *root, const char *key, int fallback, int *out, fs_err *e) {
    const fs_json *v = fs_json_get(root, key);
    if (!v || fs_json_is(v, FS_JSON_NULL)) {
        *out = fallback;
        return 0;
    }
    if (!fs_json_is(v, FS_JSON_BOOL)) return fs_errf(e, "config.json: \"%s\" must be true or false", key);
    *out = v->boolean;
    return 0;
}

/* eos_token_id may be an int, a list of ints or null: add each to c->eos_ids
 * unless already there (config.json and generation_config.json often agree). */
static int add_eos(fs_config *c, const char *file, const fs_json *v, fs_err *e) {
    if (!v || fs_json_is(v, FS_JSON_NULL)) return 0;
    const fs_json *one = v, *list = NULL;
    if (fs_json_is(v, FS_JSON_ARRAY)) {
        list = v;
        one = v->child;
    }
    for (; one; one = list ? one->next : NULL) {
        int64_t id;
        if (!fs_json_int(one, 0, INT32_MAX, &id))
            return fs_errf(e, "%s: \"eos_token_id\" must be a non-negative integer or a list of them", file);
        int seen = 0;
        for (int i = 0; i < c->n_eos; i++) seen |= c->eos_ids[i] == (int)id;
        if (seen) continue;
        if (c->n_eos == FS_MAX_EOS) return fs_errf(e, "%s: more than %d eos_token_id values", file, FS_MAX_EOS);
        c->eos_ids[c->n_eos++] = (int)id;
    }
    return 0;
}

/* A required positive number of a rope_scaling object. */
static int rope_num(const fs_json *v, const char *obj, const char *key, double *out, fs_err *e) {
    const fs_json *x = fs_json_get(v, key);
    if (!fs_json_is(x, FS_JSON_NUMBER) || !(x->number > 0) || !isfinite(x->number))
        return fs_errf(e, "config.json: %s of type \"llama3\" needs a positive number \"%s\"", obj, key);
    *out = x->number;
    return 0;
}

/* rope_scaling / rope_parameters: plain RoPE ("default", or null) or Llama
 * 3's frequency rescaling ("llama3": factor, low_freq_factor,
 * high_freq_factor, original_max_position_embeddings; arch.c). transformers
 * 5 writes {"rope_type": ..., "rope_theta": ...} under rope_parameters;
 * older configs write rope_scaling. Any other type (linear, dynamic, yarn,
 * longrope) is refused by name. */
static int check_rope(fs_config *c, const fs_json *root, fs_err *e) {
    static const char *keys[] = {"rope_scaling", "rope_parameters"};
    for (int k = 0; k < 2; k++) {
        const fs_json *v = fs_json_get(root, keys[k]);
        if (!v || fs_json_is(v, FS_JSON_NULL)) continue;
        if (!fs_json_is(v, FS_JSON_OBJECT))
            return fs_errf(e, "config.json: \"%s\" must be an object or null", keys[k]);
        const char *type = fs_json_string(fs_json_get(v, "rope_type"));
        if (!type) type = fs_json_string(fs_json_get(v, "type"));
        if (type && !strcmp(type, "llama3")) {
            fs_rope_scaling *s = &c->rope_scaling;
            double orig;
            s->type = FS_ROPE_LLAMA3;
            if (rope_num(v, keys[k], "factor", &s->factor, e) ||
                rope_num(v, keys[k], "low_freq_factor", &s->low_freq_factor, e) ||
                rope_num(v, keys[k], "high_freq_factor", &s->high_freq_factor, e) ||
                rope_num(v, keys[k], "original_max_position_embeddings", &orig, e))
                return -1;
            if (!(s->high_freq_factor > s->low_freq_factor))
                return fs_errf(e, "config.json: %s: high_freq_factor (%g) must be larger than low_freq_factor (%g)",
                               keys[k], s->high_freq_factor, s->low_freq_factor);
            if (orig != floor(orig) || orig > (1 << 30))
                return fs_errf(e, "config.json: %s: original_max_position_embeddings must be an integer", keys[k]);
            s->original_max_pos = (int)orig;
        } else if (type && strcmp(type, "default") != 0) {
            return fs_errf(e, "config.json: unsupported %s type \"%.40s\" (fs implements plain RoPE and \"llama3\")",
                           keys[k], type);
        } else if (!type && k == 0) {
            return fs_errf(e, "config.json: rope_scaling without a rope_type (fs implements null, \"default\" and "
                              "\"llama3\")");
        }
        if (cfg_pos("config.json", v, "rope_theta", &c->rope_theta, e)) return -1;
    }
    return 0;
}

static int parse_config(fs_config *c, const fs_json *root, fs_err *e) {
    if (!fs_json_is(root, FS_JSON_OBJECT)) return fs_errf(e, "config.json: not a JSON object");
    const fs_arch *a = fs_arch_find(root, e);
    if (!a) return -1;
    c->arch = a;

    /* Limits: generous for any real model, small enough that every size
     * product below fits comfortably in 64 bits and every count in an int. */
    if (cfg_int(root, "num_hidden_layers", 1, 4096, &c->n_layers, e)) return -1;
    if (cfg_int(root, "hidden_size", 1, 1 << 20, &c->hidden, e)) return -1;
    if (cfg_int(root, "num_attention_heads", 1, 1 << 16, &c->n_heads, e)) return -1;
    c->n_kv_heads = c->n_heads;
    if (cfg_int_opt(root, "num_key_value_heads", 1, 1 << 16, &c->n_kv_heads, e)) return -1;
    /* Qwen3Config's default is 128 whatever H/Hq is; Llama's and Qwen2's
     * is H/Hq (Python's floor division) */
    c->head_dim = a->head_dim ? a->head_dim : c->hidden / c->n_heads;
    if (cfg_int_opt(root, "head_dim", 1, 1 << 16, &c->head_dim, e)) return -1;
    if (cfg_int(root, "intermediate_size", 1, 1 << 24, &c->ffn, e)) return -1;
    if (cfg_int(root, "vocab_size", 1, 1 << 26, &c->vocab, e)) return -1;
    c->max_pos = a->max_pos;
    if (cfg_int_opt(root, "max_position_embeddings", 1, 1 << 30, &c->max_pos, e)) return -1;

    /* Grouped-query attention shares each K/V head among Hq/Hkv query heads,
     * so the division must be exact; RoPE rotates pairs, so D must be even. */
    if (c->n_heads % c->n_kv_heads)
        return fs_errf(e, "config.json: num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
                       c->n_heads, c->n_kv_heads);
    if (c->head_dim < 2 || c->head_dim % 2)
        return fs_errf(e, "config.json: head_dim (%d) must be even for RoPE", c->head_dim);
    if ((int64_t)c->n_heads * c->head_dim > (1 << 24))
        return fs_errf(e, "config.json: num_attention_heads * head_dim (%lld) is too large",
                       (long long)c->n_heads * c->head_dim);

    c->rope_theta = 10000.0;
    if (cfg_pos("config.json", root, "rope_theta", &c->rope_theta, e)) return -1;
    if (check_rope(c, root, e)) return -1;
    c->rms_eps = 1e-6;
    if (cfg_pos("config.json", root, "rms_norm_eps", &c->rms_eps, e)) return -1;
    if (cfg_bool(root, "tie_word_embeddings", 0, &c->tie_embeddings, e)) return -1;

    /* Biases: Qwen2's q/k/v biases are the architecture's (arch.c); where
     * the config decides (attention_bias also gives o_proj one, mlp_bias
     * the MLP's three), fs has no such path and says so. */
    int flag;
    if (a->bias_flags) {
        if (cfg_bool(root, "attention_bias", 0, &flag, e)) return -1;
        if (flag)
            return fs_errf(e, "config.json: unsupported attention_bias = true for %s (biases on q/k/v/o_proj; fs "
                              "implements only Qwen2's q/k/v biases)", a->name);
        if (cfg_bool(root, "mlp_bias", 0, &flag, e)) return -1;
        if (flag) return fs_errf(e, "config.json: unsupported mlp_bias = true for %s", a->name);
    }
    if (cfg_bool(root, "use_sliding_window", 0, &flag, e)) return -1;
    if (flag)
        return fs_errf(e, "config.json: unsupported use_sliding_window = true (fs implements full attention in "
                          "every layer)");
    const char *act = fs_json_string(fs_json_get(root, "hidden_act"));
    if (act && strcmp(act, "silu") != 0)
        return fs_errf(e, "config.json: unsupported hidden_act \"%.40s\" (only silu)", act);
    const fs_json *lt = fs_json_get(root, "layer_types");
    for (const fs_json *x = fs_json_is(lt, FS_JSON_ARRAY) ? lt->child : NULL; x; x = x->next)
        if (!fs_json_string(x) || strcmp(x->str, "full_attention") != 0)
            return fs_errf(e, "config.json: unsupported layer type in layer_types (only full_attention)");

    const char *dt = fs_json_string(fs_json_get(root, "torch_dtype"));
    if (!dt) dt = fs_json_string(fs_json_get(root, "dtype"));
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", dt ? dt : "");

    c->bos_id = -1;
    if (cfg_int_opt(root, "bos_token_id", 0, INT32_MAX, &c->bos_id, e)) return -1;
    return add_eos(c, "config.json", fs_json_get(root, "eos_token_id"), e);
}

/* Optional number in [lo, hi] from generation_config.json. */
static int gen_num(const fs_json *root, const char *key, double lo, double hi, int *has, double *out, fs_err *e) {
    const fs_json *v = fs_json_get(root, key);
    if (!v || fs_json_is(v, FS_JSON_NULL)) return 0;
    if (!fs_json_is(v, FS_JSON_NUMBER) || !(v->number >= lo && v->number <= hi))
        return fs_errf(e, "generation_config.json: \"%s\" must be a number in [%g, %g]", key, lo, hi);
    *has = 1;
    *out = v->number;
    return 0;
}

static int parse_generation_config(fs_config *c, const fs_json *root, fs_err *e) {
    if (!fs_json_is(root, FS_JSON_OBJECT)) return fs_errf(e, "generation_config.json: not a JSON object");
    if (gen_num(root, "temperature", 0, 1e6, &c->has_temperature, &c->temperature, e)) return -1;
    if (gen_num(root, "top_p", 0, 1, &c->has_top_p, &c->top_p, e)) return -1;
    if (gen_num(root, "min_p", 0, 1, &c->has_min_p, &c->min_p, e)) return -1;
    if (gen_num(root, "repetition_penalty", 1e-6, 1e6, &c->has_repetition_penalty, &c->repetition_penalty, e))
        return -1;
    const fs_json *k = fs_json_get(root, "top_k");
    if (k && !fs_json_is(k, FS_JSON_NULL)) {
        int64_t x;
        if (!fs_json_int(k, 0, INT32_MAX, &x))
            return fs_errf(e, "generation_config.json: \"top_k\" must be a non-negative integer");
        c->has_top_k = 1;
        c->top_k = (int)x;
    }
    /* generation_config.json's bos_token_id where config.json has none */
    const fs_json *bos = fs_json_get(root, "bos_token_id");
    int64_t b;
    if (bos && !fs_json_is(bos, FS_JSON_NULL)) {
        if (!fs_json_int(bos, 0, INT32_MAX, &b))
            return fs_errf(e, "generation_config.json: \"bos_token_id\" must be a non-negative integer");
        if (c->bos_id < 0) c->bos_id = (int)b;
    }
    return add_eos(c, "generation_config.json", fs_json_get(root, "eos_token_id"), e);
}

/* Read dir/name and parse it as JSON; errors are prefixed with name. */
static int load_json(const char *dir, const char *name, fs_json_doc *doc, fs_err *e) {
    char path[2048];
    if (fs_path_join(path, sizeof path, dir, name)) return fs_errf(e, "%s: path too long", name);
    char *text;
    size_t len;
    if (fs_read_file(path, &text, &len, e)) return -1;
    int rc = fs_json_parse(doc, text, len, e);
    free(text);
    if (rc) return fs_err_prefix(e, "%s", name);
    return 0;
}

int fs_config_load(fs_config *c, const char *dir, fs_err *e) {
    memset(c, 0, sizeof *c);
    char path[2048];
    if (fs_path_join(path, sizeof path, dir, "config.json")) return fs_errf(e, "%s: path too long", dir);
    int kind = fs_regular_file(path, e);
    if (kind < 0) return -1;
    if (kind == 0) return fs_errf(e, "%s: no config.json (is this a model directory?)", dir);
    fs_json_doc doc;
    if (load_json(dir, "config.json", &doc, e)) return -1;
    int rc = parse_config(c, doc.root, e);
    fs_json_free(&doc);
    if (rc) return -1;

    /* Optional: absent is fine, but a directory or FIFO in its place is an
     * error, not a file to skip silently. */
    if (fs_path_join(path, sizeof path, dir, "generation_config.json")) return fs_errf(e, "%s: path too long", dir);
    if ((kind = fs_regular_file(path, e)) < 0) return -1;
    if (kind == 1) {
        if (load_json(dir, "generation_config.json", &doc, e)) return -1;
        rc = parse_generation_config(c, doc.root, e);
        fs_json_free(&doc);
        if (rc) return rc;
    }

    /* tokenizer_config.json's eos_token: the text of the token that ends a
     * chat reply (Llama 3 Instruct: "<|eot_id|>", Qwen: "<|im_end|>"),
     * a string or an {"content": ...} object. Optional. */
    if (fs_path_join(path, sizeof path, dir, "tokenizer_config.json")) return fs_errf(e, "%s: path too long", dir);
    if ((kind = fs_regular_file(path, e)) < 0) return -1;
    if (kind == 1) {
        if (load_json(dir, "tokenizer_config.json", &doc, e)) return -1;
        const fs_json *eos = fs_json_get(doc.root, "eos_token");
        if (fs_json_is(eos, FS_JSON_OBJECT)) eos = fs_json_get(eos, "content");
        const char *text = fs_json_string(eos);
        if (eos && !fs_json_is(eos, FS_JSON_NULL) && (!text || strlen(text) != eos->len || !*text ||
                                                      eos->len >= sizeof c->eos_token))
            rc = fs_errf(e, "tokenizer_config.json: \"eos_token\" must be a token's text (1 to %zu bytes) or null",
                         sizeof c->eos_token - 1);
        else if (text)
            memcpy(c->eos_token, text, eos->len + 1);
        fs_json_free(&doc);
    }
    return rc;
}

/* ---- weights ---------------------------------------------------------- */

typedef struct model_priv {
    fs_safetensors *files;
    int n_files;
    int *tensor_file; /* [n_tensors] index into files */
    /* Weights converted at load (fs_model_convert, quant.c): heap blocks
     * the bound tensors point into instead of the mmap. */
    void **owned;
    int n_owned, cap_owned;
} model_priv;

void *fs_model_own(fs_model *m, size_t bytes) {
    model_priv *p = m->priv;
    if (!p) {
        p = fs_xcalloc(1, sizeof *p);
        m->priv = p;
    }
    if (p->n_owned == p->cap_owned) {
        p->cap_owned = p->cap_owned ? 2 * p->cap_owned : 64;
        void **grown = realloc(p->owned, (size_t)p->cap_owned * sizeof *grown);
        if (!grown) return NULL;
        p->owned = grown;
    }
    void *mem = malloc(bytes ? bytes : 1);
    if (mem) p->owned[p->n_owned++] = mem;
    return mem;
}

void fs_model_release_pages(const fs_model *m) {
    const model_priv *p = m->priv;
    if (!p) return;
    for (int i = 0; i < p->n_files; i++)
        if (p->files[i].mapped) fs_st_release_pages(p->files[i].base, p->files[i].size);
}

const char *fs_model_tensor_file(const fs_model *m, int i) {
    const model_priv *p = m->priv;
    if (!p || i < 0 || i >= m->n_tensors) return NULL;
    return p->files[p->tensor_file[i]].name;
}

void fs_model_free(fs_model *m) {
    if (!m) return;
    model_priv *p = m->priv;
    if (p) {
        for (int i = 0; i < p->n_files; i++) fs_st_close(&p->files[i]);
        free(p->files);
        free(p->tensor_file);
        for (int i = 0; i < p->n_owned; i++) free(p->owned[i]);
        free(p->owned);
        free(p);
    }
    free(m->layers);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The list of shard files: the distinct values of weight_map, sorted (so
 * model-00001 comes before model-00002 and tensor order is stable). Each
 * name must be a plain file name inside the model directory. */
static int index_files(const fs_json *wm, char ***out, int *n_out, fs_err *e) {
    const char *idx = "model.safetensors.index.json";
    char **names = fs_xcalloc(wm->len ? wm->len : 1, sizeof *names);
    int n = 0;
    for (const fs_json *v = wm->child; v; v = v->next) {
        const char *f = fs_json_string(v);
        if (!f || strlen(f) != v->len || !*f) {
            free(names);
            return fs_errf(e, "%s: weight_map entry for %.200s is not a file name", idx, v->key);
        }
        if (strchr(f, '/') || !strcmp(f, "..") || !strcmp(f, ".")) {
            free(names);
            return fs_errf(e, "%s: weight_map names %.200s, which is outside the model directory", idx, f);
        }
        names[n++] = (char *)f;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int u = 0;
    for (int i = 0; i < n; i++)
        if (u == 0 || strcmp(names[u - 1], names[i])) names[u++] = names[i];
    *out = names;
    *n_out = u;
    return 0;
}

static int open_files(fs_model *m, model_priv *p, fs_err *e) {
    char path[2048];
    const char *idx = "model.safetensors.index.json";
    if (fs_path_join(path, sizeof path, m->dir, idx)) return fs_errf(e, "%s: path too long", m->dir);
    int kind = fs_regular_file(path, e);
    if (kind < 0) return -1;
    if (kind == 1) {
        fs_json_doc doc;
        if (load_json(m->dir, idx, &doc, e)) return -1;
        const fs_json *wm = fs_json_get(doc.root, "weight_map");
        if (!fs_json_is(wm, FS_JSON_OBJECT) || wm->len == 0) {
            fs_json_free(&doc);
            return fs_errf(e, "%s: missing or empty \"weight_map\" object", idx);
        }
        char **names = NULL;
        int n = 0;
        if (index_files(wm, &names, &n, e)) {
            fs_json_free(&doc);
            return -1;
        }
        p->files = fs_xcalloc((size_t)n, sizeof *p->files);
        int rc = 0;
        for (int i = 0; i < n && !rc; i++) {
            if (fs_path_join(path, sizeof path, m->dir, names[i])) {
                rc = fs_errf(e, "%s: path too long", names[i]);
            } else if ((kind = fs_regular_file(path, e)) <= 0) {
                rc = kind < 0 ? -1 : fs_errf(e, "%s: weight_map names %.200s, which does not exist", idx, names[i]);
            } else if (fs_st_open(&p->files[i], path, names[i], e) == 0) {
                p->n_files++;
            } else {
                rc = -1;
            }
        }
        /* Every mapping must be true: the named file holds the tensor. */
        for (const fs_json *v = wm->child; v && !rc; v = v->next) {
            for (int i = 0; i < p->n_files; i++) {
                if (strcmp(p->files[i].name, v->str) != 0) continue;
                if (!fs_st_find(&p->files[i], v->key))
                    rc = fs_errf(e, "%s: tensor %.200s is mapped to %.200s, which does not contain it", idx,
                                 v->key, v->str);
            }
        }
        free(names);
        fs_json_free(&doc);
        return rc;
    }
    if (fs_path_join(path, sizeof path, m->dir, "model.safetensors")) return fs_errf(e, "%s: path too long", m->dir);
    if ((kind = fs_regular_file(path, e)) < 0) return -1;
    if (kind == 0) return fs_errf(e, "%s: no model.safetensors or model.safetensors.index.json", m->dir);
    p->files = fs_xcalloc(1, sizeof *p->files);
    if (fs_st_open(&p->files[0], path, "model.safetensors", e)) return -1;
    p->n_files = 1;
    return 0;
}

/* Gather every tensor of every file into m->tensors (file order), rejecting a
 * name that appears in two shards. */
static int gather_tensors(fs_model *m, model_priv *p, fs_err *e) {
    int total = 0;
    for (int i = 0; i < p->n_files; i++) total += p->files[i].n_tensors;
    m->tensors = fs_xcalloc((size_t)(total ? total : 1), sizeof *m->tensors);
    p->tensor_file = fs_xcalloc((size_t)(total ? total : 1), sizeof *p->tensor_file);
    for (int i = 0; i < p->n_files; i++)
        for (int j = 0; j < p->files[i].n_tensors; j++) {
            m->tensors[m->n_tensors] = p->files[i].tensors[j];
            p->tensor_file[m->n_tensors++] = i;
        }
    if (p->n_files < 2) return 0;
    const char **names = fs_xmalloc((size_t)total * sizeof *names);
    for (int i = 0; i < total; i++) names[i] = m->tensors[i].name;
    qsort(names, (size_t)total, sizeof *names, cmp_str);
    int rc = 0;
    for (int i = 1; i < total && !rc; i++) {
        if (strcmp(names[i - 1], names[i])) continue;
        const char *f[2] = {0, 0};
        for (int k = 0, c = 0; k < total && c < 2; k++)
            if (!strcmp(m->tensors[k].name, names[i])) f[c++] = p->files[p->tensor_file[k]].name;
        rc = fs_errf(e, "tensor %s appears in both %s and %s", names[i], f[0], f[1]);
    }
    free(names);
    return rc;
}

static int find_tensor(const fs_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

static void shape_str(char *out, size_t cap, int ndim, const int64_t *s) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++) n += (size_t)snprintf(out + n, cap - n, i ? ", %lld" : "%lld", (long long)s[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

/* Look up `name`, check it has exactly shape [d0] or [d0, d1], copy it to *t. */
static int bind(const fs_model *m, fs_tensor *t, const char *name, int ndim, int64_t d0, int64_t d1, fs_err *e) {
    int i = find_tensor(m, name);
    if (i < 0) return fs_errf(e, "missing tensor %s (needed by the architecture; not in any safetensors file)", name);
    const fs_tensor *src = &m->tensors[i];
    int64_t want[2] = {d0, d1};
    int ok = src->ndim == ndim;
    for (int k = 0; ok && k < ndim; k++) ok = src->shape[k] == want[k];
    if (!ok) {
        char a[96], b[96];
        shape_str(a, sizeof a, ndim, want);
        shape_str(b, sizeof b, src->ndim, src->shape);
        return fs_errf(e, "%s: tensor %s: expected shape %s, got %s", fs_model_tensor_file(m, i), name, a, b);
    }
    /* The block formats are for matrices only: a norm vector is read one
     * element at a time and is too small to be worth quantizing. */
    if (ndim == 1 && fs_dtype_is_quant(src->dtype))
        return fs_errf(e, "%s: tensor %s: dtype %s is only supported for matrices, not [%lld] vectors",
                       fs_model_tensor_file(m, i), name, fs_dtype_name(src->dtype), (long long)d0);
    *t = *src;
    return 0;
}

static size_t numel(const fs_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i]; /* checked at parse time */
    return n;
}

static int bind_all(fs_model *m, fs_err *e) {
    const fs_config *c = &m->cfg;
    const fs_arch *a = c->arch;
    int64_t H = c->hidden, D = c->head_dim, I = c->ffn, V = c->vocab;
    int64_t qdim = (int64_t)c->n_heads * D, kvdim = (int64_t)c->n_kv_heads * D;
    if (bind(m, &m->embed_tokens, "model.embed_tokens.weight", 2, V, H, e)) return -1;
    if (bind(m, &m->norm, "model.norm.weight", 1, H, 0, e)) return -1;
    m->layers = fs_xcalloc((size_t)c->n_layers, sizeof *m->layers);
    char name[160];
#define BIND(field, suffix, nd, a, b) \
    do { \
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, suffix); \
        if (bind(m, &L->field, name, nd, a, b, e)) return -1; \
    } while (0)
    /* A tensor of the layer the architecture may or may not have. */
#define OPTIONAL(field, suffix, d0, has) \
    do { \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        if (has && bind(m, &L->field, name, 1, d0, 0, e)) return -1; \
        if (!has && find_tensor(m, name) >= 0) \
            return fs_errf(e, "unexpected tensor %s: %s has none (is config.json's architecture right?)", name, \
                           a->name); \
    } while (0)
    for (int l = 0; l < c->n_layers; l++) {
        fs_layer *L = &m->layers[l];
        BIND(input_layernorm, "input_layernorm", 1, H, 0);
        BIND(q_proj, "self_attn.q_proj", 2, qdim, H);
        BIND(k_proj, "self_attn.k_proj", 2, kvdim, H);
        BIND(v_proj, "self_attn.v_proj", 2, kvdim, H);
        BIND(o_proj, "self_attn.o_proj", 2, H, qdim);
        /* the architecture's own (arch.c): required where it has them, an
         * error where it does not */
        OPTIONAL(q_norm, "self_attn.q_norm.weight", D, a->qk_norm);
        OPTIONAL(k_norm, "self_attn.k_norm.weight", D, a->qk_norm);
        OPTIONAL(q_bias, "self_attn.q_proj.bias", qdim, a->qkv_bias);
        OPTIONAL(k_bias, "self_attn.k_proj.bias", kvdim, a->qkv_bias);
        OPTIONAL(v_bias, "self_attn.v_proj.bias", kvdim, a->qkv_bias);
        BIND(post_attention_layernorm, "post_attention_layernorm", 1, H, 0);
        BIND(gate_proj, "mlp.gate_proj", 2, I, H);
        BIND(up_proj, "mlp.up_proj", 2, I, H);
        BIND(down_proj, "mlp.down_proj", 2, H, I);
    }
#undef BIND
#undef OPTIONAL
    /* Tied embeddings: the output projection is the embedding matrix itself
     * (logits = x_norm E^T). If a tied checkpoint still stores lm_head, HF
     * ties it to embed_tokens when loading and ignores the stored copy, so we
     * check its shape and then do the same. */
    if (c->tie_embeddings) {
        if (find_tensor(m, "lm_head.weight") >= 0 && bind(m, &m->lm_head, "lm_head.weight", 2, V, H, e)) return -1;
        m->lm_head = m->embed_tokens;
    } else if (find_tensor(m, "lm_head.weight") < 0) {
        return fs_errf(e, "missing tensor lm_head.weight (tie_word_embeddings is false, so the checkpoint needs its "
                          "own output projection)");
    } else if (bind(m, &m->lm_head, "lm_head.weight", 2, V, H, e)) {
        return -1;
    }

    m->stored_params = 0;
    for (int i = 0; i < m->n_tensors; i++) m->stored_params += numel(&m->tensors[i]);
    const fs_layer *L0 = &m->layers[0];
    size_t per_layer = numel(&L0->input_layernorm) + numel(&L0->q_proj) + numel(&L0->k_proj) + numel(&L0->v_proj) +
                       numel(&L0->o_proj) + (L0->q_norm.data ? numel(&L0->q_norm) + numel(&L0->k_norm) : 0) +
                       (L0->q_bias.data ? numel(&L0->q_bias) + numel(&L0->k_bias) + numel(&L0->v_bias) : 0) +
                       numel(&L0->post_attention_layernorm) + numel(&L0->gate_proj) +
                       numel(&L0->up_proj) + numel(&L0->down_proj);
    m->logical_params = numel(&m->embed_tokens) + per_layer * (size_t)c->n_layers + numel(&m->norm) +
                        (c->tie_embeddings ? 0 : numel(&m->lm_head));
    return 0;
}

int fs_model_load(fs_model *m, const char *dir, fs_err *e) {
    memset(m, 0, sizeof *m);
    if (strlen(dir) >= sizeof m->dir) return fs_errf(e, "%s: model path too long", dir);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    if (fs_config_load(&m->cfg, dir, e)) return -1;
    model_priv *p = fs_xcalloc(1, sizeof *p);
    m->priv = p;
    if (open_files(m, p, e) || gather_tensors(m, p, e) || bind_all(m, e)) {
        fs_err keep = e ? *e : (fs_err){{0}};
        fs_model_free(m);
        if (e) *e = keep;
        return -1;
    }
    return 0;
}
