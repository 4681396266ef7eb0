/* backend.h - the seam between the forward pass and the hardware.
 *
 * The forward pass (forward.c) is written once, against this table of
 * function pointers. A backend owns memory (buffers) and implements the ops
 * a transformer layer needs; forward.c never touches a float. Backends:
 *   "cpu-ref"  src/cpu/backend_ref.c   scalar C, double accumulation: the oracle
 *   "cpu"      src/cpu/backend_cpu.c   SIMD + threads
 *   "cuda"     src/cuda/backend_cuda.c hand-written kernels, driver API
 * A Metal backend would be one more sibling folder filling the same struct.
 *
 * Buffers. An fs_buf is an opaque handle to memory the backend owns (host
 * memory on the CPU, device memory on a GPU). forward.c only passes handles
 * to ops, and moves data across the seam with write/read.
 *   - weights: upload(tensor) gives the backend a checkpoint tensor in its
 *     stored dtype - F32, F16, BF16, Q8_0 or Q4_0 (model.h, quant.h). The
 *     backend may copy it, move it to a GPU or re-lay it out (the CPU
 *     interleaves quantized rows, repack.c), but keeps the stored values: a
 *     Q4_0 matrix stays 4.5 bits a weight, never a dequantized copy.
 *   - KV cache: kv_alloc gives one layer's keys and values, in whatever
 *     layout the backend chooses (the CPU pads each position, a GPU may
 *     order by head): forward.c writes it only through kv_store-like ops
 *     (rope_kv) and reads it only through attention.
 *   - activations: alloc(n) gives n f32 elements, zero-filled.
 *
 * Memory contract. Everything a backend needs is allocated before the
 * first op: buffers by alloc / upload / kv_alloc, and its own scratch
 * (quantized activations, attention tiles, rope tables, ...) by reserve,
 * which forward.c calls once with the largest shapes any op will see. Ops
 * never allocate and never fail: shapes are checked when the session is
 * created (forward.c), not in the hot loop. Out of memory is an error of
 * alloc / upload / kv_alloc / reserve, with the size that was wanted.
 *
 * The step. Each forward call starts with set_step(fs_step): the T token
 * ids of the call, and for each token its sequence and its position in
 * that sequence. One sequence's prefill is T tokens of sequence 0 at
 * positions pos0 .. pos0 + T - 1; a server's batched decode step is one
 * token of each of n_seq sequences, each at its own position (continuous
 * batching: the matmuls see one [T, K] input, attention and the cache
 * store see each token's own sequence). embed reads the ids, rope_kv and
 * attention the positions and sequences. They are not op arguments
 * because a GPU that replays a recorded decode step (below) must find them
 * in device memory, where set_step put them; every backend reads them from
 * the same place.
 *
 * Fusion. The ops are the layer's steps with their neighbours folded in
 * where that saves a pass over the activations (and, on a GPU, a kernel
 * launch - a decode step of Qwen3-0.6B is ~200 of them):
 *   matmul     reads its input through an rmsnorm or a SwiGLU, and can add
 *              its output to the residual stream
 *   rope_kv    q/k/v biases, QK-norm, RoPE and the store of K and V into
 *              the cache
 * Each fused op is defined as the unfused sequence, with every
 * intermediate rounded to f32 as that sequence would store it; the
 * reference backend implements it that way.
 *
 * Shape legend: T tokens, H hidden, Hq/Hkv heads, D head dim, I ffn width,
 * V vocab, L layers. Activations are row-major [T, ...] f32; a linear
 * weight is [out, in] (PyTorch's nn.Linear), so y = x W^T.
 *
 * Docs: docs/forward.md, docs/gpu.md
 */
#ifndef FS_BACKEND_H
#define FS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"
#include "util.h"

typedef struct fs_buf fs_buf;         /* defined privately by each backend */
typedef struct fs_rec fs_rec;         /* a recorded decode step, backend-private */
typedef struct fs_backend fs_backend;

#define FS_MATMUL_MAX 4   /* linear layers one matmul call can compute */
#define FS_PREFETCH_MAX 4 /* weights one prefetch hint can name */

/* The largest shapes a session will give the ops: reserve() sizes the
 * backend's scratch from them. */
