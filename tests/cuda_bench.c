/* cuda_bench.c - `test_cuda --bench [bf16 q8_0 q4_0 ...]`: the CUDA
 * backend's speed on a model with Qwen3-0.6B's shapes and random weights.
 *
 * It issues the ops the forward pass issues (one decode step: embed; per
 * layer qkv matmul with the input norm, rope_kv, attention, o_proj added
 * to the residual, gate/up with the norm, down with the SwiGLU input added
 * to the residual; the final norm + lm_head; argmax), so it predicts
 * `fs bench` before forward.c exists:
 *   tg128   128 decode steps, each set_step + replay of the recorded step
 *           + argmax (4 bytes back): tokens/s, at depth 0 and 4096
 *   pp512   one 512-token chunk run directly (tensor-core GEMMs, tiled
 *           attention) + the last token's lm_head: tokens/s
 *   per op  each op recorded 28 times (one per layer, distinct weights, so
 *           nothing is served from L2) and replayed: time per call, and
 *           the bandwidth its weight bytes imply
 * `--bench gemm [dtypes]` runs pp512 and the matmul lines only (the GEMM's
 * A/B runs).
 * Weights are random but well-formed (finite bf16, valid Q8_0/Q4_0
 * scales); the KV cache is f32 and zero at the start.
 *
 * Docs: docs/gpu.md
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cuda.h"
#include "util.h"

enum { H = 1024, HQ = 16, HKV = 8, D = 128, I = 3072, L = 28, V = 151936, PP = 512, N_CTX = 4096 + PP };

typedef struct layer {
    fs_buf *attn_norm, *q_proj, *k_proj, *v_proj, *q_norm, *k_norm, *o_proj, *post_norm, *gate, *up, *down, *cache;
} layer;

typedef struct model {
    layer l[L];
    fs_buf *embed, *norm;              /* lm_head is embed (tied, as Qwen3-0.6B) */
    fs_buf *x, *q, *k, *v, *att, *g, *u, *x_last, *logits;   /* [PP, ...] activations */
    size_t step_bytes;                 /* weight bytes one decode step reads */
    void *host[L * 11 + 2];            /* host copies, kept until the end: a freed */
    int n_host;                        /* address reused would look like the same tensor */
    int n;                             /* for the per-op graphs: which op */
} model;

/* ---- random weights, fast: a pool of well-formed values, copied at
 * random offsets (uploading 1.2 GB of distinct random numbers would cost
 * more host time than the whole measurement) ---- */

static size_t elem_bytes(fs_dtype dt) { return dt == FS_DTYPE_Q8_0 ? 34 : dt == FS_DTYPE_Q4_0 ? 18 : dt == FS_DTYPE_F32 ? 4 : 2; }

static unsigned char *make_pool(fs_dtype dt, size_t n_elems) {
    size_t eb = elem_bytes(dt);
    unsigned char *p = fs_xmalloc(n_elems * eb);
    for (size_t i = 0; i < n_elems; i++) {
        unsigned char *e = p + i * eb;
        if (dt == FS_DTYPE_BF16) {
            uint16_t v = fs_f32_to_bf16(frand() * 0.05f);
            memcpy(e, &v, 2);
        } else if (dt == FS_DTYPE_F16) {
            uint16_t v = fs_f32_to_f16(frand() * 0.05f);
            memcpy(e, &v, 2);
        } else if (dt == FS_DTYPE_F32) {
            float v = frand() * 0.05f;
            memcpy(e, &v, 4);
        } else {
            uint16_t d = fs_f32_to_f16(0.001f + 0.0005f * frand());
            memcpy(e, &d, 2);
            for (size_t j = 2; j < eb; j++) e[j] = (unsigned char)(frand() * 127.0f + 128.0f);
        }
    }
    return p;
}

