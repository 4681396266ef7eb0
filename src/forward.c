/* forward.c - the forward pass, written once against the backend, for every
 * architecture of arch.h (Qwen3, Llama 3, Qwen2): what differs is which
 * weights a layer has, and an absent one is NULL to the ops.
 *
 * An fs_forward is a model on a backend: its weights uploaded, the
 * activations of one chunk, the backend's scratch. An fs_session is one
 * sequence on it: a KV cache per layer and a position. For each call, the
 * T new tokens (positions pos .. pos+T-1) go through:
 *
 *   x = embed_tokens[ids]                                    [T, H]
 *   for each layer:
 *     q, k, v = rmsnorm(x, input_layernorm) [q_proj k_proj v_proj]^T
 *                                                            [T, Hq, D], [T, Hkv, D]
 *     q, k, v += q_bias, k_bias, v_bias                      (Qwen2 only)
 *     q, k = rope(rmsnorm_per_head(q, q_norm)), rope(..(k, k_norm))
 *                                       (QK-norm: Qwen3 only; rope's
 *                                        frequencies: arch.c, Llama 3 scaled)
 *     cache[pos .. pos+T) = k, v                             [n_ctx, Hkv, D]
 *     x = x + attention(q, cache) o_proj^T                   [T, H]
 *     g, u = rmsnorm(x, post_attention_layernorm) [gate_proj up_proj]^T
 *     x = x + (silu(g) * u) down_proj^T                      [T, I] -> [T, H]
 *   logits = rmsnorm(x, norm) lm_head^T                      [V], last token only
 *
 * That is six backend calls per layer (backend.h): a matmul reads its
 * input through the rmsnorm or the SwiGLU before it and adds its output to
 * the residual stream x, and rope_kv does the QK-norm, the rotation and
 * the cache store - each defined as the unfused steps, so the arithmetic
 * is the paper's; what fusion saves is passes over memory and, on a GPU,
 * kernel launches.
 *
 * This file never touches a float: it hands buffer handles to the backend,
 * so the CPU and the GPU run the very same loop.
 *
 * A decode step (T = 1) issues the same ops on the same buffers every time;
 * only the token and its position change, and the backend reads those from
 * the step (set_step). A backend that can record (CUDA: a graph) records
 * the step's ops once per session and replays them for every later token:
 * ~170 launches become one.
 *
 * Continuous batching (fs_forward_batch): one forward call can carry the
 * tokens of several sessions - a server's decode step is one token of each
 * of its n_seq clients. The step tells the backend each token's session
 * (seq) and position; the matmuls see one [T, K] input whatever the
 * sessions, so the weights are read once for all of them, while rope_kv
 * and attention take this layer's cache of every session (caches[seq]).
 * The layer loop below is the same for one session and for many; only the
 * lm_head differs: it runs on the last row of each session.
 *
 * Memory: fs_forward_new allocates the weights' buffers, the activations
 * for a chunk of up to max_batch tokens, the step's arrays and the
 * backend's scratch; fs_session_new the KV cache and the logits.
 * fs_session_eval and fs_forward_batch never allocate: longer inputs are
 * processed in chunks of max_batch tokens, which gives the same result
 * because attention reads earlier chunks from the cache.
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"

/* Largest prefill chunk. Activations cost about (2H + 2 Hq D + 2 Hkv D +
 * 2I) floats per token (Qwen3-0.6B: ~50 KB), so 512 tokens is ~25 MB:
 * enough to make prefill matrix-matrix, small next to the KV cache. */
#define FS_MAX_BATCH 512
#define FS_DEFAULT_CTX 4096

typedef struct {
    /* weights, HF names */
    fs_buf *input_layernorm, *q_proj, *k_proj, *v_proj, *q_norm, *k_norm, *o_proj;
    fs_buf *post_attention_layernorm, *gate_proj, *up_proj, *down_proj;
    fs_buf *q_bias_buf, *k_bias_buf, *v_bias_buf;
    fs_qkv_bias bias;   /* the three above, for rope_kv */
    const fs_qkv_bias *qkv_bias;   /* &bias, or NULL (no biases: Qwen3, Llama) */
} layer_weights;

struct fs_forward {
    const fs_model *m;
    fs_backend *be;
    int n_ctx;        /* the longest context a session may have */
    int max_batch;    /* largest chunk one forward call processes */
    int max_seqs;     /* most sessions one forward call carries */
    fs_dtype kv_dtype; /* the KV caches' elements (reserve's) */

    /* the step of the current call (backend.h): each token's id, position
     * and session, [max_batch] each; caches: this layer's KV cache of each
     * session of the call, [FS_MAX_SEQS] */
    fs_step step;
    int *step_ids, *step_pos, *step_seq;
    fs_buf **caches;

    fs_buf *embed_tokens, *norm, *lm_head;
    layer_weights *layers;   /* [L] */

    /* activations, sized for max_batch tokens; shared by the sessions,
     * which take turns */
    fs_buf *x;          /* [T, H]     the residual stream */
    fs_buf *x_norm;     /* [T, H]     the final norm's output (debug entry point) */
    fs_buf *q;          /* [T, Hq, D] */
    fs_buf *k, *v;      /* [T, Hkv, D] */
    fs_buf *attn_out;   /* [T, Hq, D] */
    fs_buf *ffn_gate;   /* [T, I] */
    fs_buf *ffn_up;     /* [T, I] */
    fs_buf *last;       /* [max_seqs, H] each session's last row of x (or one row
                           of x_norm), for lm_head */
    fs_buf *logits;     /* [max_seqs, V] the lm_head of a batched call (max_seqs > 1) */
    fs_session *batch_last[FS_MAX_SEQS];   /* the sessions of the last fs_forward_batch, */
    int batch_n;                           /* in its order (fs_forward_batch_argmax), */
    int batch_rows;                        /* and 1 while f->logits still holds its rows
                                              (cleared by the next forward call) */

