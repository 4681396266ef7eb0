/* cpu_backend.h - private to the CPU backend ("cpu"): its state, its
 * buffers and its kernels.
 *
 * The CPU backend is the reference ("cpu-ref", ref.h) with the hot ops
 * replaced: matmul (SIMD + threads, the input's rmsnorm / SwiGLU and the
 * residual add folded in), attention (threads over heads and query rows,
 * online softmax), rope_kv (threads over tokens), rmsnorm (SIMD), embed
 * (x8-repacked rows). It shares the reference's step and scratch (its
 * state begins with an fs_ref) and its buffers begin with a struct fs_buf,
 * so an op it has no faster version of is the reference's own function.
 *
 * Numerics: the CPU ops accumulate in f32, in an order chosen for speed
 * (vector lanes, several accumulators, K split into blocks), so they differ
 * from the double-accumulating reference by f32 rounding: about
 * 1e-7 * sqrt(K) relative to sum |x||w| for a dot product of length K.
 * Quantized weights also quantize the activations to Q8_0 (matmul_quant.c).
 * tests/test_cpu_kernels.c checks every kernel against the reference with
 * a bound of that form, tests/test_backend.c every op.
 *
 * SIMD. Kernels exist for AVX2+FMA+F16C (x86-64, chosen at run time with
 * cpuid, so the same binary runs on older CPUs), NEON (aarch64, always
 * present there) and portable scalar C. On top of AVX2 the matmuls have
 * kernel sets of their own where the CPU has the instructions: AVX-VNNI
 * (256-bit vpdpbusd), AVX-512 with VNNI (and BF16's vdpbf16ps) for decode,
 * AMX tiles for prefill (matmul_avx512.c, matmul_amx.c). On top of NEON the
 * quantized matmuls use the dot product extension (sdot) and the int8
 * matrix multiply (i8mm's smmla) where the CPU has them (HWCAP,
 * matmul_quant_neon.c). FS_ISA in the environment caps the choice: scalar,
 * avx2, avx-vnni, avx512 or amx on x86; scalar, neon, dotprod or i8mm on
 * aarch64 (the default: everything the CPU has). The Makefile adds no -m
 * flags: the functions carry __attribute__((target(...))) instead.
 *
 * Tuning. Where the best choice differs between CPUs - which decode kernel,
 * which prefetch hint, how far ahead - it is measured, not written down:
 * the first time a model's weights run on a machine, reserve() times the
 * candidates on them and keeps the fastest, cached per CPU (tune_cpu.c).
 *
 * Docs: docs/forward.md
 */
#ifndef FS_CPU_BACKEND_H
#define FS_CPU_BACKEND_H

#include "quant.h"
#include "ref.h"
#include "threadpool.h"

/* Which kernels this backend runs. */
typedef enum { FS_ISA_SCALAR, FS_ISA_AVX2, FS_ISA_NEON } fs_isa;

/* The kernel set: the base ISA every op uses, and the x86 extensions the
 * matmuls use on top of AVX2. Each is a set of kernels of its own, and
 * each can be switched off (FS_ISA, tests) to run the ones below it. */
typedef struct fs_cpu_kernels {
    fs_isa isa;
    int vnni;     /* AVX-VNNI: 256-bit vpdpbusd (quantized decode) */
    int avx512;   /* AVX-512 F/BW/DQ/VL with AVX512_VNNI: the 512-bit decode kernels */
    int bf16;     /* AVX512_BF16 as well: vdpbf16ps (a bf16 decode kernel) */
    int amx;      /* AMX tiles (int8 and bf16), granted by the OS: the prefill GEMMs */
    int dotprod;  /* aarch64 dot product (sdot): quantized decode and prefill */
    int i8mm;     /* aarch64 int8 matrix multiply (smmla): the quantized prefill GEMM */
} fs_cpu_kernels;

/* Compilers that know the "avxvnni" target attribute (gcc 11, clang 12),
 * and "avx512bf16" (gcc 10, clang 9). AMX needs no compiler support: its
 * few instructions are written as inline assembly (matmul_amx.c says why). */
#if defined(__clang__)
#define FS_HAVE_VNNI_TARGET (__clang_major__ >= 12)
#define FS_HAVE_AVX512_TARGET (__clang_major__ >= 9)
#elif defined(__GNUC__)
#define FS_HAVE_VNNI_TARGET (__GNUC__ >= 11)
#define FS_HAVE_AVX512_TARGET (__GNUC__ >= 10)
#else
#define FS_HAVE_VNNI_TARGET 0
#define FS_HAVE_AVX512_TARGET 0
#endif

/* The same for aarch64's dot product and int8 matrix extensions: gcc 10+
 * and clang 16+ compile a function for them with a target attribute (the
 * NEON intrinsics then exist in it); an older clang only when the whole
 * build targets them (-march=...+dotprod+i8mm, or Apple's default CPU for
 * dotprod). Where neither holds, the kernels are not built and detect
 * never reports the extension. */