static fs_buf *random_weight(model *m, fs_dtype dt, int N, int K, const unsigned char *pool, size_t pool_elems) {
    size_t eb = elem_bytes(dt), per_row = fs_dtype_is_quant(dt) ? (size_t)K / 32 : (size_t)K;
    size_t n = (size_t)N * per_row, bytes = n * eb;
    unsigned char *data = fs_xmalloc(bytes);
    for (size_t off = 0; off < n;) {
        size_t start = (size_t)((frand() + 1.0f) * 0.5f * (float)(pool_elems / 2));
        size_t len = pool_elems - start;
        if (len > n - off) len = n - off;
        memcpy(data + off * eb, pool + start * eb, len * eb);
        off += len;
    }
    fs_tensor t = {0};
    t.name = "bench.weight";
    t.dtype = dt;
    t.ndim = N == 1 ? 1 : 2;
    t.shape[0] = N == 1 ? K : N;
    t.shape[1] = K;
    t.data = data;
    t.nbytes = bytes;
    fs_err e = {{0}};
    fs_buf *b = B->upload(B, &t, &e);
    m->host[m->n_host++] = data;
    if (!b) {
        fprintf(stderr, "bench: upload: %s\n", e.msg);
        exit(1);
    }
    return b;
}

static void build(model *m, fs_dtype dt) {
    memset(m, 0, sizeof *m);
    size_t pool_n = 1u << 20;
    unsigned char *pool = make_pool(dt, pool_n), *npool = make_pool(FS_DTYPE_BF16, 1u << 12);
    fs_err e = {{0}};
    m->embed = random_weight(m, dt, V, H, pool, pool_n);
    m->norm = random_weight(m, FS_DTYPE_BF16, 1, H, npool, 1u << 12);
    for (int i = 0; i < L; i++) {
        layer *l = &m->l[i];
        l->attn_norm = random_weight(m, FS_DTYPE_BF16, 1, H, npool, 1u << 12);
        l->post_norm = random_weight(m, FS_DTYPE_BF16, 1, H, npool, 1u << 12);
        l->q_norm = random_weight(m, FS_DTYPE_BF16, 1, D, npool, 1u << 12);
        l->k_norm = random_weight(m, FS_DTYPE_BF16, 1, D, npool, 1u << 12);
        l->q_proj = random_weight(m, dt, HQ * D, H, pool, pool_n);
        l->k_proj = random_weight(m, dt, HKV * D, H, pool, pool_n);
        l->v_proj = random_weight(m, dt, HKV * D, H, pool, pool_n);
        l->o_proj = random_weight(m, dt, H, HQ * D, pool, pool_n);
        l->gate = random_weight(m, dt, I, H, pool, pool_n);
        l->up = random_weight(m, dt, I, H, pool, pool_n);
        l->down = random_weight(m, dt, H, I, pool, pool_n);
        l->cache = B->kv_alloc(B, N_CTX, HKV, D, &e);
        if (!l->cache) {
            fprintf(stderr, "bench: kv_alloc: %s\n", e.msg);
            exit(1);
        }
        fs_buf *w[] = {l->attn_norm, l->post_norm, l->q_norm, l->k_norm, l->q_proj, l->k_proj, l->v_proj, l->o_proj, l->gate, l->up, l->down};
        for (size_t j = 0; j < sizeof w / sizeof w[0]; j++) m->step_bytes += B->buf_bytes(B, w[j]);
    }
    m->step_bytes += B->buf_bytes(B, m->embed) + B->buf_bytes(B, m->norm);   /* lm_head reads all of it */
    m->x = dev_f32(NULL, (size_t)PP * H);
    m->q = dev_f32(NULL, (size_t)PP * HQ * D);
    m->k = dev_f32(NULL, (size_t)PP * HKV * D);
    m->v = dev_f32(NULL, (size_t)PP * HKV * D);
    m->att = dev_f32(NULL, (size_t)PP * HQ * D);
    m->g = dev_f32(NULL, (size_t)PP * I);
    m->u = dev_f32(NULL, (size_t)PP * I);
    m->x_last = dev_f32(NULL, H);
    m->logits = dev_f32(NULL, (size_t)64 * V);   /* 64 rows: the batched lm_head */
    free(pool);
    free(npool);
}

static void destroy(model *m) {
    for (int i = 0; i < m->n_host; i++) free(m->host[i]);
    fs_buf *bufs[] = {m->embed, m->norm, m->x, m->q, m->k, m->v, m->att, m->g, m->u, m->x_last, m->logits};
    for (size_t j = 0; j < sizeof bufs / sizeof bufs[0]; j++) B->free_buf(B, bufs[j]);
    for (int i = 0; i < L; i++) {
        layer *l = &m->l[i];
        fs_buf *w[] = {l->attn_norm, l->post_norm, l->q_norm, l->k_norm, l->q_proj, l->k_proj, l->v_proj, l->o_proj, l->gate, l->up, l->down, l->cache};
        for (size_t j = 0; j < sizeof w / sizeof w[0]; j++) B->free_buf(B, w[j]);
    }
}