    size_t weight_bytes, scratch_bytes;
    fs_profile *prof;   /* fs_forward_profile's, or NULL (off) */
};

struct fs_session {
    fs_forward *f;
    int n_ctx;        /* capacity of the cache, tokens */
    int pos;          /* tokens in the cache */
    fs_buf **kv;      /* [L] each layer's keys and values, the backend's layout */
    fs_buf *logits_buf;   /* [V] the last token's logits, where the backend computes */
    float *logits;        /* [V] host copy, made on first use */
    int logits_on_host;   /* logits holds the latest logits_buf */
    int logits_row;       /* -1: logits_buf holds this session's latest logits; r >= 0:
                             they are row r of f->logits (the last batch), copied on
                             first use or before a forward call overwrites that row */
    volatile sig_atomic_t *cancel;
    fs_rec *decode_rec;   /* the recorded one-token step (NULL: none yet) */
    int no_record;        /* recording failed once: run decode steps directly */
    size_t kv_bytes;
};

/* ---- setup ---- */

/* Check one weight against the shape the config implies (the loader
 * already does; this also protects hand-built models) and upload it. */
static int bind_weight(fs_forward *f, fs_buf **out, const fs_tensor *t, const char *what, int64_t d0, int64_t d1,
                       fs_err *e) {
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
    *out = f->be->upload(f->be, t, e);
    if (!*out) return -1;
    if (out == &f->embed_tokens || *out != f->embed_tokens)   /* a tied lm_head shares it: count it once */
        f->weight_bytes += f->be->buf_bytes(f->be, *out);
    return 0;
}

/* A weight the architecture may not have (arch.h): NULL when the model's
 * tensor has no data, else checked and uploaded like any other. */
static int bind_optional(fs_forward *f, fs_buf **out, const fs_tensor *t, const char *what, int64_t d0, fs_err *e) {
    *out = NULL;
    return t->data ? bind_weight(f, out, t, what, d0, 0, e) : 0;
}

static int new_act(fs_backend *be, fs_buf **out, size_t n, size_t *bytes, fs_err *e) {
    *out = be->alloc(be, n, e);
    if (!*out) return -1;
    *bytes += be->buf_bytes(be, *out);
    return 0;
}

static int check_config(const fs_config *c, fs_err *e) {
    if (c->n_layers < 1 || c->hidden < 1 || c->n_heads < 1 || c->n_kv_heads < 1 || c->head_dim < 2 || c->ffn < 1 ||
        c->vocab < 1)
        return fs_errf(e, "config: every size (L, H, Hq, Hkv, D, I, V) must be positive");
    if (c->n_heads % c->n_kv_heads)
        return fs_errf(e, "config: num_attention_heads %d is not a multiple of num_key_value_heads %d", c->n_heads,
                       c->n_kv_heads);
    if (c->head_dim % 2) return fs_errf(e, "config: head_dim %d must be even for RoPE", c->head_dim);
    if (!(c->rope_theta > 0)) return fs_errf(e, "config: rope_theta must be positive");
    if (!(c->rms_eps > 0)) return fs_errf(e, "config: rms_norm_eps must be positive");
    return 0;
}

/* Bytes of one session's KV cache of n_ctx tokens, as f32 (what "auto"
 * checks a GPU's free memory against; a backend's layout may pad it). */
static int kv_cache_bytes(const fs_config *c, int n_ctx, size_t *out) {
    size_t n;
    return fs_mul_size((size_t)n_ctx, (size_t)c->n_kv_heads * (size_t)c->head_dim, &n) &&
           fs_mul_size(n, 2 * sizeof(float) * (size_t)c->n_layers, out);
}