#if defined(__aarch64__)
#if defined(__ARM_FEATURE_DOTPROD)
#define FS_DOTPROD_FN
#define FS_HAVE_DOTPROD_TARGET 1
#elif defined(__clang__) && __clang_major__ >= 16
#define FS_DOTPROD_FN __attribute__((target("dotprod")))
#define FS_HAVE_DOTPROD_TARGET 1
#elif !defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 10
#define FS_DOTPROD_FN __attribute__((target("arch=armv8.2-a+dotprod")))
#define FS_HAVE_DOTPROD_TARGET 1
#else
#define FS_HAVE_DOTPROD_TARGET 0
#endif
#if defined(__ARM_FEATURE_MATMUL_INT8) && defined(__ARM_FEATURE_DOTPROD)
#define FS_I8MM_FN
#define FS_HAVE_I8MM_TARGET 1
#elif defined(__clang__) && __clang_major__ >= 16
#define FS_I8MM_FN __attribute__((target("dotprod,i8mm")))
#define FS_HAVE_I8MM_TARGET 1
#elif !defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 10
#define FS_I8MM_FN __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#define FS_HAVE_I8MM_TARGET 1
#else
#define FS_HAVE_I8MM_TARGET 0
#endif
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
/* Decode kernels stream their weights and prefetch some bytes ahead of
 * the read position; which hint and how far is the decode plan below. */
/* Padding after each cached position, in floats. For Qwen3-0.6B a position
 * is Hkv * D = 1024 floats, 4 KiB: attention then reads one head's keys
 * 4 KiB apart, addresses that all fall into the same few L1 cache sets,
 * so the rows of a block evict each other. 64 bytes more per position
 * spread them over the sets (1.6% more cache memory; measured,
 * docs/bench.md). */
#define FS_KV_PAD 16
/* Pass shapes whose decode chunk rows are remembered (fs_cpu.pass_shapes). */
#define FS_PASS_SHAPES 8

/* ---- decode plans (tune_cpu.c) ----
 * A decode step streams every weight once, so its speed is how well the
 * kernel keeps the memory system busy, and that depends on the CPU: the
 * same prefetch hint measured +12% on one chip and 2.5x slower on another
 * (docs/bench.md). A plan says, for one weight dtype, which decode kernel
 * runs, which software prefetch it issues and how many bytes ahead, and
 * whether a second prefetch, further ahead, asks for the lines into L2
 * only (`far`: prefetcht1 on x86, pldl2keep on aarch64): the near one
 * then finds them half-way there, and the two together keep more lines
 * in flight than either alone (docs/cpu.md, "Two prefetches"). */
typedef enum { FS_PF_NONE, FS_PF_T0, FS_PF_NTA } fs_prefetch;
typedef enum {
    FS_DK_AVX2,         /* 256-bit: maddubs (quantized), FMA on widened 16-bit (float) */
    FS_DK_VNNI,         /* 256-bit vpdpbusd (quantized) */
    FS_DK_AVX512,       /* 512-bit: vpdpbusd (quantized), FMA on widened 16-bit (float) */
    FS_DK_AVX512_BF16,  /* 512-bit vdpbf16ps on the input split into bf16 parts (bf16) */
    FS_DK_NEON,         /* aarch64 without sdot: smull + pairwise adds (quantized) */
    FS_DK_DOTPROD,      /* aarch64 sdot, one instruction per 4 rows x 4 bytes (quantized) */
    FS_DK_COUNT
} fs_decode_kernel;
typedef struct fs_cpu_plan {
    int kernel;     /* fs_decode_kernel */
    int prefetch;   /* fs_prefetch */
    int ahead;      /* bytes ahead of the read position */
    int how;        /* FS_PLAN_DEFAULT, _CALIBRATED (now), _CACHED or _FORCED (FS_DECODE_PLAN) */
    int matrices;   /* how many of the backend's weights have this dtype (describe) */
    int far;        /* bytes ahead of the second prefetch, into L2 (0: none) */
    int tiles;      /* the fewest tokens a matmul takes to the AMX tiles (0: not measured,
                     * fs_amx_default_t; tune_cpu.c's fourth stage measures it) */
} fs_cpu_plan;
enum { FS_PLAN_DEFAULT, FS_PLAN_CALIBRATED, FS_PLAN_CACHED, FS_PLAN_FORCED };
#define FS_CPU_NDTYPE 5   /* F32, F16, BF16, Q8_0, Q4_0 */

/* A CPU backend buffer: the reference's, and where its memory is. Every
 * buffer this backend hands out is one of these. */
typedef struct fs_cpu_buf {
    fs_buf base;      /* what the reference ops read */
    int x8;           /* Q8_0/Q4_0 rows interleaved by 8 (repack.c) */
    int refs;         /* uploads sharing this buffer (a tied embedding and lm_head: 2) */
    int arena;        /* data lives in arena arena - 1 (0: the heap, or a view) */
} fs_cpu_buf;

static inline const fs_cpu_buf *cpu_buf(const fs_buf *b) { return (const fs_cpu_buf *)b; }