/* ---- the ops of the forward pass ---- */

enum { OP_QKV, OP_ROPE, OP_ATT, OP_O, OP_GATE_UP, OP_DOWN, N_OPS };
static const char *op_names[N_OPS] = {"qkv (norm)", "rope_kv", "attention", "o_proj (+=)", "gate/up (norm)", "down (swiglu, +=)"};

static void layer_op(model *m, int li, int op, int T) {
    layer *l = &m->l[li];
    switch (op) {
    case OP_QKV: {
        fs_mm_in in = {m->x, l->attn_norm, 1e-6f, NULL};
        fs_linear out[3] = {{l->q_proj, m->q, HQ * D, 0}, {l->k_proj, m->k, HKV * D, 0}, {l->v_proj, m->v, HKV * D, 0}};
        B->matmul(B, &in, T, H, out, 3);
        break;
    }
    case OP_ROPE: B->rope_kv(B, m->q, m->k, m->v, l->q_norm, l->k_norm, 1e-6f, &l->cache, HQ, HKV, D, NULL); break;
    case OP_ATT: B->attention(B, m->q, &l->cache, m->att, HQ, HKV, D); break;
    case OP_O: {
        fs_mm_in in = {m->att, NULL, 0.0f, NULL};
        fs_linear out = {l->o_proj, m->x, H, 1};
        B->matmul(B, &in, T, HQ * D, &out, 1);
        break;
    }
    case OP_GATE_UP: {
        fs_mm_in in = {m->x, l->post_norm, 1e-6f, NULL};
        fs_linear out[2] = {{l->gate, m->g, I, 0}, {l->up, m->u, I, 0}};
        B->matmul(B, &in, T, H, out, 2);
        break;
    }
    case OP_DOWN: {
        fs_mm_in in = {m->g, NULL, 0.0f, m->u};
        fs_linear out = {l->down, m->x, H, 1};
        B->matmul(B, &in, T, I, &out, 1);
        break;
    }
    }
}

static void lm_head(model *m, fs_buf *x) {
    fs_mm_in in = {x, m->norm, 1e-6f, NULL};
    fs_linear out = {m->embed, m->logits, V, 0};
    B->matmul(B, &in, 1, H, &out, 1);
}

static void decode_step(void *ctx) {
    model *m = ctx;
    B->embed(B, m->embed, H, m->x);
    for (int li = 0; li < L; li++)
        for (int op = 0; op < N_OPS; op++) layer_op(m, li, op, 1);
    lm_head(m, m->x);
}

static void prefill(model *m) {
    B->embed(B, m->embed, H, m->x);
    for (int li = 0; li < L; li++)
        for (int op = 0; op < N_OPS; op++) layer_op(m, li, op, PP);
    B->copy(B, m->x, (size_t)(PP - 1) * H, m->x_last, 0, H);
    lm_head(m, m->x_last);
}

/* m->n: an op kind (N_OPS: lm_head; N_OPS + 1: the smallest kernel, an
 * rmsnorm of 64 floats, 28 times: the floor of a kernel in a graph) */
static void one_op_all_layers(void *ctx) {
    model *m = ctx;
    if (m->n == N_OPS) {
        lm_head(m, m->x);
        return;
    }
    for (int li = 0; li < L; li++) {
        if (m->n == N_OPS + 1) B->rmsnorm(B, m->x_last, m->l[li].q_norm, m->x_last, 1, 64, 1e-6f);
        else layer_op(m, li, m->n, 1);
    }
}

static fs_rec *record(void (*ops)(void *), void *ctx) {
    fs_err e = {{0}};
    fs_rec *r = B->record(B, ops, ctx, &e);
    if (!r) {
        fprintf(stderr, "bench: record: %s\n", e.msg);
        exit(1);
    }
    return r;
}

