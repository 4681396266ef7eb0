/* ref.h - private to the CPU backends: what a buffer is, the reference
 * backend's state, and its ops.
 *
 * A CPU buffer is plain host memory. Activations are f32 arrays the backend
 * allocated; weights are views into the model's mmap (or the model's
 * converted copy, quant.c) in their dtype (bf16, f16, f32, Q8_0 or Q4_0),
 * converted to f32 as the ops read them; a KV cache is one array (f32, or
 * f16 when reserve asked for it), the keys of every position and then the
 * values. Each op lives in its own
 * file (src/cpu/OP.c) and opens with its math and shapes; backend_ref.c
 * puts them into the fs_backend table.
 *
 * Numerics (the choice every op follows): inputs are f32 (or 16-bit weights
 * widened exactly to f32), every reduction - dot products, sums of squares,
 * softmax sums - is accumulated in double in a fixed left-to-right order, and
 * each result is rounded to f32 once, when stored. The scalar reference is
 * then closer to the exact answer than any f32 implementation, so its
 * distance to PyTorch's f32 is PyTorch's own rounding error, and faster
 * versions (SIMD, threads, GPU) are tested against it with a tolerance.
 * A fused op (backend.h) is the unfused sequence: each intermediate is
 * rounded to f32 where that sequence would store it.
 *
 * The CPU backend ("cpu", cpu_backend.h) builds on this: its buffers begin
 * with a struct fs_buf and its state with an fs_ref, so it can hand any op
 * it has no faster version of to the functions below.
 *
 * Docs: docs/forward.md
 */
#ifndef FS_CPU_REF_H
#define FS_CPU_REF_H

#include "backend.h"

struct fs_buf {
    fs_dtype dtype;   /* F32 for activations; F32 or F16 for KV caches; a weight keeps its own */
    size_t n;         /* elements */
    void *data;
    int cols;         /* weights: K, the row length (0 otherwise) */
    int is_view;      /* 1: the model's memory (upload), not ours to free */
    /* KV caches (kv_alloc): n_ctx positions of kv_stride floats, the keys
     * of all of them and then the values; position p's head g starts at
     * p * kv_stride + g * D. kv_stride >= Hkv * D: a backend may pad. */
    int n_ctx;
    size_t kv_stride;
};

static inline const float *buf_f32(const fs_buf *b) { return (const float *)b->data; }
static inline float *buf_f32_mut(fs_buf *b) { return (float *)b->data; }
static inline float *kv_keys(const fs_buf *cache) { return (float *)cache->data; }
static inline float *kv_values(const fs_buf *cache) {
    return (float *)cache->data + (size_t)cache->n_ctx * cache->kv_stride;
}
/* The same for an f16 cache (dtype F16): elements are IEEE half floats. */
static inline uint16_t *kv_keys16(const fs_buf *cache) { return (uint16_t *)cache->data; }
static inline uint16_t *kv_values16(const fs_buf *cache) {
    return (uint16_t *)cache->data + (size_t)cache->n_ctx * cache->kv_stride;
}
/* Store n floats as element off.. of a cache's keys (values = 0) or values
 * (values = 1), rounded to f16 to nearest even where the cache is f16 (the
 * reference's store; the CPU backend's does the same with F16C). */
void fs_ref_kv_store(fs_buf *cache, int values, size_t off, const float *src, size_t n);
/* Element i of a cache's keys or values as f32 (f16 widened exactly). */
static inline float kv_get(const fs_buf *cache, int values, size_t i) {
    if (cache->dtype == FS_DTYPE_F16)
        return fs_f16_to_f32((values ? kv_values16(cache) : kv_keys16(cache))[i]);
    return (values ? kv_values(cache) : kv_keys(cache))[i];
}

/* Element i of a buffer in any layout the reference reads (not the CPU
 * backend's x8 weights), as f32: tensor.c's getter. */
static inline float buf_get(const fs_buf *b, size_t i) {
    fs_tensor t = {.dtype = b->dtype, .data = b->data};
    return fs_tensor_get_f32(&t, i);
}

/* The reference backend's state, and the first part of the CPU backend's:
 * the step (set_step) and the scratch every CPU op may read, all allocated
 * by reserve. */