typedef struct fs_reserve {
    int max_T;                  /* rows of one op call (the prefill chunk) */
    int max_seqs;               /* sequences in one step (1 unless batching) */
    int max_K;                  /* longest matmul input row */
    int max_N;                  /* most matmul outputs in one call, summed (lm_head: V) */
    int n_ctx;                  /* positions a KV cache holds, at most: every pos[t] < n_ctx */
    int Hq, Hkv, D;             /* attention heads and head dim */
    const float *rope_inv_freq; /* [D/2] RoPE frequencies (forward.c, HF's f32 arithmetic) */
    fs_dtype kv_dtype;          /* what kv_alloc's caches store: F32 (0, the default) or
                                   F16 (half the bytes; rope_kv rounds K and V to f16 to
                                   nearest even as it stores them). A backend without f16
                                   caches refuses F16 here, with an error saying so. */
} fs_reserve;

/* The tokens of one forward call, and where each belongs.
 * Rules (forward.c keeps them): a sequence's tokens appear in the step in
 * increasing, consecutive positions, and every position of that sequence
 * below its first one in the step is already in its cache. */
typedef struct fs_step {
    int T;             /* tokens, 1 .. reserve's max_T */
    const int *ids;    /* [T] token ids, each checked to be in [0, V); NULL (T = 1
                          only): the answer of the last argmax_queue, which
                          the host need not know yet */
    const int *pos;    /* [T] the token's position in its sequence */
    const int *seq;    /* [T] its sequence: an index into the caches given to
                          rope_kv and attention, 0 .. n_seq - 1 */
    int n_seq;         /* 1 .. reserve's max_seqs */
} fs_step;

/* One linear layer of a matmul call. */
typedef struct fs_linear {
    const fs_buf *W;   /* [N, K] weight, any stored dtype */
    fs_buf *y;         /* [T, N] output, must not alias the input */
    int N;
    int add;           /* 0: y = in W^T;  1: y += in W^T (the residual connection) */
} fs_linear;

/* The biases of the q, k and v projections (Qwen2; arch.h): weights of
 * [Hq*D], [Hkv*D], [Hkv*D], added by rope_kv, the op that first reads
 * q, k and v after their matmul. */
typedef struct fs_qkv_bias {
    const fs_buf *q, *k, *v;
} fs_qkv_bias;

/* A matmul's input, and what is done to each row as it is read. */
typedef struct fs_mm_in {
    const fs_buf *x;     /* [T, K] */
    const fs_buf *norm;  /* NULL, or an rmsnorm weight [K]: the input is
                            x / sqrt(mean(x^2) + eps) * norm, row by row */
    float eps;
    const fs_buf *up;    /* NULL, or [T, K]: the input is silu(x) * up (SwiGLU),
                            silu(x) = x / (1 + e^-x). Not together with norm. */
} fs_mm_in;

struct fs_backend {
    const char *name;                 /* "cpu", "cpu-ref", "cuda" */
    void *ctx;                        /* backend-private state */
    int queues;                       /* 1: ops return before their work is done (a GPU's
                                         stream), so the host can queue ahead; 0: done
                                         when they return (the CPU) */
    fs_dtype kv_default;              /* the KV cache's elements when the user names none
                                         (`--kv auto`): F16 on "cpu" (measured faster at
                                         depth on every CPU tried, half the bytes), F32
                                         elsewhere (the reference stays exact; on the GPU
                                         f16 was not faster; docs/kv-cache.md) */

    /* ---- memory ---- */

    /* n f32 elements, zero-filled. NULL (with e filled) if out of memory. */
    fs_buf *(*alloc)(fs_backend *b, size_t n, fs_err *e);
    /* A weight, in its stored dtype (see the top of this file). The
     * tensor's data must stay valid until the call returns; a backend
     * that keeps a view (cpu-ref) documents that the model must outlive
     * the buffer. Uploading the same data twice (a tied lm_head) may
     * return a shared buffer; free_buf it once per upload. */
    fs_buf *(*upload)(fs_backend *b, const fs_tensor *t, fs_err *e);
    /* One layer's KV cache: keys and values of n_ctx positions of Hkv
     * heads of D elements, in the backend's own layout, in reserve's
     * kv_dtype (F32 when reserve has not been called). */
    fs_buf *(*kv_alloc)(fs_backend *b, int n_ctx, int Hkv, int D, fs_err *e);
    void (*free_buf)(fs_backend *b, fs_buf *buf);
    /* The backend's scratch for ops up to these shapes. Called once,
     * before the first op; 0, or -1 with e filled (out of memory). */
    int (*reserve)(fs_backend *b, const fs_reserve *r, fs_err *e);
    /* Host <-> f32 buffer, n elements starting at element off. read
     * waits for the ops before it. */
    void (*write)(fs_backend *b, fs_buf *dst, size_t off, const float *src, size_t n);
    void (*read)(fs_backend *b, const fs_buf *src, size_t off, float *dst, size_t n);
    /* Bytes the backend holds for buf (a view into the model's mmap: 0). */
    size_t (*buf_bytes)(const fs_backend *b, const fs_buf *buf);