int fs_forward_new(fs_forward **out, const fs_model *m, const fs_forward_opts *o, fs_err *e) {
    *out = NULL;
    const fs_config *c = &m->cfg;
    if (check_config(c, e)) return -1;

    int n_ctx = o ? o->n_ctx : 0;
    if (n_ctx < 0) return fs_errf(e, "n_ctx %d: must be positive (0 = default)", n_ctx);
    if (n_ctx == 0) {
        n_ctx = FS_DEFAULT_CTX;
        if (c->max_pos > 0 && n_ctx > c->max_pos) n_ctx = c->max_pos;
    } else if (c->max_pos > 0 && n_ctx > c->max_pos) {
        return fs_errf(e, "n_ctx %d exceeds the model's max_position_embeddings %d", n_ctx, c->max_pos);
    }
    int L = c->n_layers, H = c->hidden, Hq = c->n_heads, Hkv = c->n_kv_heads;
    int D = c->head_dim, I = c->ffn, V = c->vocab;
    int max_batch = n_ctx < FS_MAX_BATCH ? n_ctx : FS_MAX_BATCH;
    int max_seqs = o && o->max_seqs ? o->max_seqs : 1;
    if (max_seqs < 1 || max_seqs > FS_MAX_SEQS)
        return fs_errf(e, "max_seqs %d: must be 1 .. %d (0 = 1)", max_seqs, FS_MAX_SEQS);
    if (max_seqs > max_batch) max_seqs = max_batch;   /* every session of a call brings a token */

    /* What the model needs on the backend: the weights as stored, one
     * session's cache, the activations (for "auto" to judge a GPU). */
    fs_backend_opts bo = {o ? o->backend : NULL, o ? o->n_threads : 0, 0};
    size_t kv;
    if (!kv_cache_bytes(c, n_ctx, &kv)) return fs_errf(e, "KV cache of %d tokens overflows size_t", n_ctx);
    bo.need_bytes = kv + (size_t)max_batch * (size_t)(2 * H + 2 * Hq * D + 2 * Hkv * D + 2 * I) * sizeof(float);
    for (int i = 0; i < m->n_tensors; i++) bo.need_bytes += m->tensors[i].nbytes;

    fs_backend *be = fs_backend_open(&bo, e);
    if (!be) return -1;

    fs_forward *f = fs_xcalloc(1, sizeof *f);
    f->m = m;
    f->be = be;
    f->n_ctx = n_ctx;
    f->max_batch = max_batch;
    f->max_seqs = max_seqs;
    f->layers = fs_xcalloc((size_t)L, sizeof *f->layers);
    f->step_ids = fs_xcalloc((size_t)max_batch, sizeof *f->step_ids);
    f->step_pos = fs_xcalloc((size_t)max_batch, sizeof *f->step_pos);
    f->step_seq = fs_xcalloc((size_t)max_batch, sizeof *f->step_seq);
    f->caches = fs_xcalloc(FS_MAX_SEQS, sizeof *f->caches);

    if (bind_weight(f, &f->embed_tokens, &m->embed_tokens, "embed_tokens", V, H, e) ||
        bind_weight(f, &f->norm, &m->norm, "norm", H, 0, e) ||
        bind_weight(f, &f->lm_head, &m->lm_head, "lm_head", V, H, e))
        goto fail;
    for (int l = 0; l < L; l++) {
        const fs_layer *w = &m->layers[l];
        layer_weights *b = &f->layers[l];
        if (bind_weight(f, &b->input_layernorm, &w->input_layernorm, "input_layernorm", H, 0, e) ||
            bind_weight(f, &b->q_proj, &w->q_proj, "q_proj", (int64_t)Hq * D, H, e) ||
            bind_weight(f, &b->k_proj, &w->k_proj, "k_proj", (int64_t)Hkv * D, H, e) ||
            bind_weight(f, &b->v_proj, &w->v_proj, "v_proj", (int64_t)Hkv * D, H, e) ||
            bind_optional(f, &b->q_norm, &w->q_norm, "q_norm", D, e) ||
            bind_optional(f, &b->k_norm, &w->k_norm, "k_norm", D, e) ||
            bind_optional(f, &b->q_bias_buf, &w->q_bias, "q_bias", (int64_t)Hq * D, e) ||
            bind_optional(f, &b->k_bias_buf, &w->k_bias, "k_bias", (int64_t)Hkv * D, e) ||
            bind_optional(f, &b->v_bias_buf, &w->v_bias, "v_bias", (int64_t)Hkv * D, e) ||
            bind_weight(f, &b->o_proj, &w->o_proj, "o_proj", H, (int64_t)Hq * D, e) ||
            bind_weight(f, &b->post_attention_layernorm, &w->post_attention_layernorm, "post_attention_layernorm",
                        H, 0, e) ||
            bind_weight(f, &b->gate_proj, &w->gate_proj, "gate_proj", I, H, e) ||
            bind_weight(f, &b->up_proj, &w->up_proj, "up_proj", I, H, e) ||
            bind_weight(f, &b->down_proj, &w->down_proj, "down_proj", H, I, e)) {
            fs_err_prefix(e, "layer %d", l);
            goto fail;
        }
        if (!b->q_norm != !b->k_norm || !b->q_bias_buf != !b->k_bias_buf || !b->q_bias_buf != !b->v_bias_buf) {
            fs_errf(e, "layer %d: q_norm and k_norm, and the q/k/v biases, come together or not at all", l);
            goto fail;
        }
        b->bias = (fs_qkv_bias){b->q_bias_buf, b->k_bias_buf, b->v_bias_buf};
        b->qkv_bias = b->q_bias_buf ? &b->bias : NULL;
    }
    /* The backend has what it reads of the weights (copies, or views it
     * maps again on use): the file's pages need not stay mapped. */
    fs_model_release_pages(m);

    size_t B = (size_t)max_batch, S = (size_t)max_seqs, *sb = &f->scratch_bytes;
    if (new_act(be, &f->x, B * H, sb, e) || new_act(be, &f->x_norm, B * H, sb, e) ||
        new_act(be, &f->q, B * Hq * D, sb, e) || new_act(be, &f->k, B * Hkv * D, sb, e) ||
        new_act(be, &f->v, B * Hkv * D, sb, e) || new_act(be, &f->attn_out, B * Hq * D, sb, e) ||
        new_act(be, &f->ffn_gate, B * I, sb, e) || new_act(be, &f->ffn_up, B * I, sb, e) ||
        new_act(be, &f->last, S * H, sb, e) || (max_seqs > 1 && new_act(be, &f->logits, S * V, sb, e))) {
        fs_err_prefix(e, "activations");
        goto fail;
    }

    /* The backend's own scratch, for the largest shapes the ops will see. */
    int qkv = Hq * D + 2 * Hkv * D, max_K = H, max_N = V;
    if (Hq * D > max_K) max_K = Hq * D;
    if (I > max_K) max_K = I;
    if (qkv > max_N) max_N = qkv;
    if (2 * I > max_N) max_N = 2 * I;
    float *inv_freq = fs_xmalloc((size_t)(D / 2) * sizeof *inv_freq);
    fs_rope_inv_freq(c->rope_theta, D, &c->rope_scaling, inv_freq);   /* arch.c: plain or Llama 3-scaled */
    fs_reserve r = {.max_T = max_batch, .max_seqs = max_seqs, .max_K = max_K, .max_N = max_N, .n_ctx = n_ctx,
                    .Hq = Hq, .Hkv = Hkv, .D = D, .rope_inv_freq = inv_freq,
                    .kv_dtype = o->kv_auto ? be->kv_default : o->kv_dtype};
    f->kv_dtype = r.kv_dtype;
    int rc = be->reserve(be, &r, e);
    free(inv_freq);
    if (rc) {
        fs_err_prefix(e, "%s backend scratch", be->name);
        goto fail;
    }
    f->scratch_bytes += be->reserved_bytes(be);
    *out = f;
    return 0;

fail:
    fs_forward_free(f);
    return -1;
}