/* tg128 at a depth: 128 x (set_step, replay, argmax); the best of 3 */
static double tg128(model *m, fs_rec *step, int depth) {
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        int id = 1;
        double t0 = fs_now();
        for (int i = 0; i < 128; i++) {
            set_seq_step(&id, 1, depth + i);
            B->replay(B, step);
            id = B->argmax(B, m->logits, V);
            if (id < 0) id = 0;
        }
        double r = 128.0 / (fs_now() - t0);
        if (r > best) best = r;
    }
    return best;
}

/* Keep the GPU busy for a while first: an idle H200 sits at a low SM
 * clock (345 MHz read by nvidia-smi before run 1) and short bursts measure
 * the ramp, not the chip. */
static void warm_up(fs_rec *step) {
    int id = 1;
    double t0 = fs_now();
    while (fs_now() - t0 < 0.5) {
        set_seq_step(&id, 1, 0);
        for (int i = 0; i < 20; i++) B->replay(B, step);
        B->sync(B);
    }
}

/* seconds per replay of r, n back to back after a warm-up */
static double replay_time(fs_rec *r, int n) {
    B->replay(B, r);
    B->sync(B);
    double t0 = fs_now();
    for (int i = 0; i < n; i++) B->replay(B, r);
    B->sync(B);
    return (fs_now() - t0) / n;
}

static size_t op_bytes(model *m, int op) {
    layer *l = &m->l[0];
    switch (op) {
    case OP_QKV: return B->buf_bytes(B, l->q_proj) + B->buf_bytes(B, l->k_proj) + B->buf_bytes(B, l->v_proj);
    case OP_O: return B->buf_bytes(B, l->o_proj);
    case OP_GATE_UP: return B->buf_bytes(B, l->gate) + B->buf_bytes(B, l->up);
    case OP_DOWN: return B->buf_bytes(B, l->down);
    case N_OPS: return B->buf_bytes(B, m->embed);
    }
    return 0;
}

/* `--bench profile`: the matmuls of one layer of a batched step (T = 64),
 * one decode step and one prefill chunk, nothing else: a short program
 * for a profiler (ncu) to pick kernels from. */
static void profile_once(void) {
    model *m = fs_xcalloc(1, sizeof *m);
    build(m, FS_DTYPE_BF16);
    int id = 1, *ids = fs_xmalloc(PP * sizeof(int));
    for (int i = 0; i < PP; i++) ids[i] = (i * 7919) % V;
    set_seq_step(ids, 64, 0);
    for (int op = 0; op < N_OPS; op++)
        if (op != OP_ROPE && op != OP_ATT) layer_op(m, 0, op, 64);
    B->sync(B);
    set_seq_step(&id, 1, 4096);
    fs_rec *step = record(decode_step, m);
    B->replay(B, step);
    B->sync(B);
    set_seq_step(ids, PP, 0);
    prefill(m);
    B->sync(B);
    B->rec_free(B, step);
    destroy(m);
    free(m);
    free(ids);
}

static int gemm_only;   /* `--bench gemm ...`: prefill and the batched step's matmuls only */

