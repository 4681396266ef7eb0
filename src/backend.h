/* backend.h - the seam between the forward pass and the hardware.
 *
 * The forward pass (forward.c) is written once, against this table of
 * function pointers. A backend owns memory (buffers) and implements each op
 * the Qwen3 layer needs. src/cpu/ holds two CPU backends: the scalar
 * reference ("cpu-ref") and the fast SIMD + threads one ("cpu");
 * a CUDA or Metal backend would be a sibling folder filling the same struct,
 * and forward.c would not change.
 *
 * Buffers. An fs_buf is an opaque handle to memory the backend owns. The
 * forward pass never sees a pointer into it: it only passes handles (plus
 * element offsets) to ops, and moves data across the seam with write/read.
 *   - weights: upload(tensor) makes a buffer from a checkpoint tensor. On the
 *     CPU it is a view into the mmap (nothing copied); a GPU backend copies.
 *     Weights keep their stored dtype (bf16, f16 or f32).
 *   - activations, KV cache, scratch: alloc(n) makes n f32 elements.
 *
 * Shape legend: T tokens, H hidden, Hq/Hkv heads, D head dim, I ffn width,
 * V vocab, L layers. Activations are row-major [T, ...] f32; a linear weight
 * is [out, in] (PyTorch's nn.Linear), so y = x W^T.
 *
 * Ops never allocate and never fail: shapes are checked once, when the
 * session is created (forward.c), not in the hot loop.
 *
 * Docs: docs/forward.md
 */
#ifndef FS_BACKEND_H
#define FS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "util.h"

typedef struct fs_buf fs_buf;         /* defined privately by each backend */
typedef struct fs_backend fs_backend;

#define FS_MATMUL_N_MAX 4   /* matmuls per matmul_n call */

struct fs_backend {
    const char *name;                 /* "cpu", "cpu-ref" */
    void *ctx;                        /* backend-private state */

    /* ---- memory ---- */

    /* n f32 elements, zero-filled. NULL (with e filled) if out of memory. */
    fs_buf *(*alloc)(fs_backend *b, size_t n, fs_err *e);
    /* A weight: the tensor's data in its stored dtype. The tensor's data must
     * outlive the buffer (it is the model's mmap). */
    fs_buf *(*upload)(fs_backend *b, const fs_tensor *t, fs_err *e);
    void (*free_buf)(fs_backend *b, fs_buf *buf);
    /* Host <-> f32 buffer, n elements starting at element off. */
    void (*write)(fs_backend *b, fs_buf *dst, size_t off, const float *src, size_t n);
    void (*read)(fs_backend *b, const fs_buf *src, size_t off, float *dst, size_t n);
    /* Bytes the backend holds for buf (views count 0: they live in the mmap). */
    size_t (*buf_bytes)(const fs_backend *b, const fs_buf *buf);

    /* ---- ops (all activations f32) ---- */

    /* embed: out[t, :] = table[ids[t], :]     table: [V, H] (bf16/f16/f32)
     * out: [T, H]. ids are host memory, already checked to be in [0, V). */
    void (*embed)(fs_backend *b, const fs_buf *table, const int *ids, int T, int H, fs_buf *out);

    /* rmsnorm: y = x / sqrt(mean(x^2) + eps) * w   per row
     * x, y: [rows, n] (y may be x)   w: [n] (any weight dtype).
     * The block norms use rows = T, n = H; Qwen3's per-head q_norm / k_norm
     * are the same op with rows = T*Hq (or T*Hkv), n = D. */
    void (*rmsnorm)(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y,
                    int rows, int n, float eps);

    /* matmul: y[T, N] = x[T, K] W[N, K]^T     W: bf16/f16/f32
     * Prefill is T > 1 (matrix-matrix), decode is T = 1. y must not be x. */
    void (*matmul)(fs_backend *b, const fs_buf *x, const fs_buf *W, fs_buf *y,
                   int T, int K, int N);

