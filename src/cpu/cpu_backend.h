/* fast.h - private to the fast CPU backend ("cpu"): its state and kernels.
 *
 * The fast backend shares buffers (struct fs_buf, cpu.h) and the copy op
 * with the scalar reference ("cpu-ref"), and replaces the rest: matmul
 * (SIMD + threads), attention (threads over heads and query rows, online
 * softmax), rope and swiglu (threads), rmsnorm and add (SIMD), embed
 * (x8-repacked rows).
 *
 * Numerics: the fast ops accumulate in f32, in an order chosen for speed
 * (vector lanes, several accumulators, K split into blocks), so they differ
 * from the double-accumulating reference by f32 rounding: about
 * 1e-7 * sqrt(K) relative to sum |x||w| for a dot product of length K.
 * tests/test_fast_ops.c checks every kernel against the reference with a
 * bound of that form.
 *
 * SIMD. Kernels exist for AVX2+FMA+F16C (x86-64, chosen at run time with
 * cpuid, so the same binary runs on older CPUs), NEON (aarch64, always
 * present there) and portable scalar C. The Makefile adds no -m flags: the
 * AVX2 functions carry __attribute__((target(...))) instead.
 *
 * Docs: docs/forward.md
 */
#ifndef FS_CPU_FAST_H
#define FS_CPU_FAST_H

#include "cpu.h"
#include "quant.h"
#include "threadpool.h"

/* Which kernels this process uses. */
typedef enum { FS_ISA_SCALAR, FS_ISA_AVX2, FS_ISA_NEON } fs_isa;

/* Compilers that know the "avxvnni" target attribute (gcc 11, clang 12). */
#if defined(__clang__)
#define FS_HAVE_VNNI_TARGET (__clang_major__ >= 12)
#elif defined(__GNUC__)
#define FS_HAVE_VNNI_TARGET (__GNUC__ >= 11)
#else
#define FS_HAVE_VNNI_TARGET 0
#endif

/* GEMM register tile and weight-panel geometry (all ISAs share the packed
 * layout): a panel is FS_PANEL_N consecutive weight rows, FS_PANEL_K
 * columns at a time, stored k-major as f32: pack[k * FS_PANEL_N + r]. */
#define FS_PANEL_N 16
#define FS_PANEL_K 256
#define FS_TILE_T 6
/* Below this many tokens the matmul is a GEMV: weights are streamed
 * directly (no packing), the case of decode. */
#define FS_GEMM_MIN_T 4
/* Decode kernels stream their weights and prefetch (non-temporal) this
 * many bytes ahead of the read position (best on the 2-vCPU dev VM). */
#define FS_PREFETCH_AHEAD 16384

typedef struct fs_fast {
    fs_threadpool *pool;
    int nth;
    fs_isa isa;
    int vnni;             /* with AVX2: AVX-VNNI too, the quantized decode uses vpdpbusd */
    float *pack;          /* [nth][FS_PANEL_K * FS_PANEL_N], 64-byte aligned */
    void *qx;             /* quantized activations (Q8_0), grown on first need */
    size_t qx_bytes;
    void *qxs;            /* their per-block f32 scales and sums (quantized GEMM) */
    size_t qxs_bytes;
    void *qpack;          /* [nth][qpack_stride] packed quantized weight panels */
    size_t qpack_stride;
    void *attn;           /* [nth][attn_stride] f32: prefill attention's packed K and scores */
    size_t attn_stride;
    float *rope_cs;       /* rope's cos/sin table for the last (pos0, T, D, theta) */
    size_t rope_bytes;
    int rope_pos0, rope_T, rope_D;
    double rope_theta;
    /* Weights moved into the arenas (repacked to x8, or copied), by source
     * data, so a tied embedding / lm_head uploaded twice shares one copy. */
    struct fs_moved { const void *src; fs_buf *buf; } *moved;
    int n_moved, cap_moved;
    /* Where repacked weights and big activations (the KV cache) live: big
     * anonymous mappings with transparent huge pages, filled front to back
     * (backend_fast.c, arena_alloc). */
    struct fs_arena { char *map, *base; size_t map_len, len, used; int live; } *arenas;
    int n_arenas, cap_arenas;
    /* the reference backend's memory functions, which these wrap */
    fs_buf *(*cpu_alloc)(fs_backend *b, size_t n, fs_err *e);
    fs_buf *(*cpu_upload)(fs_backend *b, const fs_tensor *t, fs_err *e);
    void (*cpu_free_buf)(fs_backend *b, fs_buf *buf);
    size_t (*cpu_buf_bytes)(const fs_backend *b, const fs_buf *buf);
} fs_fast;

static inline fs_fast *fast_ctx(fs_backend *b) { return (fs_fast *)b->ctx; }

/* The best ISA this CPU supports (env FS_ISA=scalar forces the fallback),
 * and whether it has AVX-VNNI on top of AVX2 (FS_ISA=avx2 says no). */
fs_isa fs_fast_detect_isa(void);
int fs_fast_detect_vnni(fs_isa isa);
const char *fs_isa_name(fs_isa isa);

/* Row-range kernels: rows [n0, n1) of y[T, N] = x[T, K] W[N, K]^T.
 * gemv: any T (used for T < FS_GEMM_MIN_T); gemm: packs each panel into
 * pack (one thread's FS_PANEL_K * FS_PANEL_N floats) then runs the tile. */
void fs_gemv_scalar(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1);
void fs_gemm_scalar(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                    float *pack);
void fs_gemv_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1);
void fs_gemm_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  float *pack);
void fs_gemv_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1);
void fs_gemm_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  float *pack);

