/* forward.c - the Qwen3 forward pass, written once against the backend.
 *
 * One session = one model + one backend + one KV cache. For each call,
 * the T new tokens (positions pos .. pos+T-1) go through:
 *
 *   x = embed_tokens[ids]                                   [T, H]
 *   for each layer:
 *     h = rmsnorm(x, input_layernorm)                       [T, H]
 *     q = h q_proj^T, k = h k_proj^T, v = h v_proj^T        [T, Hq, D], [T, Hkv, D]
 *     q = rmsnorm_per_head(q, q_norm); k = ..(k, k_norm)    (Qwen3's QK-norm)
 *     q, k = rope(q, k, positions)
 *     cache[pos .. pos+T) = k, v                            [n_ctx, Hkv, D]
 *     a = attention(q, cache)                               [T, Hq, D]
 *     x = x + a o_proj^T                                    [T, H]
 *     h = rmsnorm(x, post_attention_layernorm)
 *     x = x + down_proj(silu(h gate_proj^T) * (h up_proj^T))   [T, I] -> [T, H]
 *   logits = rmsnorm(x, norm) lm_head^T                     [V], last token only
 *
 * This file never touches a float: it only hands buffer handles to the
 * backend (backend.h), so a GPU backend runs the very same loop.
 *
 * Memory: fs_session_new allocates everything - weights' buffers, the KV
 * cache, every activation for a chunk of up to max_batch tokens, the logits.
 * fs_session_eval and fs_session_eval_debug never allocate: longer inputs
 * are processed in chunks of max_batch tokens, which gives the same result
 * because attention reads earlier chunks from the cache.
 *
 * Threads: opts->n_threads goes to the backend. The default backend "cpu"
 * (src/cpu/backend_fast.c) runs its ops on that many threads; the scalar
 * reference "cpu-ref" is single-threaded.
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "forward.h"

/* Largest prefill chunk. Activations cost about (4H + 2 Hq D + 2 Hkv D + 2I)
 * floats per token (Qwen3-0.6B: ~57 KB), so 512 tokens is ~29 MB: enough
 * to make prefill matrix-matrix, small next to the KV cache. */
#define FS_MAX_BATCH 512
#define FS_DEFAULT_CTX 4096

typedef struct {
    /* weights, HF names */
    fs_buf *input_layernorm, *q_proj, *k_proj, *v_proj, *q_norm, *k_norm, *o_proj;
    fs_buf *post_attention_layernorm, *gate_proj, *up_proj, *down_proj;
    /* this layer's KV cache: [n_ctx, Hkv, D] each */
    fs_buf *k_cache, *v_cache;
} layer_bufs;

struct fs_session {
    const fs_model *m;
    fs_backend *be;
    int n_ctx;        /* capacity of the cache, tokens */
    int pos;          /* tokens in the cache */
    int max_batch;    /* largest chunk one forward call processes */

    fs_buf *embed_tokens, *norm, *lm_head;
    layer_bufs *layers;   /* [L] */

    /* activations, sized for max_batch tokens */
    fs_buf *x;          /* [T, H]   the residual stream */
    fs_buf *x_norm;     /* [T, H]   rmsnorm(x), the input of each block */
    fs_buf *q;          /* [T, Hq, D] */
    fs_buf *k, *v;      /* [T, Hkv, D] */
    fs_buf *attn_out;   /* [T, Hq, D] */
    fs_buf *block_out;  /* [T, H]   o_proj or down_proj output, added to x */
    fs_buf *ffn_gate;   /* [T, I]   gate, then silu(gate) * up */
    fs_buf *ffn_up;     /* [T, I] */
    fs_buf *scores;     /* [n_ctx]  attention scratch: one row of scores */
    fs_buf *last;       /* [H]      final-norm output of one token */
    fs_buf *logits_buf; /* [V] */
    float *logits;      /* [V] host copy of the last token's logits */

    size_t kv_stride;   /* floats per cached position: Hkv * D + FS_KV_PAD */
    size_t kv_bytes, scratch_bytes;
};

/* ---- session setup ---- */

/* Check one weight against the shape the config implies (the loader
 * already does; this also protects hand-built models) and upload it. */