void fs_forward_free(fs_forward *f) {
    if (!f) return;
    fs_backend *be = f->be;
    fs_buf *top[] = {f->embed_tokens, f->norm, f->lm_head, f->x, f->x_norm, f->q, f->k, f->v,
                     f->attn_out, f->ffn_gate, f->ffn_up, f->last, f->logits};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (top[i]) be->free_buf(be, top[i]);
    if (f->layers) {
        for (int l = 0; l < f->m->cfg.n_layers; l++) {
            layer_weights *b = &f->layers[l];
            fs_buf *bufs[] = {b->input_layernorm, b->q_proj, b->k_proj, b->v_proj, b->q_norm, b->k_norm,
                              b->o_proj, b->post_attention_layernorm, b->gate_proj, b->up_proj, b->down_proj,
                              b->q_bias_buf, b->k_bias_buf, b->v_bias_buf};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                if (bufs[i]) be->free_buf(be, bufs[i]);
        }
        free(f->layers);
    }
    be->destroy(be);
    free(f->step_ids);
    free(f->step_pos);
    free(f->step_seq);
    free(f->caches);
    free(f);
}

const fs_model *fs_forward_model(const fs_forward *f) { return f->m; }
fs_backend *fs_forward_backend(fs_forward *f) { return f->be; }
int fs_forward_n_ctx(const fs_forward *f) { return f->n_ctx; }
size_t fs_forward_weight_bytes(const fs_forward *f) { return f->weight_bytes; }
size_t fs_forward_scratch_bytes(const fs_forward *f) { return f->scratch_bytes; }
fs_dtype fs_forward_kv_dtype(const fs_forward *f) { return f->kv_dtype; }
int fs_forward_max_batch(const fs_forward *f) { return f->max_batch; }
int fs_forward_max_seqs(const fs_forward *f) { return f->max_seqs; }

int fs_session_new(fs_session **out, fs_forward *f, int n_ctx, fs_err *e) {
    *out = NULL;
    const fs_config *c = &f->m->cfg;
    if (n_ctx < 0) return fs_errf(e, "n_ctx %d: must be positive (0 = the engine's)", n_ctx);
    if (n_ctx == 0) n_ctx = f->n_ctx;
    if (n_ctx > f->n_ctx)
        return fs_errf(e, "n_ctx %d exceeds the %d tokens the forward pass was set up for", n_ctx, f->n_ctx);
    fs_backend *be = f->be;
    fs_session *s = fs_xcalloc(1, sizeof *s);
    s->f = f;
    s->n_ctx = n_ctx;
    s->kv = fs_xcalloc((size_t)c->n_layers, sizeof *s->kv);
    for (int l = 0; l < c->n_layers; l++) {
        s->kv[l] = be->kv_alloc(be, n_ctx, c->n_kv_heads, c->head_dim, e);
        if (!s->kv[l]) {
            fs_err_prefix(e, "KV cache (%d tokens)", n_ctx);
            goto fail;
        }
        s->kv_bytes += be->buf_bytes(be, s->kv[l]);
    }
    s->logits_buf = be->alloc(be, (size_t)c->vocab, e);
    if (!s->logits_buf) {
        fs_err_prefix(e, "logits");
        goto fail;
    }
    s->logits = fs_xcalloc((size_t)c->vocab, sizeof(float));
    s->logits_row = -1;
    *out = s;
    return 0;

fail:
    fs_session_free(s);
    return -1;
}

void fs_session_free(fs_session *s) {
    if (!s) return;
    fs_backend *be = s->f->be;
    for (int i = 0; i < s->f->batch_n; i++)   /* no longer one of the last batch's sessions */
        if (s->f->batch_last[i] == s) s->f->batch_last[i] = NULL;
    if (s->decode_rec) be->rec_free(be, s->decode_rec);
    if (s->kv)
        for (int l = 0; l < s->f->m->cfg.n_layers; l++)
            if (s->kv[l]) be->free_buf(be, s->kv[l]);
    free(s->kv);
    if (s->logits_buf) be->free_buf(be, s->logits_buf);
    free(s->logits);
    free(s);
}