/* The AVX2 GEMM register tile on its own (attention uses it): for i < nt
 * (<= FS_TILE_T) and r < ncols (<= 16),
 *   y[i * ldy + r] (+)= sum_{k < kc} x[i * ldx + k] * pw[k * ldw + r]
 * (added to y when accum). pw[k * ldw + 0..15] must be readable. */
void fs_tile_avx2(int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
                  int accum, int ncols);

/* Pack rows [n, n + rows) (rows <= FS_PANEL_N; missing rows are zeros),
 * columns [k0, k0 + kc) of W into pack[k * FS_PANEL_N + r] as f32. */
void fs_pack_panel(const void *W, fs_dtype dt, int K, int n, int rows, int k0, int kc, float *pack);

/* Small vector helpers with per-ISA bodies (attention uses them).
 * dot: sum a[i] b[i]; axpy: y[i] += a x[i]; scale: y[i] *= a. */
float fs_vdot(fs_isa isa, const float *a, const float *b, int n);
void fs_vaxpy(fs_isa isa, float *y, float a, const float *x, int n);
void fs_vscale(fs_isa isa, float *y, float a, int n);
/* s[i] = e^(s[i] - m) for i < n; returns the sum of the new s[i]. */
float fs_vexp_sum(fs_isa isa, float *s, float m, int n);
/* s[b] = q . k[b * stride ..], b < nb;   o += sum_b p[b] * v[b * stride ..] */
void fs_vdot_rows(fs_isa isa, const float *q, const float *k, size_t stride, int nb, int n, float *s);
void fs_vmix_rows(fs_isa isa, float *o, const float *p, const float *v, size_t stride, int nb, int n);

/* Rows per chunk when threads split N output rows: per_thread chunks per
 * thread, a multiple of align. */
int fs_fast_chunk_rows(int N, int nth, int align, int per_thread);
/* Decode: chunks of about FS_DECODE_CHUNK_BYTES of weights (matmul_fast.c). */
#define FS_DECODE_CHUNK_BYTES (256u << 10)
int fs_fast_decode_rows(int N, size_t row_bytes, int nth, int align);
/* y = x W^T with Q8_0 / Q4_0 weights (matmul_quant.c), as a parallel loop
 * that matmul_fast.c runs, possibly with other matmuls' chunks in the same
 * loop. First fs_fast_quantize_x(x) (once for every matmul reading x),
 * then fs_fast_quant_job fills j and *fn for one weight and returns the
 * number of chunks: fn(j, c, tid) computes chunk c. */
typedef struct {
    fs_fast *f;
    const fs_block_q8_0 *qx;   /* [T][K / 32] x quantized */
    const fs_q8_0_sum *xs;     /* [T][K / 32] their scales and sums */
    const void *W;
    fs_dtype dt;
    float *y;
    int T, K, N, rows;         /* rows: output rows per chunk */
    int x8;                    /* W is in the x8 layout (repack.c) */
} fs_qjob;
void fs_fast_quantize_x(fs_fast *f, const float *x, int T, int K);
int fs_fast_quant_job(fs_fast *f, fs_qjob *j, const fs_buf *W, float *y, int T, int K, int N, fs_task_fn *fn);

/* Q8_0 / Q4_0 matrices interleaved by 8 rows (repack.c). ok: the tensor
 * can be repacked (quantized, 2-D, N % 8 == 0, K % 32 == 0); super_bytes:
 * the bytes of 8 rows x one block column; repack: write the groups of 8
 * rows [g0, g1) to their place in dst (the whole matrix is nbytes, groups
 * 0 .. N/8); dequant_row: row n as K floats, the same values as
 * fs_dequantize_row_*. */
int fs_x8_ok(const fs_tensor *t);
size_t fs_x8_super_bytes(fs_dtype dt);
void fs_x8_repack(const fs_tensor *t, uint8_t *dst, int64_t g0, int64_t g1);
void fs_x8_dequant_row(const uint8_t *W, fs_dtype dt, int64_t N, int K, int64_t n, float *out);

/* Where superblock (group g, block column b) of an x8 matrix with G =
 * N / 8 groups and nb = K / 32 block columns starts, in superblocks from
 * the start: groups are stored in pairs (2p, 2p + 1), each pair's two
 * superblocks of a block column side by side (repack.c); a last group
 * without a partner (G odd) is stored alone. */
static inline size_t fs_x8_index(int64_t G, int nb, int64_t g, int b) {
    int64_t p = g / 2;
    int in_pair = 2 * p + 1 < G ? 2 : 1;
    return (size_t)(2 * p) * (size_t)nb + (size_t)b * (size_t)in_pair + (size_t)(g & 1);
}

/* The fast ops (fs_backend signatures). */
void fs_fast_matmul(fs_backend *b, const fs_buf *x, const fs_buf *W, fs_buf *y, int T, int K, int N);
void fs_fast_matmul_n(fs_backend *b, const fs_buf *x, int n, const fs_buf *const *W, fs_buf *const *y, int T, int K,
                      const int *N);
void fs_fast_attention(fs_backend *b, const fs_buf *q, const fs_buf *k_cache, const fs_buf *v_cache,
                       size_t kv_stride, fs_buf *out, fs_buf *scratch, int T, int pos0, int Hq, int Hkv, int D);
void fs_fast_rope(fs_backend *b, fs_buf *x, int T, int heads, int D, int pos0, double theta);
void fs_fast_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps);
void fs_fast_swiglu(fs_backend *b, const fs_buf *gate, const fs_buf *up, fs_buf *out, size_t n);
void fs_fast_add(fs_backend *b, fs_buf *x, const fs_buf *y, size_t n);

#endif