typedef struct fs_ref {
    /* the step (backend.h), copied by set_step: each token's id, position
     * and sequence, [max_T] each */
    int *ids, *pos, *seq;
    int argmax_last;      /* the last argmax_queue's answer (a step with no ids takes it) */
    int argmax_slot[2];   /* argmax_queue's answers, for argmax_take */
    int max_T, T, n_seq;
    int one_seq;      /* 1: every token is of sequence seq[0], token t at
                         position pos[0] + t (a prefill chunk, a decode step);
                         0: the step mixes sequences */
    /* RoPE: cos and sin of every position's angles, [n_ctx][D]: for
     * position p, rope[p * D + i] = cos(p * inv_freq[i]) and
     * rope[p * D + D/2 + i] = sin(...), i < D/2 */
    float *rope;
    int rope_ctx, rope_D;
    float *scores;    /* [n_ctx] one row of attention scores */
    float *x_in;      /* [max_T, max_K] a matmul's input after its rmsnorm / SwiGLU */
    float *w_rows;    /* [FS_REF_ROWS, max_K] the reference matmul's weight rows as f32 */
    fs_dtype kv_dtype;  /* what kv_alloc makes: reserve's kv_dtype (F32 before reserve) */
    size_t reserved;  /* bytes of all of the above */
    char describe[512];
} fs_ref;

/* Weight rows the reference matmul computes together (matmul.c). */
#define FS_REF_ROWS 4

/* Both backends' ctx begins with an fs_ref. */
static inline fs_ref *ref_ctx(fs_backend *b) { return (fs_ref *)b->ctx; }

/* The part of reserve both backends share: the step's arrays, the rope table,
 * the scores row and the matmul input (w_rows only if with_w_rows). 0, or
 * -1 with e filled (out of memory, with the size). fs_ref_free releases it. */
int fs_ref_reserve(fs_ref *r, const fs_reserve *rs, int with_w_rows, fs_err *e);
void fs_ref_free(fs_ref *r);
/* n elements of size bytes of scratch, 64-byte aligned (free()), counted
 * in *reserved; NULL with e filled (the size, and what for). */
void *fs_ref_scratch(size_t n, size_t size, size_t *reserved, const char *what, fs_err *e);
/* Set describe's line: this machine's CPU, then what runs on it. */
void fs_ref_set_describe(fs_ref *r, const char *kernels);

/* The ops (backend.h signatures). */
void fs_ref_write(fs_backend *b, fs_buf *dst, size_t off, const float *src, size_t n);
void fs_ref_read(fs_backend *b, const fs_buf *src, size_t off, float *dst, size_t n);
void fs_ref_set_step(fs_backend *b, const fs_step *st);
void fs_ref_embed(fs_backend *b, const fs_buf *table, int H, fs_buf *out);
void fs_ref_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps);
void fs_ref_matmul(fs_backend *b, const fs_mm_in *in, int T, int K, const fs_linear *out, int n);
void fs_ref_rope_kv(fs_backend *b, fs_buf *q, fs_buf *k, fs_buf *v, const fs_buf *q_norm, const fs_buf *k_norm,
                    float eps, fs_buf *const *caches, int Hq, int Hkv, int D, const fs_qkv_bias *bias);
void fs_ref_attention(fs_backend *b, const fs_buf *q, fs_buf *const *caches, fs_buf *out, int Hq, int Hkv, int D);
void fs_ref_copy(fs_backend *b, const fs_buf *src, size_t src_off, fs_buf *dst, size_t dst_off, size_t n);
/* The lowest i < n with v[i] = max v; -1 if any v[i] is NaN or n < 1
 * (argmax.c: the rule every backend's argmax follows, and its loop). */
int fs_ref_argmax_of(const float *v, int n);
int fs_ref_argmax(fs_backend *b, const fs_buf *x, int n);
void fs_ref_argmax_rows(fs_backend *b, const fs_buf *x, int rows, int n, int *out);
void fs_ref_argmax_queue(fs_backend *b, const fs_buf *x, int n, int slot);
int fs_ref_argmax_take(fs_backend *b, int slot);
void fs_ref_sync(fs_backend *b);
const char *fs_ref_describe(fs_backend *b);

/* The steps inside them, for the fused ops and the CPU backend's tails:
 *   rmsnorm_row  y[0..n) = x / sqrt(mean(x^2) + eps) * w     (y may be x)
 *   swiglu       o[i] = silu(g[i]) * u[i], i < n             (o may be g)
 *   rope_pairs   rotate the pairs (x[i], x[i + half]), i0 <= i < half, by
 *                the angles whose cos / sin are c[i] / s[i]
 *   add_bias     x[i] += bias[i], i < n (a bias weight in its dtype) */
void fs_ref_rmsnorm_row(const float *x, const fs_buf *w, float *y, int n, float eps);
void fs_ref_swiglu(const float *g, const float *u, float *o, size_t n);
void fs_ref_rope_pairs(float *x, const float *c, const float *s, int i0, int half);
void fs_ref_add_bias(float *x, const fs_buf *bias, size_t n);

#endif