static void bench_dtype(fs_dtype dt, const char *name) {
    model *m = fs_xcalloc(1, sizeof *m);
    double t_build = fs_now();
    build(m, dt);
    B->sync(B);
    printf("\n== %s: %.2f GB of weights read per decode step (built in %.1f s)\n", name, m->step_bytes / 1e9,
           fs_now() - t_build);

    int id = 1;
    if (!gemm_only) {
        set_seq_step(&id, 1, 0);
        fs_rec *step = record(decode_step, m);
        warm_up(step);
        double tg0 = tg128(m, step, 0), tg4k = tg128(m, step, 4096);
        set_seq_step(&id, 1, 0);
        double gpu0 = replay_time(step, 50);
        set_seq_step(&id, 1, 100);   /* a short context: more than one range of keys per head */
        double gpu100 = replay_time(step, 50);
        set_seq_step(&id, 1, 4096);
        double gpu4k = replay_time(step, 50);
        printf("decode tg128 depth 0:    %7.0f tok/s   (step on the GPU alone: %6.1f us = %4.0f GB/s of weights)\n", tg0,
               gpu0 * 1e6, m->step_bytes / gpu0 / 1e9);
        printf("                                (step on the GPU alone at position 100: %6.1f us)\n", gpu100 * 1e6);
        printf("decode tg128 depth 4096: %7.0f tok/s   (step on the GPU alone: %6.1f us)\n", tg4k, gpu4k * 1e6);
        /* where a token's time goes besides the GPU step */
        double t0 = fs_now();
        for (int i = 0; i < 128; i++) {
            set_seq_step(&id, 1, i);
            B->replay(B, step);
            B->sync(B);
        }
        double t_step = (fs_now() - t0) / 128;
        double t_submit = 0.0;
        for (int i = 0; i < 32; i++) {   /* the host's part: submitting the recorded step */
            set_seq_step(&id, 1, i);
            double t1 = fs_now();
            B->replay(B, step);
            t_submit += fs_now() - t1;
            B->sync(B);
        }
        printf("per token: replay() returns after %.1f us (host)\n", t_submit / 32 * 1e6);
        /* the launch latency of a recorded step on an idle GPU: without
         * set_step; two replays per wait; a graph of 28 tiny kernels */
        t0 = fs_now();
        for (int i = 0; i < 64; i++) {
            B->replay(B, step);
            B->sync(B);
        }
        double t_nostep = (fs_now() - t0) / 64;
        t0 = fs_now();
        for (int i = 0; i < 32; i++) {
            B->replay(B, step);
            B->replay(B, step);
            B->sync(B);
        }
        double t_two = (fs_now() - t0) / 32;
        m->n = N_OPS + 1;
        fs_rec *tiny = record(one_op_all_layers, m);
        t0 = fs_now();
        for (int i = 0; i < 64; i++) {
            B->replay(B, tiny);
            B->sync(B);
        }
        double t_tiny = (fs_now() - t0) / 64;
        double t_tiny_gpu = replay_time(tiny, 64);
        B->rec_free(B, tiny);
        printf("per token: replay + sync %.1f us; 2 replays + sync %.1f us; graph of 28 tiny kernels: replay + sync %.1f us, "
               "back to back %.1f us\n", t_nostep * 1e6, t_two * 1e6, t_tiny * 1e6, t_tiny_gpu * 1e6);
        t0 = fs_now();
        for (int i = 0; i < 128; i++) B->argmax(B, m->logits, V);
        double t_argmax = (fs_now() - t0) / 128;
        printf("per token: set_step + replay + sync %.1f us, argmax (kernel + 4 bytes back) %.1f us\n", t_step * 1e6,
               t_argmax * 1e6);
        B->rec_free(B, step);
    }

    int *ids = fs_xmalloc(PP * sizeof(int));
    for (int i = 0; i < PP; i++) ids[i] = (i * 7919) % V;
    double best = 1e9;
    for (int rep = 0; rep < 4; rep++) {
        set_seq_step(ids, PP, 0);
        B->sync(B);
        double t0 = fs_now();
        prefill(m);
        B->argmax(B, m->logits, V);
        double t = fs_now() - t0;
        if (rep > 0 && t < best) best = t;   /* the first run warms up */
    }
    printf("prefill pp512:           %7.0f tok/s   (%.2f ms per 512-token chunk)\n", PP / best, best * 1e3);

    /* prefill parts: each op kind over 28 layers, run directly */
    set_seq_step(ids, PP, 0);
    static const double flops_per_layer[N_OPS] = {
        2.0 * PP * H * (HQ + 2 * HKV) * D, 0, 4.0 * HQ * D * (PP * (PP + 1) / 2.0), 2.0 * PP * HQ * D * H, 4.0 * PP * H * I, 2.0 * PP * I * H};
    printf("prefill per op (28 layers, T=512):");
    for (int op = 0; op < N_OPS; op++) {
        B->sync(B);
        double t0 = fs_now();
        for (int li = 0; li < L; li++) layer_op(m, li, op, PP);
        B->sync(B);
        double t = fs_now() - t0;
        printf(" %s %.2f ms", op_names[op], t * 1e3);
        if (flops_per_layer[op] > 0) printf(" (%.0f TFLOP/s)", flops_per_layer[op] * L / t / 1e12);
        printf(";");
    }
    printf("\n");

    /* the matmuls of a batched decode step (8 or 64 sequences, one token
     * each: gemm_skinny.cu, or the GEMM under FS_CUDA_SKINNY=0), run
     * directly over 28 layers; lm_head over the rows once. Weight bytes per call / time: how close
     * a batched step comes to streaming each weight once. */
    for (int bt = 8; bt <= 64; bt *= 8) {   /* 8 and 64 sequences */
        printf("batched decode matmuls (T=%d, per call):", bt);
        set_seq_step(ids, bt, 0);
        for (int op = 0; op <= N_OPS; op++) {
            if (op == OP_ROPE || op == OP_ATT) continue;
            double best_t = 1e9;
            for (int rep = 0; rep < 3; rep++) {
                B->sync(B);
                double t0 = fs_now();
                if (op == N_OPS) {
                    fs_mm_in in = {m->x, m->norm, 1e-6f, NULL};
                    fs_linear out = {m->embed, m->logits, V, 0};
                    B->matmul(B, &in, bt, H, &out, 1);
                } else {
                    for (int li = 0; li < L; li++) layer_op(m, li, op, bt);
                }
                B->sync(B);
                double t = (fs_now() - t0) / (op == N_OPS ? 1 : L);
                if (t < best_t) best_t = t;
            }
            printf(" %s %.1f us (%.0f GB/s);", op == N_OPS ? "lm_head" : op_names[op], best_t * 1e6,
                   op_bytes(m, op) / best_t / 1e9);
        }
        printf("\n");
    }
    free(ids);

    /* decode parts: each op recorded over the 28 layers, replayed */
    if (!gemm_only) printf("decode per op (T=1, per call, in a graph):\n");
    for (int op = 0; op <= N_OPS + 1 && !gemm_only; op++) {
        m->n = op;
        set_seq_step(&id, 1, 0);
        fs_rec *r = record(one_op_all_layers, m);
        int calls = op == N_OPS ? 1 : L;
        double t = replay_time(r, 50) / calls;
        size_t bytes = op_bytes(m, op);
        printf("  %-20s %7.2f us", op == N_OPS ? "lm_head (norm)" : op == N_OPS + 1 ? "floor (tiny rmsnorm)" : op_names[op], t * 1e6);
        if (bytes) printf("  %6.1f MB  %5.0f GB/s", bytes / 1e6, bytes / t / 1e9);
        if (op == OP_ATT) {
            set_seq_step(&id, 1, 4096);
            printf("   at depth 4096: %.2f us", replay_time(r, 50) / calls * 1e6);
        }
        printf("\n");
        B->rec_free(B, r);
    }
    destroy(m);
    free(m);
}