void fs_session_set_cancel(fs_session *s, volatile sig_atomic_t *flag) { s->cancel = flag; }

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

static void save_checkpoint(fs_forward *f, const debug_out *dbg, int c, const fs_buf *src, int T) {
    if (!dbg || !dbg->checkpoints) return;
    size_t H = (size_t)f->m->cfg.hidden;
    float *dst = dbg->checkpoints + ((size_t)c * (size_t)dbg->n_total + (size_t)dbg->t0) * H;
    f->be->read(f->be, src, 0, dst, (size_t)T * H);
}

/* ---- the profile (fs_forward_profile) ----
 * Each op is timed alone: the backend is made to finish what was queued
 * before it (sync) and the op itself before the clock stops. On the CPU,
 * whose ops run as they are called, that changes nothing but adds two
 * clock reads an op; on a GPU it undoes what queuing buys (the ops
 * overlap nothing and every launch is paid), and profiled steps are not
 * replayed from a record: the times are those of the ops one by one. */
static double prof_begin(fs_forward *f) {
    if (!f->prof) return 0;
    f->be->sync(f->be);
    return fs_now();
}

/* Op `op` took the time since t0; it read `wbytes` of weights (as the
 * model stores them) and did `flops` (matmuls: 2 x weights x rows). */
static void prof_end(fs_forward *f, int op, double t0, size_t wbytes, double flops) {
    if (!f->prof) return;
    f->be->sync(f->be);
    f->prof->sec[op] += fs_now() - t0;
    f->prof->calls[op]++;
    f->prof->weight_bytes[op] += (double)wbytes;
    f->prof->flops[op] += flops;
}

/* Bytes of the weights a, b, c (the model's tensors, as stored: what a
 * matmul reads; absent ones are NULL). */
static size_t wbytes(const fs_tensor *a, const fs_tensor *b, const fs_tensor *c) {
    return (a ? a->nbytes : 0) + (b ? b->nbytes : 0) + (c ? c->nbytes : 0);
}

/* The keys and values the step's attention reads: token t attends over
 * positions 0 .. pos[t], Hkv x D keys and as many values each. */
static double attn_kv_bytes(const fs_forward *f) {
    const fs_config *c = &f->m->cfg;
    double per = 2.0 * c->n_kv_heads * c->head_dim * (f->kv_dtype == FS_DTYPE_F16 ? 2 : 4), n = 0;
    for (int t = 0; t < f->step.T; t++) n += (double)(f->step.pos[t] + 1) * per;
    return n;
}

const char *fs_profile_op_name(int op) {
    static const char *names[FS_PROF_OPS] = {"embed",   "qkv",     "rope_kv", "attention",
                                             "o",       "gate/up", "down",    "lm_head"};
    return op >= 0 && op < FS_PROF_OPS ? names[op] : "?";
}

void fs_forward_profile(fs_forward *f, fs_profile *p) { f->prof = p; }

/* The prefetch hint (backend.h), where the backend takes one. */
static void hint(fs_backend *be, const fs_buf *a, const fs_buf *b, const fs_buf *c) {
    if (!be->prefetch) return;
    const fs_buf *w[3] = {a, b, c};
    be->prefetch(be, w, c ? 3 : b ? 2 : 1);
}

/* The ops of one forward call: the tokens of f->step (set), of the n_seq
 * sessions s (token t belongs to s[step.seq[t]]). Returns 0, or
 * FS_EVAL_CANCELLED when the first session's cancel flag was seen at a
 * layer boundary (stoppable = 0 while recording - a record is all or
 * nothing - and for a batch, which is not cancellable). */