    /* ---- the step ---- */

    /* The tokens the next ops compute (host memory; copied, the caller
     * may reuse the arrays). */
    void (*set_step)(fs_backend *b, const fs_step *st);

    /* ---- ops (activations f32) ---- */

    /* embed: out[t, :] = table[ids[t], :]   table: [V, H]   out: [T, H]
     * (ids and T from the step) */
    void (*embed)(fs_backend *b, const fs_buf *table, int H, fs_buf *out);

    /* rmsnorm: y = x / sqrt(mean(x^2) + eps) * w   per row
     * x, y: [rows, n] (y may be x)   w: [n] */
    void (*rmsnorm)(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps);

    /* matmul: for each i < n (<= FS_MATMUL_MAX), out[i].y (+)= in W_i^T
     *   in: [T, K] as fs_mm_in describes (plain, rmsnorm'd or SwiGLU'd)
     * The linear layers of one call share the input (q/k/v; gate/up), so
     * a backend transforms and converts it once and runs them as one
     * parallel pass. Prefill is T > 1 (matrix-matrix), decode T = 1. */
    void (*matmul)(fs_backend *b, const fs_mm_in *in, int T, int K, const fs_linear *out, int n);

    /* rope_kv: the attention inputs of the step's T tokens, made ready.
     *   q: [T, Hq, D], k, v: [T, Hkv, D]   q_norm, k_norm: [D] or NULL
     *   bias: NULL, or q_proj / k_proj / v_proj's biases (Qwen2)
     *   q = rope(rmsnorm(q + q_bias, q_norm)), k = rope(rmsnorm(k + k_bias,
     *   k_norm)), per head, in place (Qwen3's QK-norm; skipped where the
     *   weight is NULL; each bias add one f32 add, as nn.Linear's); then
     *   position pos[t] of caches[seq[t]] (this layer's cache of token t's
     *   sequence) holds k[t] and v[t]. With a bias, v += v_bias in place
     *   too, before the store.
     * rope, NeoX / HF "rotate_half" layout: for i < D/2 the pair
     * (x[i], x[i + D/2]) turns by the angle p * inv_freq[i] (reserve's
     * table), p = pos[t], with cos and sin of that f32 angle computed in
     * double and rounded once. */
    void (*rope_kv)(fs_backend *b, fs_buf *q, fs_buf *k, fs_buf *v, const fs_buf *q_norm,
                    const fs_buf *k_norm, float eps, fs_buf *const *caches, int Hq, int Hkv, int D,
                    const fs_qkv_bias *bias);

    /* attention: grouped-query causal attention of the step's T queries,
     * each against its own sequence's cache (rope_kv has stored the step's
     * keys and values: positions 0 .. pos[t] of caches[seq[t]] are filled).
     *   q, out: [T, Hq, D]; query head h reads kv head g = h / (Hq / Hkv)
     *   out[t,h] = sum_{j <= pos[t]} softmax_j(q[t,h] . k[j,g] / sqrt(D)) v[j,g]
     *   with k, v those of caches[seq[t]] */
    void (*attention)(fs_backend *b, const fs_buf *q, fs_buf *const *caches, fs_buf *out, int Hq, int Hkv,
                      int D);

    /* copy: dst[dst_off .. +n) = src[src_off .. +n)  (f32; picks a row) */
    void (*copy)(fs_backend *b, const fs_buf *src, size_t src_off, fs_buf *dst, size_t dst_off, size_t n);