    /* matmul_n (optional, NULL = forward.c calls matmul n times): the n
     * (<= FS_MATMUL_N_MAX) matmuls y[i] = x W[i]^T, [T, N[i]], that share
     * the input x - q/k/v, gate/up. The same results as n matmul calls; a
     * backend implements it to run them as one parallel pass (one wait
     * for the slowest thread instead of n, x converted once). */
    void (*matmul_n)(fs_backend *b, const fs_buf *x, int n, const fs_buf *const *W, fs_buf *const *y,
                     int T, int K, const int *N);

    /* rope: rotate each head of x in place, NeoX / HF "rotate_half" layout:
     * for i < D/2, the pair (x[i], x[i + D/2]) is rotated by the angle
     * (pos0 + t) * theta^(-2i/D).     x: [T, heads, D] */
    void (*rope)(fs_backend *b, fs_buf *x, int T, int heads, int D, int pos0, double theta);

    /* copy: dst[dst_off .. +n) = src[src_off .. +n). Used to write K and V
     * rows into the cache (the rows of one chunk are contiguous there) and
     * to pick one row of an activation. */
    void (*copy)(fs_backend *b, const fs_buf *src, size_t src_off, fs_buf *dst, size_t dst_off, size_t n);

    /* attention: grouped-query causal attention against the cache.
     *   q:   [T, Hq, D]   the chunk's queries, token t at position pos0 + t
     *   k_cache, v_cache: n_ctx rows of kv_stride >= Hkv*D floats, filled
     *        for positions 0 .. pos0+T-1; position j's head g starts at
     *        j * kv_stride + g * D (the padding after Hkv*D is never read)
     *   out: [T, Hq, D]
     *   out[t,h] = sum_{j <= pos0+t} softmax_j(q[t,h] . k[j,g] / sqrt(D)) v[j,g]
     *   with g = h / (Hq / Hkv).
     * scratch: at least pos0 + T f32 elements (one row of scores). */
    void (*attention)(fs_backend *b, const fs_buf *q, const fs_buf *k_cache, const fs_buf *v_cache,
                      size_t kv_stride, fs_buf *out, fs_buf *scratch, int T, int pos0, int Hq, int Hkv, int D);

    /* swiglu: out = silu(gate) * up, silu(x) = x / (1 + e^-x)
     * gate, up, out: [n] (out may be gate). */
    void (*swiglu)(fs_backend *b, const fs_buf *gate, const fs_buf *up, fs_buf *out, size_t n);

    /* add: x += y    x, y: [n]   (the residual connection) */
    void (*add)(fs_backend *b, fs_buf *x, const fs_buf *y, size_t n);

    /* Wait until every op issued so far has finished (a no-op on the CPU). */
    void (*sync)(fs_backend *b);
    /* Free the backend itself (buffers must be freed first). */
    void (*destroy)(fs_backend *b);
};

/* The scalar CPU reference backend "cpu-ref" (src/cpu/backend_cpu.c):
 * double accumulation, one thread, the oracle the fast paths are tested
 * against. */
fs_backend *fs_backend_cpu_new(fs_err *e);

/* The fast CPU backend "cpu" (src/cpu/backend_fast.c): SIMD, f32
 * accumulation, n_threads threads (<= 0: one per online CPU). */
fs_backend *fs_backend_fast_new(int n_threads, fs_err *e);

/* A backend by name: "cpu" (or NULL: the fast CPU backend) or "cpu-ref".
 * n_threads is a hint (0 = the backend's default). Unknown names are an
 * error. */
fs_backend *fs_backend_new_opts(const char *name, int n_threads, fs_err *e);
/* The SIMD kernels the fast CPU backend picks on this machine: "avx2",
 * "neon" or "scalar" (FS_ISA=scalar forces the last). */
const char *fs_backend_cpu_isa(void);

/* fs_backend_new_opts(name, 0, e) */
fs_backend *fs_backend_new(const char *name, fs_err *e);

#endif