typedef struct fs_cpu {
    fs_ref ref;           /* the step and the shared scratch (ref.h): first */
    fs_threadpool *pool;
    int nth;
    /* The kernel set (fs_cpu_kernels, flattened: the ops read f->isa). */
    fs_isa isa;
    int vnni, avx512, bf16, amx, dotprod, i8mm;
    /* How each weight dtype's decode runs (indexed by fs_dtype): the
     * calibrated or default plan (tune_cpu.c). */
    fs_cpu_plan plan[FS_CPU_NDTYPE];
    double tune_s;        /* seconds reserve spent calibrating (0: cached or defaults) */
    /* Scratch, allocated by reserve (backend_cpu.c); 64-byte aligned. */
    float *pack;          /* [nth][2 * FS_PANEL_K * FS_PANEL_N] the f32 GEMM's weight panels (two with AVX-512) */
    fs_block_q8_0 *qx;    /* [max_T][max_K / 32] a matmul's input quantized to Q8_0 */
    fs_q8_0_sum *qxs;     /* [max_T][max_K / 32] their scales and sums */
    uint8_t *qpack;       /* [nth][qpack_stride] the quantized GEMM's weight panels */
    size_t qpack_stride;
    uint16_t *xs;         /* [3][max_T rounded up to 16][max_K rounded up to 32] the
                             input split into three bf16 parts, x = hi + mid + lo
                             (fs_cpu_split_input: AMX and vdpbf16ps; NULL without) */
    int xs_T, xs_K;       /* the rounded sizes, the strides of xs */
    int8_t *qxe;          /* [FS_GEMM_MIN_T][max_K / 32][512] the Q8_0 input's quads laid
                             out for the AVX-512 decode kernels (NULL without) */
    uint8_t *tpack;       /* [nth][tpack_stride] the AMX GEMMs' packed weight tiles */
    size_t tpack_stride;
    float *attn;          /* [nth][attn_stride] prefill attention's packed K and scores
                             (and, with an f16 cache, V widened to f32) */
    size_t attn_stride;
    int amx_attn;         /* prefill attention's products on AMX tiles (attention_amx.c): reserve
                             made room for its packs (n_ctx small enough, D a multiple of 32) */
    int no_amx_attn;      /* FS_AMX_ATTN=0: never (A/B runs) */
    int attn_all_heads;   /* decode attention at long contexts: every kv head of a token in one
                             chunk (1, the default; FS_ATTN_ALL_HEADS=0: one kv head a chunk) */
    int attn_ahead;       /* decode attention's L2 prefetch, bytes ahead of its reads
                             (FS_ATTN_AHEAD; 0: none) */
    float *attn_part;     /* [FS_ATTN_MAX_PARTS(nth) * FS_ATTN_MAX_GROUP][D + 2] split decode attention's
                             partial outputs, maxima and sums (attention_cpu.c) */
    int decode_rows;      /* rows of a decode chunk in the current pass (fs_cpu_pass_rows), set
                             before its jobs are built (matmul_cpu.c; tune_cpu.c) */
    struct fs_pass_shape { int n, N[FS_MATMUL_MAX], rows; size_t row_bytes; } pass_shapes[FS_PASS_SHAPES];
    int n_pass_shapes;    /* the passes' decode rows, remembered by shape (matmul_cpu.c) */
    float *y_add;         /* [y_add_n] outputs computed before they are added (fs_linear.add) */
    size_t y_add_n;
    size_t reserved;      /* bytes of the above (the fs_ref part counts its own) */
    uint64_t *bw_sums;    /* [nth * 8] the bandwidth probe's per-thread sums */
    /* Weights moved into the arenas (repacked to x8, or copied), by source
     * data, so a tied embedding / lm_head uploaded twice shares one copy. */
    struct fs_moved { const void *src; fs_cpu_buf *buf; } *moved;
    int n_moved, cap_moved;
    /* Where repacked weights and big activations (the KV cache) live: big
     * anonymous mappings with transparent huge pages, filled front to back
     * (backend_cpu.c, arena_alloc). */
    struct fs_arena { char *map, *base; size_t map_len, len, used; int live; } *arenas;
    int n_arenas, cap_arenas;
} fs_cpu;

static inline fs_cpu *cpu_ctx(fs_backend *b) { return (fs_cpu *)b->ctx; }

/* The kernels this CPU can run, capped by the environment's FS_ISA
 * (scalar, avx2, avx-vnni, avx512, amx; aarch64: scalar, neon, dotprod,
 * i8mm); AMX is only reported when the OS granted the process its tile
 * state, dotprod and i8mm when the OS reports them (HWCAP; backend_cpu.c). */
fs_cpu_kernels fs_cpu_detect(void);
/* Its name for describe ("avx2+avx-vnni+avx512+bf16+amx",
 * "neon+dotprod+i8mm"), into buf. */