static int forward_ops(fs_forward *f, fs_session *const *s, int n_seq, const debug_out *dbg, int stoppable) {
    fs_backend *be = f->be;
    const fs_config *c = &f->m->cfg;
    int H = c->hidden, Hq = c->n_heads, Hkv = c->n_kv_heads, D = c->head_dim, I = c->ffn, V = c->vocab;
    int T = f->step.T;
    float eps = (float)c->rms_eps;

    double t0 = prof_begin(f), W = (double)T;   /* W: rows through each layer matmul */
    be->embed(be, f->embed_tokens, H, f->x);
    prof_end(f, FS_PROF_EMBED, t0, 0, 0);
    save_checkpoint(f, dbg, 0, f->x, T);

    for (int l = 0; l < c->n_layers; l++) {
        if (stoppable && s[0]->cancel && *s[0]->cancel) return FS_EVAL_CANCELLED;
        layer_weights *w = &f->layers[l];
        const fs_layer *mw = &f->m->layers[l];   /* its tensors, for the profile's byte counts */
        for (int i = 0; i < n_seq; i++) f->caches[i] = s[i]->kv[l];   /* this layer's cache of each session */

        /* Each matmul is preceded by a hint (backend.h's prefetch) naming
         * the weights of the one after it, which a GPU may start loading. */

        /* attention block: x += attention(rope(qk_norm(rmsnorm(x) W_qkv + b_qkv))) W_o */
        fs_mm_in attn_in = {f->x, w->input_layernorm, eps, NULL};
        fs_linear qkv[3] = {{w->q_proj, f->q, Hq * D, 0}, {w->k_proj, f->k, Hkv * D, 0}, {w->v_proj, f->v, Hkv * D, 0}};
        hint(be, w->o_proj, NULL, NULL);
        t0 = prof_begin(f);
        be->matmul(be, &attn_in, T, H, qkv, 3);
        prof_end(f, FS_PROF_QKV, t0, wbytes(&mw->q_proj, &mw->k_proj, &mw->v_proj),
                 2 * W * H * ((double)Hq * D + 2.0 * Hkv * D));
        t0 = prof_begin(f);
        be->rope_kv(be, f->q, f->k, f->v, w->q_norm, w->k_norm, eps, f->caches, Hq, Hkv, D, w->qkv_bias);
        prof_end(f, FS_PROF_ROPE_KV, t0, 0, 0);
        t0 = prof_begin(f);
        be->attention(be, f->q, f->caches, f->attn_out, Hq, Hkv, D);
        if (f->prof) {
            prof_end(f, FS_PROF_ATTENTION, t0, 0, 0);
            f->prof->kv_bytes += attn_kv_bytes(f);
        }
        fs_mm_in o_in = {f->attn_out, NULL, 0, NULL};
        fs_linear o = {w->o_proj, f->x, H, 1};
        hint(be, w->gate_proj, w->up_proj, NULL);
        t0 = prof_begin(f);
        be->matmul(be, &o_in, T, Hq * D, &o, 1);
        prof_end(f, FS_PROF_O, t0, wbytes(&mw->o_proj, NULL, NULL), 2 * W * H * ((double)Hq * D));

        /* MLP block: x += (silu(g) * u) W_down, g, u = rmsnorm(x) W_gate, W_up */
        fs_mm_in mlp_in = {f->x, w->post_attention_layernorm, eps, NULL};
        fs_linear gate_up[2] = {{w->gate_proj, f->ffn_gate, I, 0}, {w->up_proj, f->ffn_up, I, 0}};
        hint(be, w->down_proj, NULL, NULL);
        t0 = prof_begin(f);
        be->matmul(be, &mlp_in, T, H, gate_up, 2);
        prof_end(f, FS_PROF_GATE_UP, t0, wbytes(&mw->gate_proj, &mw->up_proj, NULL), 2 * W * H * 2.0 * I);
        fs_mm_in down_in = {f->ffn_gate, NULL, 0, f->ffn_up};
        fs_linear down = {w->down_proj, f->x, H, 1};
        if (l + 1 < c->n_layers) hint(be, f->layers[l + 1].q_proj, f->layers[l + 1].k_proj, f->layers[l + 1].v_proj);
        t0 = prof_begin(f);
        be->matmul(be, &down_in, T, I, &down, 1);
        prof_end(f, FS_PROF_DOWN, t0, wbytes(&mw->down_proj, NULL, NULL), 2 * W * H * (double)I);

        save_checkpoint(f, dbg, 1 + l, f->x, T);
    }

    /* lm_head on the rows someone reads: each session's last one normally
     * (the final norm folded into the matmul), every one for the debug
     * entry point (which also wants the final norm's output of every row). */
    t0 = prof_begin(f);
    size_t head_bytes = wbytes(&f->m->lm_head, NULL, NULL);
    if (!dbg && n_seq == 1) {
        fs_linear head = {f->lm_head, s[0]->logits_buf, V, 0};
        const fs_buf *row = f->x;
        if (T > 1) {
            be->copy(be, f->x, (size_t)(T - 1) * H, f->last, 0, (size_t)H);
            row = f->last;
        }
        fs_mm_in head_in = {row, f->norm, eps, NULL};
        be->matmul(be, &head_in, 1, H, &head, 1);
        prof_end(f, FS_PROF_LM_HEAD, t0, head_bytes, 2.0 * V * H);
        return 0;
    }
    if (!dbg) {   /* a batch: the last rows side by side, one matmul, a row to each session */
        const int *seq = f->step.seq;
        for (int t = 0; t < T; t++)
            if (t == T - 1 || seq[t + 1] != seq[t])
                be->copy(be, f->x, (size_t)t * H, f->last, (size_t)seq[t] * H, (size_t)H);
        fs_mm_in head_in = {f->last, f->norm, eps, NULL};
        fs_linear head = {f->lm_head, f->logits, V, 0};
        be->matmul(be, &head_in, n_seq, H, &head, 1);
        prof_end(f, FS_PROF_LM_HEAD, t0, head_bytes, 2.0 * n_seq * V * H);
        return 0;   /* each session's row stays in f->logits until used (logits_row) */
    }
    fs_linear head = {f->lm_head, s[0]->logits_buf, V, 0};
    be->rmsnorm(be, f->x, f->norm, f->x_norm, T, H, eps);
    save_checkpoint(f, dbg, c->n_layers + 1, f->x_norm, T);
    int first = dbg->logits_all ? 0 : T - 1;
    for (int t = first; t < T; t++) {
        be->copy(be, f->x_norm, (size_t)t * H, f->last, 0, (size_t)H);
        fs_mm_in head_in = {f->last, NULL, 0, NULL};
        be->matmul(be, &head_in, 1, H, &head, 1);
        if (dbg->logits_all)
            be->read(be, s[0]->logits_buf, 0, dbg->logits_all + ((size_t)dbg->t0 + (size_t)t) * (size_t)V, (size_t)V);
    }
    prof_end(f, FS_PROF_LM_HEAD, t0, head_bytes * (size_t)(T - first), 2.0 * (T - first) * V * H);
    return 0;
}