static int bind_weight(fs_session *s, fs_buf **out, const fs_tensor *t, const char *what,
                       int64_t d0, int64_t d1, fs_err *e) {
    const char *name = t->name ? t->name : what;
    int ndim = d1 ? 2 : 1;
    if (!t->data) return fs_errf(e, "tensor %s: missing", name);
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        if (ndim == 2)
            return fs_errf(e, "tensor %s: expected shape [%lld, %lld]", name, (long long)d0, (long long)d1);
        return fs_errf(e, "tensor %s: expected shape [%lld]", name, (long long)d0);
    }
    int overflow;
    size_t want = fs_tensor_bytes(t->dtype, t->ndim, t->shape, &overflow);
    if (t->nbytes != want || overflow || (fs_dtype_is_quant(t->dtype) && ndim != 2))
        return fs_errf(e, "tensor %s: %zu bytes of %s, expected %zu", name, t->nbytes, fs_dtype_name(t->dtype), want);
    *out = s->be->upload(s->be, t, e);
    return *out ? 0 : -1;
}

static int new_act(fs_session *s, fs_buf **out, size_t n, size_t *bytes, fs_err *e) {
    *out = s->be->alloc(s->be, n, e);
    if (!*out) return -1;
    *bytes += s->be->buf_bytes(s->be, *out);
    return 0;
}