const char *fs_cpu_kernels_name(fs_cpu_kernels k, char *buf, size_t n);
static inline fs_cpu_kernels fs_cpu_get_kernels(const fs_cpu *f) {
    return (fs_cpu_kernels){f->isa, f->vnni, f->avx512, f->bf16, f->amx, f->dotprod, f->i8mm};
}
static inline void fs_cpu_set_kernels(fs_cpu *f, fs_cpu_kernels k) {
    f->isa = k.isa, f->vnni = k.vnni, f->avx512 = k.avx512, f->bf16 = k.bf16, f->amx = k.amx;
    f->dotprod = k.dotprod, f->i8mm = k.i8mm;
}

/* ---- the ops (backend.h signatures) ---- */

void fs_cpu_matmul(fs_backend *b, const fs_mm_in *in, int T, int K, const fs_linear *out, int n);
void fs_cpu_rope_kv(fs_backend *b, fs_buf *q, fs_buf *k, fs_buf *v, const fs_buf *q_norm, const fs_buf *k_norm,
                    float eps, fs_buf *const *caches, int Hq, int Hkv, int D, const fs_qkv_bias *bias);
void fs_cpu_attention(fs_backend *b, const fs_buf *q, fs_buf *const *caches, fs_buf *out, int Hq, int Hkv, int D);
void fs_cpu_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps);
double fs_cpu_bandwidth(fs_backend *b, fs_buf *buf, size_t n);

/* ---- the steps inside them ---- */

/* rmsnorm of rows rows of n floats (rmsnorm_cpu.c): y = x / sqrt(mean(x^2)
 * + eps) * w, the reference's operations with SIMD where w is bf16 or f32. */
void fs_cpu_rmsnorm_rows(fs_isa isa, const float *x, const fs_buf *w, float *y, int rows, int n, float eps);
/* o[i] = silu(g[i]) * u[i], i < n, f32, threaded (swiglu_cpu.c). o may be g. */
void fs_cpu_swiglu(fs_cpu *f, const float *g, const float *u, float *o, size_t n);
/* x[i] += y[i], i < n: the same f32 additions as the reference, SIMD (add_cpu.c). */
void fs_cpu_add(fs_isa isa, float *x, const float *y, size_t n);

/* ---- matmul: one pass of jobs (matmul_cpu.c runs them) ---- */

/* One linear layer's part of a matmul pass, as chunks of a parallel loop:
 * fn(arg, c, tid) computes rows [c * rows, min(N, (c + 1) * rows)) of y,
 * all T tokens. */
typedef struct fs_cpu_job {
    fs_task_fn fn;
    void *arg;
    int rows, chunks;
} fs_cpu_job;

/* f32 / f16 / bf16 weights (matmul_float.c). */
typedef struct fs_float_job {
    fs_cpu *f;
    const float *x;
    const void *W;
    fs_dtype dt;
    float *y;
    int T, K, N, rows;
    int gemm;                  /* T >= FS_GEMM_MIN_T: packed panels and the register tile */
    int amx;                   /* bf16 on AMX tiles (matmul_amx.c) */
} fs_float_job;
void fs_cpu_float_job(fs_cpu *f, fs_float_job *j, const fs_buf *W, const float *x, float *y, int T, int K, int N,
                      fs_cpu_job *job);

/* Q8_0 / Q4_0 weights (matmul_quant.c): first fs_cpu_quantize_input(x)
 * (once for every quantized matmul reading x, into f->qx / f->qxs), then
 * a job per weight. */
typedef struct fs_quant_job {
    fs_cpu *f;
    const void *W;
    fs_dtype dt;
    float *y;
    int T, K, N, rows;
    int x8;                    /* W is in the x8 layout (repack.c) */
} fs_quant_job;
/* dts: the quantized dtypes of the weights that read x, bit (1u << dtype)
 * each (their decode kernels decide what is prepared). */
void fs_cpu_quantize_input(fs_cpu *f, const float *x, int T, int K, unsigned dts);
/* Bytes of one thread's packed panel for the quantized GEMM (reserve
 * allocates nth of them when the AVX2 kernels run prefills). */
size_t fs_cpu_qpack_bytes(int K);
void fs_cpu_quant_job(fs_cpu *f, fs_quant_job *j, const fs_buf *W, float *y, int T, int K, int N, fs_cpu_job *job);

/* Rows per chunk when threads split N output rows: per_thread chunks per
 * thread (so a descheduled thread's share is picked up by the others, see
 * threadpool.h), a multiple of align (the kernel's row block). */
static inline int fs_cpu_chunk_rows(int N, int nth, int align, int per_thread) {
    int r = N / (nth * per_thread);
    if (r < align) r = align;
    return (r + align - 1) / align * align;
}