/* What record() runs: the ops of a one-token step of one session, nothing
 * else. */
static void decode_ops(void *ctx) {
    fs_session *s = ctx;
    forward_ops(s->f, &s, 1, NULL, 0);
    /* and the greedy pick, in the same record: an argmax of these logits
     * after a replay costs no launch (a few us of GPU time a step, used or
     * not; a GPU then needs nothing between two replays) */
    s->f->be->argmax_queue(s->f->be, s->logits_buf, s->f->m->cfg.vocab, 0);
}

/* One forward call of the step in f->step: set it, then run its ops - or
 * replay the session's recorded step, for one token of one session (the
 * same ops on the same buffers every time). The callers advance the
 * sessions' positions. */
static int forward_step(fs_forward *f, fs_session *const *s, int n_seq, const debug_out *dbg, int stoppable) {
    fs_backend *be = f->be;
    be->set_step(be, &f->step);
    if (f->prof) f->prof->tokens += f->step.T;
    if (f->step.T == 1 && !dbg && be->record && !s[0]->no_record && !f->prof) {
        if (!s[0]->decode_rec) {
            fs_err ignored;   /* a backend that cannot record still runs the ops */
            s[0]->decode_rec = be->record(be, decode_ops, s[0], &ignored);
            s[0]->no_record = !s[0]->decode_rec;
        }
        if (s[0]->decode_rec) {
            be->replay(be, s[0]->decode_rec);
            return 0;
        }
    }
    return forward_ops(f, s, n_seq, dbg, stoppable);
}

/* One chunk of T <= max_batch tokens of one session, at positions
 * s->pos .. s->pos+T-1. */
static int forward_chunk(fs_session *s, const int *ids, int T, const debug_out *dbg) {
    fs_forward *f = s->f;
    if (!dbg && s->cancel && *s->cancel) return FS_EVAL_CANCELLED;   /* a replayed step has no layer boundary */
    for (int t = 0; t < T; t++) {
        f->step_pos[t] = s->pos + t;
        f->step_seq[t] = 0;
    }
    f->step = (fs_step){T, ids, f->step_pos, f->step_seq, 1};
    int r = forward_step(f, &s, 1, dbg, !dbg);
    if (r == 0) s->pos += T;
    return r;
}

/* Checks first, so a failed call changes nothing; then chunks. */
static void keep_batch_logits(fs_forward *f, fs_session *const *s, int n_seq);

/* ids NULL (n = 1, no debug output): the token is the last queued argmax
 * (fs_session_eval_queued). */