static int check_config(const fs_config *c, fs_err *e) {
    if (c->n_layers < 1 || c->hidden < 1 || c->n_heads < 1 || c->n_kv_heads < 1 ||
        c->head_dim < 2 || c->ffn < 1 || c->vocab < 1)
        return fs_errf(e, "config: every size (L, H, Hq, Hkv, D, I, V) must be positive");
    if (c->n_heads % c->n_kv_heads)
        return fs_errf(e, "config: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return fs_errf(e, "config: head_dim %d must be even for RoPE", c->head_dim);
    if (!(c->rope_theta > 0)) return fs_errf(e, "config: rope_theta must be positive");
    if (!(c->rms_eps > 0)) return fs_errf(e, "config: rms_norm_eps must be positive");
    return 0;
}

int fs_session_new(fs_session **out, const fs_model *m, const fs_session_opts *opts, fs_err *e) {
    *out = NULL;
    const fs_config *c = &m->cfg;
    if (check_config(c, e)) return -1;

    int n_ctx = opts ? opts->n_ctx : 0;
    if (n_ctx < 0) return fs_errf(e, "n_ctx %d: must be positive (0 = default)", n_ctx);
    if (n_ctx == 0) {
        n_ctx = FS_DEFAULT_CTX;
        if (c->max_pos > 0 && n_ctx > c->max_pos) n_ctx = c->max_pos;
    } else if (c->max_pos > 0 && n_ctx > c->max_pos) {
        return fs_errf(e, "n_ctx %d exceeds the model's max_position_embeddings %d", n_ctx, c->max_pos);
    }

    fs_backend *be = fs_backend_new_opts(opts ? opts->backend : NULL, opts ? opts->n_threads : 0, e);
    if (!be) return -1;

    fs_session *s = fs_xcalloc(1, sizeof *s);
    s->m = m;
    s->be = be;
    s->n_ctx = n_ctx;
    s->max_batch = n_ctx < FS_MAX_BATCH ? n_ctx : FS_MAX_BATCH;
    int L = c->n_layers, H = c->hidden, Hq = c->n_heads, Hkv = c->n_kv_heads;
    int D = c->head_dim, I = c->ffn, V = c->vocab;
    s->layers = fs_xcalloc((size_t)L, sizeof *s->layers);

    /* weights (views on the CPU; copies on a GPU) */
    if (bind_weight(s, &s->embed_tokens, &m->embed_tokens, "embed_tokens", V, H, e) ||
        bind_weight(s, &s->norm, &m->norm, "norm", H, 0, e) ||
        bind_weight(s, &s->lm_head, &m->lm_head, "lm_head", V, H, e))
        goto fail;
    for (int l = 0; l < L; l++) {
        const fs_layer *w = &m->layers[l];
        layer_bufs *b = &s->layers[l];
        if (bind_weight(s, &b->input_layernorm, &w->input_layernorm, "input_layernorm", H, 0, e) ||
            bind_weight(s, &b->q_proj, &w->q_proj, "q_proj", (int64_t)Hq * D, H, e) ||
            bind_weight(s, &b->k_proj, &w->k_proj, "k_proj", (int64_t)Hkv * D, H, e) ||
            bind_weight(s, &b->v_proj, &w->v_proj, "v_proj", (int64_t)Hkv * D, H, e) ||
            bind_weight(s, &b->q_norm, &w->q_norm, "q_norm", D, 0, e) ||
            bind_weight(s, &b->k_norm, &w->k_norm, "k_norm", D, 0, e) ||
            bind_weight(s, &b->o_proj, &w->o_proj, "o_proj", H, (int64_t)Hq * D, e) ||
            bind_weight(s, &b->post_attention_layernorm, &w->post_attention_layernorm,
                        "post_attention_layernorm", H, 0, e) ||
            bind_weight(s, &b->gate_proj, &w->gate_proj, "gate_proj", I, H, e) ||
            bind_weight(s, &b->up_proj, &w->up_proj, "up_proj", I, H, e) ||
            bind_weight(s, &b->down_proj, &w->down_proj, "down_proj", H, I, e)) {
            fs_err_prefix(e, "layer %d", l);
            goto fail;
        }
    }

    /* The backend has what it reads of the weights (copies, or views it
     * maps again on use): the file's pages need not stay mapped. */
    fs_model_release_pages(m);

    /* KV cache: for each layer, K and V of every position, [n_ctx, Hkv, D]
     * with FS_KV_PAD floats after each position */
    size_t kv_n, kv_total;
    s->kv_stride = (size_t)Hkv * (size_t)D + FS_KV_PAD;
    if (!fs_mul_size((size_t)n_ctx, s->kv_stride, &kv_n) || !fs_mul_size(kv_n, 8 * (size_t)L, &kv_total)) {
        fs_errf(e, "KV cache of %d tokens overflows size_t", n_ctx);
        goto fail;
    }
    for (int l = 0; l < L; l++)
        if (new_act(s, &s->layers[l].k_cache, kv_n, &s->kv_bytes, e) ||
            new_act(s, &s->layers[l].v_cache, kv_n, &s->kv_bytes, e)) {
            fs_err_prefix(e, "KV cache (%d tokens)", n_ctx);
            goto fail;
        }

    size_t B = (size_t)s->max_batch, *sb = &s->scratch_bytes;
    if (new_act(s, &s->x, B * H, sb, e) || new_act(s, &s->x_norm, B * H, sb, e) ||
        new_act(s, &s->q, B * Hq * D, sb, e) || new_act(s, &s->k, B * Hkv * D, sb, e) ||
        new_act(s, &s->v, B * Hkv * D, sb, e) || new_act(s, &s->attn_out, B * Hq * D, sb, e) ||
        new_act(s, &s->block_out, B * H, sb, e) || new_act(s, &s->ffn_gate, B * I, sb, e) ||
        new_act(s, &s->ffn_up, B * I, sb, e) || new_act(s, &s->scores, (size_t)n_ctx, sb, e) ||
        new_act(s, &s->last, (size_t)H, sb, e) || new_act(s, &s->logits_buf, (size_t)V, sb, e)) {
        fs_err_prefix(e, "activations");
        goto fail;
    }
    s->logits = fs_xcalloc((size_t)V, sizeof(float));
    s->scratch_bytes += (size_t)V * sizeof(float);
    *out = s;
    return 0;

fail:
    fs_session_free(s);
    return -1;
}

void fs_session_free(fs_session *s) {
    if (!s) return;
    fs_backend *be = s->be;
    fs_buf *top[] = {s->embed_tokens, s->norm, s->lm_head, s->x, s->x_norm, s->q, s->k, s->v,
                     s->attn_out, s->block_out, s->ffn_gate, s->ffn_up, s->scores, s->last, s->logits_buf};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (top[i]) be->free_buf(be, top[i]);
    if (s->layers) {
        for (int l = 0; l < s->m->cfg.n_layers; l++) {
            layer_bufs *b = &s->layers[l];
            fs_buf *bufs[] = {b->input_layernorm, b->q_proj, b->k_proj, b->v_proj, b->q_norm, b->k_norm,
                              b->o_proj, b->post_attention_layernorm, b->gate_proj, b->up_proj,
                              b->down_proj, b->k_cache, b->v_cache};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                if (bufs[i]) be->free_buf(be, bufs[i]);
        }
        free(s->layers);
    }
    free(s->logits);
    be->destroy(be);
    free(s);
}

/* ---- the forward pass ---- */

/* Where fs_session_eval_debug wants its extra outputs (all NULL in normal
 * use). checkpoints: [(L+2), n_total, H]; logits_all: [n_total, V]. t0 is
 * the chunk's first row within the caller's n_total tokens. */
typedef struct {
    float *checkpoints;
    float *logits_all;
    int n_total;
    int t0;
} debug_out;

static void save_checkpoint(fs_session *s, const debug_out *dbg, int c, const fs_buf *src, int T) {
    if (!dbg || !dbg->checkpoints) return;
    size_t H = (size_t)s->m->cfg.hidden;
    float *dst = dbg->checkpoints + ((size_t)c * (size_t)dbg->n_total + (size_t)dbg->t0) * H;
    s->be->read(s->be, src, 0, dst, (size_t)T * H);
}

/* Two or three matmuls of the same input x [T, K] (W3 may be NULL): one
 * matmul_n call where the backend has it, otherwise one matmul each. */
static void matmul3(fs_backend *be, const fs_buf *x, const fs_buf *W1, fs_buf *y1, int N1, const fs_buf *W2,
                    fs_buf *y2, int N2, const fs_buf *W3, fs_buf *y3, int N3, int T, int K) {
    const fs_buf *W[3] = {W1, W2, W3};
    fs_buf *y[3] = {y1, y2, y3};
    int N[3] = {N1, N2, N3}, n = W3 ? 3 : 2;
    if (be->matmul_n) {
        be->matmul_n(be, x, n, W, y, T, K, N);
        return;
    }
    for (int i = 0; i < n; i++) be->matmul(be, x, W[i], y[i], T, K, N[i]);
}

/* One chunk of T <= max_batch tokens at positions s->pos .. s->pos+T-1. */
static void forward_chunk(fs_session *s, const int *ids, int T, const debug_out *dbg) {
    fs_backend *be = s->be;
    const fs_config *c = &s->m->cfg;
    int H = c->hidden, Hq = c->n_heads, Hkv = c->n_kv_heads, D = c->head_dim, I = c->ffn, V = c->vocab;
    float eps = (float)c->rms_eps;
    int pos0 = s->pos;
    size_t kv_row = (size_t)Hkv * (size_t)D;   /* one token's K (or V) */

    be->embed(be, s->embed_tokens, ids, T, H, s->x);
    save_checkpoint(s, dbg, 0, s->x, T);

    for (int l = 0; l < c->n_layers; l++) {
        layer_bufs *w = &s->layers[l];

        /* attention block */
        be->rmsnorm(be, s->x, w->input_layernorm, s->x_norm, T, H, eps);
        matmul3(be, s->x_norm, w->q_proj, s->q, Hq * D, w->k_proj, s->k, Hkv * D, w->v_proj, s->v, Hkv * D, T, H);
        be->rmsnorm(be, s->q, w->q_norm, s->q, T * Hq, D, eps);
        be->rmsnorm(be, s->k, w->k_norm, s->k, T * Hkv, D, eps);
        be->rope(be, s->q, T, Hq, D, pos0, c->rope_theta);
        be->rope(be, s->k, T, Hkv, D, pos0, c->rope_theta);
        /* each token's K and V row goes to its position in the cache */
        for (int t = 0; t < T; t++) {
            be->copy(be, s->k, (size_t)t * kv_row, w->k_cache, (size_t)(pos0 + t) * s->kv_stride, kv_row);
            be->copy(be, s->v, (size_t)t * kv_row, w->v_cache, (size_t)(pos0 + t) * s->kv_stride, kv_row);
        }
        be->attention(be, s->q, w->k_cache, w->v_cache, s->kv_stride, s->attn_out, s->scores, T, pos0, Hq, Hkv, D);
        be->matmul(be, s->attn_out, w->o_proj, s->block_out, T, Hq * D, H);
        be->add(be, s->x, s->block_out, (size_t)T * H);

        /* MLP block */
        be->rmsnorm(be, s->x, w->post_attention_layernorm, s->x_norm, T, H, eps);
        matmul3(be, s->x_norm, w->gate_proj, s->ffn_gate, I, w->up_proj, s->ffn_up, I, NULL, NULL, 0, T, H);
        be->swiglu(be, s->ffn_gate, s->ffn_up, s->ffn_gate, (size_t)T * I);
        be->matmul(be, s->ffn_gate, w->down_proj, s->block_out, T, I, H);
        be->add(be, s->x, s->block_out, (size_t)T * H);

        save_checkpoint(s, dbg, 1 + l, s->x, T);
    }

    /* final norm on every row (cheap), lm_head on the rows someone reads:
     * the last one normally, every one for the debug entry point. */
    be->rmsnorm(be, s->x, s->norm, s->x_norm, T, H, eps);
    save_checkpoint(s, dbg, c->n_layers + 1, s->x_norm, T);
    int first = (dbg && dbg->logits_all) ? 0 : T - 1;
    for (int t = first; t < T; t++) {
        be->copy(be, s->x_norm, (size_t)t * H, s->last, 0, (size_t)H);
        be->matmul(be, s->last, s->lm_head, s->logits_buf, 1, H, V);
        if (dbg && dbg->logits_all)
            be->read(be, s->logits_buf, 0, dbg->logits_all + ((size_t)dbg->t0 + (size_t)t) * (size_t)V, (size_t)V);
    }
    be->read(be, s->logits_buf, 0, s->logits, (size_t)V);
    be->sync(be);
    s->pos += T;
}

/* Checks first, so a failed call changes nothing; then chunks. */
static int eval_common(fs_session *s, const int *ids, int n, float *logits_all, float *checkpoints, fs_err *e) {
    if (n < 1 || !ids) return fs_errf(e, "eval: no tokens given (n = %d)", n);
    if (n > s->n_ctx - s->pos)
        return fs_errf(e, "context full: %d tokens in the cache + %d new > n_ctx %d", s->pos, n, s->n_ctx);
    int V = s->m->cfg.vocab;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return fs_errf(e, "token id %d at index %d is out of range [0, %d)", ids[i], i, V);

    debug_out dbg = {checkpoints, logits_all, n, 0};
    int debug = logits_all || checkpoints;
    for (int t0 = 0; t0 < n; t0 += s->max_batch) {
        int T = n - t0 < s->max_batch ? n - t0 : s->max_batch;
        dbg.t0 = t0;
        forward_chunk(s, ids + t0, T, debug ? &dbg : NULL);
    }
    return 0;
}

int fs_session_eval(fs_session *s, const int *ids, int n, fs_err *e) {
    return eval_common(s, ids, n, NULL, NULL, e);
}

int fs_session_eval_debug(fs_session *s, const int *ids, int n, float *logits_all, float *checkpoints, fs_err *e) {
    return eval_common(s, ids, n, logits_all, checkpoints, e);
}

const float *fs_session_logits(const fs_session *s) { return s->logits; }
int fs_session_pos(const fs_session *s) { return s->pos; }
int fs_session_n_ctx(const fs_session *s) { return s->n_ctx; }
size_t fs_session_kv_bytes(const fs_session *s) { return s->kv_bytes; }
size_t fs_session_scratch_bytes(const fs_session *s) { return s->scratch_bytes; }
const fs_model *fs_session_model(const fs_session *s) { return s->m; }
int fs_session_max_batch(const fs_session *s) { return s->max_batch; }

/* The cache beyond n is not cleared: attention reads positions < pos only,
 * and the next eval overwrites them. fs_session_logits() keeps the old
 * values until the next eval. */
void fs_session_truncate(fs_session *s, int n) {
    if (n < 0) n = 0;
    if (n < s->pos) s->pos = n;
}