/* Decode chunks. Each thread streams its contiguous share of a pass's
 * chunks chunk after chunk (threadpool.h), and the pass ends when the last
 * thread is done, so the shares must hold the same bytes: the pool splits
 * chunks by count, so the chunks of a pass - all its weights' - are cut
 * with one row count R, chosen so that the shares come out even (q, k and
 * v of Qwen3-0.6B in Q4_0, 2048 + 1024 + 1024 rows of 576 bytes: R = 352,
 * 6 + 3 + 3 chunks of 198 KB, 2048 rows a thread). Cut per weight instead
 * (about 256 KiB each, at least two a thread: 5 + 4 + 4), one thread's
 * share was a chunk longer than the other's, and the other waited for it
 * at the end of every pass: with 2 threads 5-20% of a layer's matmul time
 * (measured, docs/cpu.md). A later rounding that gave each weight its own
 * count (5 + 2 + 2 chunks of 416 / 512 / 512 rows: 4 / 5 a thread) was
 * found with `fs bench --profile`; evening it out measured no faster on
 * CPU A (docs/bench.md), but the shares now are what this says.
 * The size: at least two chunks a thread (a descheduled thread's second
 * half can be stolen), at most about FS_DECODE_CHUNK_BYTES (the steal's
 * granularity when one thread falls behind); smaller chunks cost a few
 * percent (the calls, the restarts). */
#define FS_DECODE_CHUNK_BYTES (256u << 10)
/* Rows per decode chunk for a pass of n weights of N[i] rows of row_bytes
 * each, nth threads: a multiple of FS_DECODE_ALIGN (whole pairs of x8
 * groups) between half and all of the row count of FS_DECODE_CHUNK_BYTES,
 * the one whose split by count leaves the threads' shares the fewest
 * bytes apart, counting each chunk's restart (matmul_cpu.c). */
#define FS_DECODE_ALIGN 16
int fs_cpu_pass_rows(const int *N, int n, size_t row_bytes, int nth);

/* ---- f32 / f16 / bf16 kernels ---- */

/* Weight element i of an f32 / f16 / bf16 matrix, as f32 (exact). For the
 * scalar kernels and the vector kernels' tails; dt is a constant at each
 * call site, so the switch folds away. */
static inline float fs_cpu_weight(const void *W, fs_dtype dt, size_t i) {
    switch (dt) {
    case FS_DTYPE_BF16: return fs_bf16_to_f32(((const uint16_t *)W)[i]);
    case FS_DTYPE_F16: return fs_f16_to_f32(((const uint16_t *)W)[i]);
    default: break;
    }
    return ((const float *)W)[i];
}

/* Row-range kernels: rows [n0, n1) of y[T, N] = x[T, K] W[N, K]^T.
 * gemv: any T (used for T < FS_GEMM_MIN_T); gemm: packs each panel into
 * pack (one thread's FS_PANEL_K * FS_PANEL_N floats) then runs the tile
 * (AVX2: wide = 1 runs AVX-512's 12-token tile on the same panel). */
void fs_gemv_scalar(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1);
void fs_gemm_scalar(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                    float *pack);
void fs_gemv_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  const fs_cpu_plan *plan);
void fs_gemm_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  float *pack, int wide);
void fs_gemv_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1);
void fs_gemm_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  float *pack);

/* The AVX2 GEMM register tile on its own (attention uses it): for i < nt
 * (<= FS_TILE_T) and r < ncols (<= 16),
 *   y[i * ldy + r] (+)= sum_{k < kc} x[i * ldx + k] * pw[k * ldw + r]
 * (added to y when accum). pw[k * ldw + 0..15] must be readable. */
void fs_tile_avx2(int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
                  int accum, int ncols);
/* The same with NEON (matmul_neon.c; the portable loop elsewhere). */
void fs_tile_neon(int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
                  int accum, int ncols);

/* Pack rows [n, n + rows) (rows <= FS_PANEL_N; missing rows are zeros),
 * columns [k0, k0 + kc) of W into pack[k * FS_PANEL_N + r] as f32. */
void fs_pack_panel(const void *W, fs_dtype dt, int K, int n, int rows, int k0, int kc, float *pack);

/* ---- Q8_0 activations (quant_cpu.c) ---- */

/* One row x [k] to Q8_0 with its block sums (quant.h): the bytes of
 * fs_quantize_row_q8_0, the sums of fs_q8_0_sums. */
void fs_cpu_quantize_x(fs_isa isa, const float *x, fs_block_q8_0 *y, fs_q8_0_sum *sums, int k);
/* Many weight rows (consecutive, nrows of them) against one activation
 * row x with its sums xs: out[r] = the dot of row r with x. The integer
 * block sums of fs_vec_dot_*_ref, the f32 additions in the kernel's order. */
void fs_cpu_dot_rows_q8_0(fs_isa isa, int k, const fs_block_q8_0 *w, int nrows, const fs_block_q8_0 *x,
                          const fs_q8_0_sum *xs, float *out);
void fs_cpu_dot_rows_q4_0(fs_isa isa, int k, const fs_block_q4_0 *w, int nrows, const fs_block_q8_0 *x,
                          const fs_q8_0_sum *xs, float *out);