static int eval_common(fs_session *s, const int *ids, int n, float *logits_all, float *checkpoints, fs_err *e) {
    if (n < 1 || (!ids && n != 1)) return fs_errf(e, "eval: no tokens given (n = %d)", n);
    if (n > s->n_ctx - s->pos)
        return fs_errf(e, "context full: %d tokens in the cache + %d new > n_ctx %d", s->pos, n, s->n_ctx);
    int V = s->f->m->cfg.vocab;
    for (int i = 0; ids && i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return fs_errf(e, "token id %d at index %d is out of range [0, %d)", ids[i], i, V);

    debug_out dbg = {checkpoints, logits_all, n, 0};
    int debug = logits_all || checkpoints, r = 0, pos_start = s->pos;
    s->logits_on_host = 0;
    keep_batch_logits(s->f, &s, 1);
    for (int t0 = 0; t0 < n && r == 0; t0 += s->f->max_batch) {
        int T = n - t0 < s->f->max_batch ? n - t0 : s->f->max_batch;
        dbg.t0 = t0;
        r = forward_chunk(s, ids ? ids + t0 : NULL, T, debug ? &dbg : NULL);   /* NULL: the queued argmax (n = 1) */
    }
    if (n > 1 || debug) s->f->be->sync(s->f->be);   /* a decode step is only queued (forward.h) */
    if (r == FS_EVAL_CANCELLED) fs_errf(e, "cancelled after %d of %d tokens", s->pos - pos_start, n);
    return r;
}

/* Every check of fs_forward_batch (forward.h), before anything runs. */
static int batch_check(fs_forward *f, fs_session *const *s, const int *const *ids, const int *n, int n_seq,
                       fs_err *e) {
    if (n_seq < 1 || n_seq > f->max_seqs)
        return fs_errf(e, "batch: %d sessions; this forward pass takes 1 .. %d (max_seqs)", n_seq, f->max_seqs);
    if (!s || !ids || !n) return fs_errf(e, "batch: no sessions given");
    int V = f->m->cfg.vocab, total = 0;
    for (int i = 0; i < n_seq; i++) {
        if (!s[i] || s[i]->f != f) return fs_errf(e, "batch: session %d is not a session of this forward pass", i);
        for (int j = 0; j < i; j++)
            if (s[j] == s[i]) return fs_errf(e, "batch: sessions %d and %d are the same session", j, i);
        if (n[i] < 1 || !ids[i]) return fs_errf(e, "batch: session %d: no tokens given (n = %d)", i, n[i]);
        if (n[i] > s[i]->n_ctx - s[i]->pos)
            return fs_errf(e, "batch: session %d: context full: %d tokens in the cache + %d new > n_ctx %d", i,
                           s[i]->pos, n[i], s[i]->n_ctx);
        for (int j = 0; j < n[i]; j++)
            if (ids[i][j] < 0 || ids[i][j] >= V)
                return fs_errf(e, "batch: session %d: token id %d at index %d is out of range [0, %d)", i,
                               ids[i][j], j, V);
        if (n[i] > f->max_batch - total)
            return fs_errf(e, "batch: more than %d tokens in one call (fs_forward_max_batch)", f->max_batch);
        total += n[i];
    }
    return 0;
}

/* A session's row of the last batch, into its logits_buf (first use). */
static void own_logits(fs_session *s) {
    if (s->logits_row < 0) return;
    fs_forward *f = s->f;
    f->be->copy(f->be, f->logits, (size_t)s->logits_row * f->m->cfg.vocab, s->logits_buf, 0, (size_t)f->m->cfg.vocab);
    s->logits_row = -1;
}

/* Before a forward call overwrites f->logits: the last batch's sessions
 * that have not read their row yet and are not in this call (whose logits
 * it replaces) get their row copied into their own logits_buf - one copy
 * each, on the device. A server whose streams all decode again copies
 * nothing; their rows were read by fs_forward_batch_argmax. */
static void keep_batch_logits(fs_forward *f, fs_session *const *s, int n_seq) {
    for (int j = 0; j < f->batch_n; j++) {
        fs_session *q = f->batch_last[j];
        if (!q) continue;
        int in_call = 0;
        for (int i = 0; i < n_seq; i++) in_call |= s[i] == q;
        if (in_call) q->logits_row = -1;
        else own_logits(q);
    }
    f->batch_rows = 0;
}

int fs_forward_batch(fs_forward *f, fs_session *const *s, const int *const *ids, const int *n, int n_seq,
                     fs_err *e) {
    if (batch_check(f, s, ids, n, n_seq, e)) return -1;
    /* the step: each session's tokens together, in position order */
    int T = 0;
    for (int i = 0; i < n_seq; i++) {
        for (int j = 0; j < n[i]; j++, T++) {
            f->step_ids[T] = ids[i][j];
            f->step_pos[T] = s[i]->pos + j;
            f->step_seq[T] = i;
        }
        s[i]->logits_on_host = 0;
    }
    f->step = (fs_step){T, f->step_ids, f->step_pos, f->step_seq, n_seq};
    keep_batch_logits(f, s, n_seq);
    forward_step(f, s, n_seq, NULL, 0);
    for (int i = 0; i < n_seq; i++) {
        s[i]->pos += n[i];
        s[i]->logits_row = n_seq > 1 ? i : -1;   /* a batch of one computes into its own logits_buf */
        f->batch_last[i] = s[i];
    }
    f->batch_n = n_seq;
    f->batch_rows = n_seq > 1;   /* a batch of one computes into that session's own logits */
    f->be->sync(f->be);
    return 0;
}

int fs_forward_batch_argmax(fs_forward *f, int *out) {
    if (f->batch_n < 1) return -1;
    fs_backend *be = f->be;
    int V = f->m->cfg.vocab;
    if (!f->batch_rows) {   /* another forward call since, or a batch of one */
        for (int j = 0; j < f->batch_n; j++) out[j] = f->batch_last[j] ? fs_session_argmax(f->batch_last[j]) : -1;
        return 0;
    }
    be->argmax_rows(be, f->logits, f->batch_n, V, out);
    return 0;
}

int fs_session_eval(fs_session *s, const int *ids, int n, fs_err *e) {
    return eval_common(s, ids, n, NULL, NULL, e);
}

int fs_session_eval_debug(fs_session *s, const int *ids, int n, float *logits_all, float *checkpoints, fs_err *e) {
    return eval_common(s, ids, n, logits_all, checkpoints, e);
}

const float *fs_session_logits(fs_session *s) {
    if (!s->logits_on_host) {
        fs_backend *be = s->f->be;
        own_logits(s);
        be->read(be, s->logits_buf, 0, s->logits, (size_t)s->f->m->cfg.vocab);
        s->logits_on_host = 1;
    }
    return s->logits;
}

int fs_session_argmax(fs_session *s) {
    fs_backend *be = s->f->be;
    own_logits(s);
    return be->argmax(be, s->logits_buf, s->f->m->cfg.vocab);
}

void fs_session_sync(fs_session *s) { s->f->be->sync(s->f->be); }

int fs_session_queues(const fs_session *s) { return s->f->be->queues; }

void fs_session_argmax_queue(fs_session *s, int slot) {
    fs_backend *be = s->f->be;
    own_logits(s);
    be->argmax_queue(be, s->logits_buf, s->f->m->cfg.vocab, slot);
}

int fs_session_argmax_take(fs_session *s, int slot) { return s->f->be->argmax_take(s->f->be, slot); }

int fs_session_eval_queued(fs_session *s, fs_err *e) { return eval_common(s, NULL, 1, NULL, NULL, e); }

int fs_session_pos(const fs_session *s) { return s->pos; }
int fs_session_n_ctx(const fs_session *s) { return s->n_ctx; }
size_t fs_session_kv_bytes(const fs_session *s) { return s->kv_bytes; }
fs_forward *fs_session_forward(fs_session *s) { return s->f; }
const fs_model *fs_session_model(const fs_session *s) { return s->f->m; }

/* The cache beyond n is not cleared: attention reads positions < pos only,
 * and the next eval overwrites them. The logits keep the old values until
 * the next eval. */
void fs_session_truncate(fs_session *s, int n) {
    if (n < 0) n = 0;
    if (n < s->pos) s->pos = n;
}