int bench_cuda(int argc, char **argv) {
    static const char *names[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
    float *inv = fs_xmalloc(D / 2 * sizeof(float));
    for (int i = 0; i < D / 2; i++) inv[i] = 1.0f / (float)pow(1000000.0, (double)((float)(2 * i) / (float)D));
    fs_reserve r = {.max_T = PP, .max_seqs = 1, .max_K = I, .max_N = V, .n_ctx = N_CTX, .Hq = HQ, .Hkv = HKV, .D = D,
                    .rope_inv_freq = inv};
    fs_err e = {{0}};
    if (B->reserve(B, &r, &e)) {
        fprintf(stderr, "bench: reserve: %s\n", e.msg);
        return 1;
    }
    free(inv);
    printf("scratch reserved: %.1f MB\n", B->reserved_bytes(B) / 1e6);
    fs_buf *big = dev_f32(NULL, 256u << 20);
    printf("bandwidth (device copy, read + write): %.0f GB/s\n", B->bandwidth(B, big, 256u << 20) / 1e9);
    B->free_buf(B, big);
    if (argc > 1 && !strcmp(argv[1], "profile")) {
        profile_once();
        B->destroy(B);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "gemm")) gemm_only = 1, argc--, argv++;
    const char *def[] = {"bf16", "q8_0", "q4_0"};
    int n = argc > 1 ? argc - 1 : 3;
    for (int i = 0; i < n; i++) {
        const char *want = argc > 1 ? argv[i + 1] : def[i];
        for (int d = 0; d < 5; d++)
            if (!strcmp(want, names[d])) bench_dtype((fs_dtype)d, names[d]);
    }
    B->destroy(B);
    return 0;
}