/* ---- Q8_0 / Q4_0 matrices interleaved by 8 rows (repack.c) ----
 * ok: the tensor can be repacked (quantized, 2-D, N % 8 == 0, K % 32 == 0);
 * super_bytes: the bytes of 8 rows x one block column; repack: write the
 * groups of 8 rows [g0, g1) to their place in dst (the whole matrix is
 * nbytes, groups 0 .. N/8); dequant_row: row n as K floats, the same
 * values as fs_dequantize_row_*. */
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

/* ---- small vector helpers with per-ISA bodies (vec_cpu.c, for attention) ----
 * scale: y[i] *= a. */
void fs_vscale(fs_isa isa, float *y, float a, int n);
/* argmax: the lowest i < n with x[i] = max x; -1 if any x[i] is NaN or
 * n < 1 - argmax.c's rule, exactly (the CPU backend's argmax ops). */
int fs_vargmax(fs_isa isa, const float *x, int n);
/* scale_max: y[i] *= a for i < n; returns the largest new y[i] (-inf for
 * none; NaNs skipped, as `if (y[i] > m)` does). */
float fs_vscale_max(fs_isa isa, float *y, float a, int n);
/* s[i] = e^(s[i] - m) for i < n; returns the sum of the new s[i]. */
float fs_vexp_sum(fs_isa isa, float *s, float m, int n);
/* Decode attention's two products over nb positions of a cache, every
 * query head h < Hkv * group at once (kv head h / group), K and V f32 or
 * (f16 = 1) f16 widened as they are read; position b's row starts at
 * b * stride elements, kv head g's D values at g * D within it:
 *   dot_heads  s[h * lds + b] = q[h * D ..] . k[b, h / group]
 *   mix_heads  o[h][i] += sum_b p[h * ldp + b] * v[b, h / group][i] */
void fs_vdot_heads(fs_isa isa, size_t ahead, const float *q, const void *k, int f16, size_t stride, int nb, int Hkv,
                   int group, int D, float *s, int lds);
void fs_vmix_heads(fs_isa isa, size_t ahead, float *const *o, const float *p, int ldp, const void *v, int f16,
                   size_t stride, int nb, int Hkv, int group, int D);
/* f16 <-> f32 for an f16 KV cache: rows rows of n elements, the f16 side
 * strided by stride elements, the f32 side contiguous (widen: exact;
 * narrow: to nearest even, as fs_f32_to_f16; F16C / NEON or scalar). */
void fs_vwiden_f16(fs_isa isa, float *dst, const uint16_t *src, size_t stride, int rows, int n);
void fs_vnarrow_f16(fs_isa isa, uint16_t *dst, const float *src, int n);

/* ---- the small ops' NEON bodies (ops_neon.c; aarch64 only) ----
 * rmsnorm_rows: fs_cpu_rmsnorm_rows for w bf16, f16 or f32; swiglu: o[i] =
 * silu(g[i]) u[i] for i in [i0, i1) in steps of 4, returning where it
 * stopped; vexp_sum: fs_vexp_sum; rope_head: one head's first pairs, 4 at a
 * time, returning how many. */
void fs_rmsnorm_rows_neon(const float *x, const void *w, fs_dtype wt, float *y, int rows, int n, float eps);
size_t fs_swiglu_neon(const float *g, const float *u, float *o, size_t i0, size_t i1);
float fs_vexp_sum_neon(float *s, float m, int n);
void fs_quantize_x_neon(const float *x, fs_block_q8_0 *y, fs_q8_0_sum *sums, int k);
int fs_rope_head_neon(float *head, const float *c, const float *s, int half);

/* Keys decode attention takes per block (attention_cpu.c), and the most
 * (token, kv head, key range) chunks a split decode attention makes for
 * nth threads (its partial outputs: reserve sizes attn_part for them). */
#define FS_ATTN_BLOCK 64
/* How far ahead of its reads decode attention asks for the cache's lines
 * into L2, in bytes (attention_cpu.c; FS_ATTN_AHEAD overrides). */
#define FS_ATTN_AHEAD 8192
#define FS_ATTN_MAX_PARTS(nth) (4 * (nth))
/* The most query heads per kv head the CPU's attention takes (more: the
 * reference's). */
#define FS_ATTN_MAX_GROUP 16
/* The most query heads one chunk of decode attention takes (more: its kv
 * heads are cut into ranges, attention_cpu.c). */
#define FS_ATTN_MAX_HEADS 128

/* Prefill attention's per-thread scratch for n_ctx positions of head dim
 * D, in floats (attention_cpu.c; reserve allocates nth of them); f16: the
 * cache is f16 (room for V widened to f32). */
size_t fs_cpu_attn_stride(int n_ctx, int D, int f16);
/* Whether this call takes the tiled prefill path (it then needs that
 * scratch). */
int fs_cpu_attn_tiled(fs_isa isa, int T, int D);

/* ---- the input in other forms, made once per matmul call ----
 * fs_cpu_split_input: x [T, K] as three bf16 parts hi + mid + lo = x into
 * f->xs (zero-padded to xs_T x xs_K): each part is the bf16 rounding of
 * what the parts before left, so the three carry 24 significant bits - x
 * itself up to a few units of its last place (matmul_amx.c says how far).
 * The bf16 products of AMX and vdpbf16ps then compute the f32 dot product,
 * not a bf16 one. fs_cpu_wants_split: whether a matmul with weights of
 * dtype dt and T tokens reads it. */