    /* argmax: the index of the largest of x[0 .. n), the lowest on ties;
     * -1 if any element is NaN. Waits for the ops before it (greedy
     * decoding reads 4 bytes instead of V logits). */
    int (*argmax)(fs_backend *b, const fs_buf *x, int n);
    /* argmax_rows: argmax of each of `rows` rows of x (row r is
     * x[r*n .. r*n + n)) into out[r], rows <= reserve's max_seqs, as
     * argmax does one. Waits. A batched step's sessions in one pass and
     * one wait, not `rows` of each. */
    void (*argmax_rows)(fs_backend *b, const fs_buf *x, int rows, int n, int *out);
    /* Greedy decoding without a wait per token. argmax_queue: argmax of
     * x[0 .. n) as argmax computes it, but only queued: the answer is kept
     * where the next set_step with ids == NULL takes it as its token (a
     * NaN's -1 becomes token 0 there: the host, told -1, stops), and in
     * slot `slot` (0 or 1) for argmax_take, which waits for it and returns
     * it. So the host can queue step i + 1 before it has read token i. */
    void (*argmax_queue)(fs_backend *b, const fs_buf *x, int n, int slot);
    int (*argmax_take)(fs_backend *b, int slot);

    /* Wait until every op issued so far has finished (a no-op on the CPU). */
    void (*sync)(fs_backend *b);

    /* prefetch (optional: NULL where it would do nothing, as on the CPU,
     * whose decode kernels prefetch inside their own loops): a hint that
     * the weights w[0 .. n) (n <= FS_PREFETCH_MAX) are read by the ops
     * that come soon in this step. It computes nothing and changes no
     * result. CUDA (when FS_CUDA_PREFETCH=1; off by default, it did not pay
     * on the H200): the next one-token matmul asks the GPU's L2 cache to
     * load them while it runs, so the weights of the next ops stream from
     * memory without waiting for the ops before them (docs/gpu.md). */
    void (*prefetch)(fs_backend *b, const fs_buf *const *w, int n);

    /* ---- recorded decode steps (optional: NULL where launching an op
     * costs nothing next to running it, as on the CPU) ----
     * A one-token step of one sequence issues the same ops on the same
     * buffers every time; only the step's id and position change, and
     * those are read from where set_step put them. record runs ops(ctx) without
     * executing anything and returns what they issued (a CUDA graph);
     * replay executes a record with the current step. NULL + e when the
     * ops could not be recorded: the caller runs them directly instead. */
    fs_rec *(*record)(fs_backend *b, void (*ops)(void *ctx), void *ctx, fs_err *e);
    void (*replay)(fs_backend *b, fs_rec *r);
    void (*rec_free)(fs_backend *b, fs_rec *r);

    /* ---- what it is, for fs bench and -v ---- */

    /* One line naming the hardware and the kernels ("AMD EPYC ... ;
     * avx2+avx-vnni", "NVIDIA H200, 139.8 GiB, sm_90"). */
    const char *(*describe)(fs_backend *b);
    /* Bytes of the scratch reserve() took. */
    size_t (*reserved_bytes)(const fs_backend *b);
    /* Memory bandwidth in bytes/s, measured now over buf (n f32 elements
     * from alloc, at least 64 MiB) with the backend's own means (the CPU:
     * every thread reads its share; a GPU: the first half copied to the
     * second, bytes read + written); <= 0 if it cannot measure. */
    double (*bandwidth)(fs_backend *b, fs_buf *buf, size_t n);

    /* Free the backend itself (buffers and records must be freed first). */
    void (*destroy)(fs_backend *b);
};

/* ---- choosing a backend (backend.c) ---- */

typedef struct fs_backend_opts {
    const char *name;    /* "auto" or NULL, "cuda", "cpu", "cpu-ref" */
    int n_threads;       /* CPU threads; 0 = the backend's default */
    size_t need_bytes;   /* for "auto": device memory the model needs (weights,
                            KV cache, scratch); a GPU with less free is passed over */
} fs_backend_opts;

/* A backend by name. "auto" takes the GPU when one is usable and has
 * need_bytes free, else "cpu"; naming "cuda" where there is none is an
 * error that says why. Unknown names are an error listing the known. */
fs_backend *fs_backend_open(const fs_backend_opts *o, fs_err *e);

/* The names fs_backend_open knows, for messages: "auto, cuda, cpu, cpu-ref". */
const char *fs_backend_names(void);

#endif