void fs_cpu_split_input(fs_cpu *f, const float *x, int T, int K);
int fs_cpu_wants_split(const fs_cpu *f, fs_dtype dt, int T);

/* ---- AVX-512 decode kernels (matmul_avx512.c) ----
 * gemv1: y[n] = x . W[n], rows [n0, n1), T = 1, f32 / f16 / bf16 weights
 * widened to f32, the plan's prefetch. gemv1_bf16: the same for bf16 with
 * vdpbf16ps on the split input xs (part stride xs_stride elements).
 * x8: the x8 decode (matmul_quant.c's x8_groups) with 512-bit vpdpbusd, on
 * the input laid out by fs_expand_x_avx512 into f->qxe. */
void fs_gemv1_avx512(const float *x, const void *W, fs_dtype dt, float *y, int K, int n0, int n1,
                     const fs_cpu_plan *plan);
void fs_gemv1_avx512_bf16(const uint16_t *xs, size_t xs_stride, const void *W, float *y, int K, int n0, int n1,
                          const fs_cpu_plan *plan);
void fs_x8_avx512(const fs_quant_job *j, int t, int g0, int g1);
/* y = x W^T for a few tokens (a batched decode step: matmul_float.c sends
 * 2 .. FS_TILE_T512), f32 / f16 / bf16 weights read as stored, rows
 * [n0, n1), FS_GEMVT_T tokens a pass. */
#define FS_GEMVT_T 6
void fs_gemvT_avx512(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1);
/* How many tokens the next register tile takes when `left` remain and a
 * tile holds at most `max`: the fewest tiles, as equal as can be. 16
 * tokens in tiles of 12 are 8 + 8, not 12 + 4, whose 4-token tile loads
 * each weight for a third of the products (matmul_avx512.c, matmul_avx2.c). */
static inline int fs_tile_next(int left, int max) {
    int tiles = (left + max - 1) / max;
    return (left + tiles - 1) / tiles;
}
/* The quantized GEMM without AMX: rows n .. n+15 (an x8 pair) for all
 * j->T tokens, FS_QTILE_T512 at a time; pq / pd: the thread's panel
 * (fs_cpu_qpack_bytes); more: rows n + 16 .. n + 31 exist (prefetched). */
#define FS_QTILE_T512 12
/* Up to this many tokens the tiles read the x8 pair as stored, each tile
 * again (from cache), rather than packing it first: CPU D (Emerald
 * Rapids, 2 threads, bench_batch with FS_ISA=avx512, two alternating
 * rounds) Q4_0 16 tokens 440-456 -> 528-536 tok/s, 32 468-493 -> 549-569,
 * 48 450-476 -> 478-532 (Q8_0: no difference beyond the noise). It was
 * FS_QTILE_T512, one tile, before. */
#define FS_QDIRECT_T (4 * FS_QTILE_T512)
void fs_qgemm16_avx512(const fs_quant_job *j, int n, uint8_t *pq, float *pd, int more);
/* fs_tile_avx2 with 512-bit vectors: up to FS_TILE_T512 tokens x 32
 * columns, columns 0-15 from the panel pw0 and 16-31 from pw1 (same ldw). */
#define FS_TILE_T512 12
void fs_tile_avx512(int nt, const float *x, size_t ldx, const float *pw0, const float *pw1, size_t ldw, int kc,
                    float *y, size_t ldy, int accum, int ncols);
void fs_expand_x_avx512(const fs_block_q8_0 *x, int8_t *qxe, int nb);
void fs_split_rows_avx512(const float *x, size_t ldx, int rows, int K, uint16_t *xs, size_t part, int ldk);

/* ---- AMX prefill GEMMs (matmul_amx.c) ----
 * Rows [n0, n1) of y[T, N] for all T tokens, n0 a multiple of 32 (bf16)
 * or 16 (Q8_0 / Q4_0 in the x8 layout), on thread tid's f->tpack. bf16
 * reads the split input (f->xs), the quantized ones f->qx / f->qxs. */
/* The fewest tokens a matmul takes to the tiles: with fewer the 512-bit
 * or AVX2 GEMM (or the decode kernels) run. Where it lies differs between
 * CPUs, so the calibration measures it (tune_cpu.c, the plan's `tiles`):
 * on CPU D (Emerald Rapids, 2 threads, docs/bench.md) the 512-bit paths
 * beat the tiles up to 8 tokens (bf16) and 16 (Q8_0 / Q4_0) - Q4_0 at 8
 * streams 513 tok/s against 269 - while on CPU A the tiles had beaten the
 * AVX2 GEMM from 4 tokens (the 512-bit paths did not exist yet). Where
 * nothing was measured (weights too small to calibrate, FS_CALIBRATE=0)
 * the old default stands, fs_amx_default_t: 4, Q4_0 5 (its nibbles are
 * unpacked at every call). FS_AMX_MIN_T is the smallest any plan may
 * name, what reserve sizes for. */
#define FS_AMX_MIN_T 4
static inline int fs_amx_default_t(fs_dtype dt) { return dt == FS_DTYPE_Q4_0 ? 5 : FS_AMX_MIN_T; }
static inline int fs_amx_min_t(const fs_cpu *f, fs_dtype dt) {
    int t = f->plan[dt].tiles;
    return t >= FS_AMX_MIN_T ? t : fs_amx_default_t(dt);
}
size_t fs_amx_pack_bytes(int K);
void fs_amx_gemm_bf16(fs_cpu *f, const void *W, float *y, int T, int K, int N, int n0, int n1, int tid);
void fs_amx_gemm_q(fs_cpu *f, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1, int tid);
/* Load the tile configuration, store it back (the test of the
 * configuration's bytes), release the tiles. */
void fs_amx_config_roundtrip(uint8_t out[64]);

/* ---- prefill attention's products on AMX tiles (attention_amx.c) ----
 * bytes: a thread's scratch for n_ctx keys of head dim D (a multiple of
 * 32). pack: keys and values 0 .. nk - 1 of one kv head (f32 or f16 rows
 * `row` elements apart) split and packed into sc (an f16 cache: two
 * parts, f32: three). rows: query rows 0 .. nt - 1 (nt <= 16; row i sees
 * keys 0 .. n_first + i - 1 of the pack) into out, normalized - as
 * tiled_chunk computes them on AVX-512; kv_parts: what pack packed. */
#define FS_AMX_ATTN_MAX_BYTES ((size_t)32 << 20)   /* a thread's packs at most; past it, AVX-512 */
size_t fs_amx_attn_bytes(int n_ctx, int D);
void fs_amx_attn_pack(const void *k, const void *v, int f16, size_t row, int nk, int D, uint8_t *sc);
void fs_amx_attn_rows(fs_isa isa, const float *q, size_t q_row, int nt, int n_first, int nk, int D, float scale,
                      int kv_parts, float *out, size_t out_row, uint8_t *sc);

/* ---- aarch64 quantized kernels (matmul_quant_neon.c) ----
 * x8: the x8 decode (groups [g0, g1) of 8 rows, token t) with sdot
 * (dotprod) or without (smull + pairwise adds), the plan's prefetch.
 * gemm_chunk: a fs_quant_job's chunk as a packed integer GEMM (T >=
 * FS_GEMM_MIN_T, N >= 8): smmla where f->i8mm, else sdot where
 * f->dotprod, else smull; the N % 8 last rows row by row. */
void fs_x8_neon(const fs_quant_job *j, int t, int g0, int g1, int dotprod);
void fs_qgemm_neon_chunk(void *arg, int chunk, int tid);

/* ---- decode plans and calibration (tune_cpu.c) ---- */

/* Every dtype's default plan: prefetcht0 1 KiB and prefetcht1 4 KiB
 * ahead, the default kernel (quantized: the widest; float: AVX2;
 * tune_cpu.c says why). */
void fs_cpu_plan_defaults(fs_cpu *f);
/* The decode kernel a dtype's matmul runs now: its plan's, if the kernel
 * set (which tests and FS_ISA may cap) has it, else the default. */
int fs_cpu_decode_kernel(const fs_cpu *f, fs_dtype dt);
/* Calibrate the plans of the uploaded weights' dtypes, or read them from
 * the cache (reserve calls it, after the scratch is allocated). */
void fs_cpu_tune(fs_cpu *f);
/* Set describe's line: the kernel set, the threads, the plans. */
void fs_cpu_describe(fs_cpu *f);
/* Which of n candidates is fastest: rounds times (<= 15), each
 * candidate's run(ctx, c) in turn (the order rotated each round); each
 * result is divided by the reference candidate's of the same round, and a
 * candidate scores the median of its ratios. The lowest score wins if it
 * is below 1 - margin, else ref. */
int fs_cpu_tune_pick(int n, double (*run)(void *ctx, int c), void *ctx, int rounds, int ref, double margin);
/* Stage 4's answer from n token counts Ts[] (ascending): tiles_win(ctx, T)
 * is asked from the largest T down until it says no; the smallest T from
 * which the tiles won at every T asked (Ts[n - 1] + 1 when they lost at
 * the largest). */
int fs_cpu_tune_tiles(int n, const int *Ts, int (*tiles_win)(void *ctx, int T), void *ctx);
/* The cache: ${FS_HOME:-$HOME/.cache/fs}/cpu-tune.txt, lines "KEY<tab>PLAN".
 * 0 or -1 (no such key, no home, unreadable / unwritable). */
int fs_cpu_tune_path(char *buf, size_t n);
int fs_cpu_tune_load(const char *key, fs_cpu_plan *p);
int fs_cpu_tune_store(const char *key, const fs_cpu_plan *p);

#endif
