/* ops_cuda.c - one launcher per op: which kernel, what grid, which
 * arguments. The arithmetic is in the kernels (src/cuda/, one .cu file per op
 * file); this file only decides how the work is cut.
 *
 * Every launch goes on the backend's one stream, in order, so an op sees
 * the results of the ops before it without any synchronisation, and a
 * recorded step (backend_cuda.c) captures exactly this sequence. Nothing
 * here depends on the positions of the step: positions, sequences and
 * token ids are read by the kernels from the step in device memory. Grid
 * sizes depend on T (the host's copy), which is fixed (1) for a recorded
 * decode step, and on the sizes of the caches.
 *
 * Docs: docs/gpu.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_private.h"

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

/* Must match the kernels' constants. */
#define GEMV_THREADS (FS_CU_GEMV_WARPS * 32)   /* gemv.cu: GEMV_WARPS * 32 */
#define GEMM_TILE 64               /* gemm.cu, the first kernel: BM = BN */
#define PIPE_BM 64                 /* gemm.cu, the pipelined kernel: PBM x PBN tiles, */
#define PIPE_BN 128                /* PBK columns of K a step, PSTAGES steps in shared */
#define PIPE_BK 64                 /* memory, rows of PLDS bf16, PTHREADS threads */
#define PIPE_LDS 72
#define PIPE_STAGES FS_CU_GEMM_STAGES
#define PIPE_THREADS 256
#define ROPE_WARPS 4               /* rope_kv.cu */
#define ATT_THREADS 256            /* attention.cu: 8 warps */
#define PF_ROWS 32                 /* attention_prefill.cu */
#define TC_ROWS 16                 /* attention_tc.cu: query rows per block */
#define TC_KEYS 32                 /* attention_tc.cu: keys per tile */
#define TC_WARPS 4                 /* attention_tc.cu: warps per block, each its own K/V tiles */
#define ARGMAX_BLOCKS 128          /* argmax.cu */
#define SKINNY_THREADS 256         /* gemm_skinny.cu: SK_THREADS, */
#define SKINNY_CHUNK_BYTES 65536   /* SK_CHUNK_BYTES of input in shared memory */
#define SKINNY_MAX_T 64
/* ... for a layer's rows, not the vocabulary's: the lm_head (151,936 rows)
 * measured faster on the GEMM at 64 tokens (bf16 131 against 168 us, q4_0
 * 124 against 222; H200, src/cuda/NOTES.md session 10), where its 1,187
 * blocks each wait twice for an input chunk */
#define SKINNY_MAX_N 32768

/* gemv.cu: weights per 16-byte vector, and rows per warp */
static int vec_elems(fs_dtype t) {
    switch (t) {
    case FS_DTYPE_F32: return 4;
    case FS_DTYPE_F16:
    case FS_DTYPE_BF16: return 8;
    case FS_DTYPE_Q8_0: return 16;
    case FS_DTYPE_Q4_0: return 32;
    }
    return 1;
}
static int gemv_rows_per_warp(fs_dtype t) { return t == FS_DTYPE_Q4_0 ? 4 : 2; }

size_t fs_cuda_gemv_smem(int K) { return ((size_t)K + (size_t)K / 8 + 4) * sizeof(float); }

#define STAGE_THREADS 256          /* gemv_stage.cu: STAGE_WARPS * 32 */
#define ROUND16(n) (((n) + 15) / 16 * 16)

/* The staged GEMV (gemv_stage.cu) for a one-token matmul, if it applies:
 * fills a's stage_* fields and *smem (the block's shared memory) and
 * returns the grid (0: use gemv.cu). Each block copies R rows into shared
 * memory; R is the fewest rows for which a block's shared memory stays
 * within the budget (c->stage_bytes) with 1, 2, 3 or 4 blocks' worth of
 * SMs: for Qwen3-0.6B in bf16 at 64 KB, qkv is 256 blocks of 16 rows
 * (38.5 KB), o_proj and down 128 of 8 (41 / 61.5 KB), gate/up 256 of 24
 * (54.5 KB) - about two matmuls of look-ahead in an SM's 228 KB. A matmul
 * that would need more than 4 blocks per SM (the lm_head: 311 MB) is
 * streamed by gemv.cu instead: it cannot sit in shared memory. (Budgets
 * of 169 KB or more would stage the q4_0 lm_head in several waves of one
 * block an SM, with no overlap: not a setting to use.) */
long fs_cuda_staged_launches;

static unsigned stage_grid(const cuda_ctx *c, fs_cu_mm *a, fs_dtype dt, int K, unsigned *smem) {
    if (!c->stage_bytes || !c->k.gemv_stage[dt] || K % 256 != 0 || a->N_total <= 0) return 0;
    size_t wrow = (size_t)K / (size_t)vec_elems(dt) * 16;
    size_t srow = dt == FS_DTYPE_Q8_0 || dt == FS_DTYPE_Q4_0 ? (size_t)K / 16 : 0;
    size_t norm = a->norm ? (size_t)K * (a->norm_dtype == FS_DTYPE_F32 ? 4 : 2) : 0;
    if (a->norm % 16) return 0;
    for (int i = 0; i < a->n_out; i++)
        if (a->out[i].w % 16 || a->out[i].scales % 16) return 0;
    size_t xs = ROUND16(fs_cuda_gemv_smem(K)), fixed = xs + ROUND16(norm);
    for (long blocks = c->sm_count; blocks <= 4L * c->sm_count; blocks += c->sm_count) {
        long rows = CEIL_DIV(a->N_total, blocks);
        size_t bytes = fixed + (size_t)rows * (wrow + srow);
        if (bytes > c->stage_bytes) continue;
        a->stage_rows = (int)rows;
        a->stage_norm_off = (int)xs;
        a->stage_w_off = (int)fixed;
        a->stage_s_off = (int)(fixed + (size_t)rows * wrow);
        *smem = (unsigned)bytes;
        return (unsigned)CEIL_DIV(a->N_total, rows);
    }
    return 0;
}

size_t fs_cuda_prefill_smem(int D) { return ((size_t)3 * PF_ROWS * (size_t)(D + 4) + 32 * 33) * sizeof(float); }

size_t fs_cuda_tc_smem(int D) {   /* Q, then per warp K and V in bf16; reused at the end for f32 partials */
    size_t tiles = (size_t)(TC_ROWS + TC_WARPS * 2 * TC_KEYS) * (size_t)(D + 8) * 2;
    size_t merge = (size_t)TC_ROWS * (D + 8) * 2 + (size_t)TC_WARPS * TC_ROWS * (D + 2) * sizeof(float);
    return tiles > merge ? tiles : merge;
}

/* Splits of the context for decode attention: about 64 positions each (at
 * 4096 positions, 512 blocks: enough loads in flight to read the cache at
 * bandwidth; 128-position splits left it latency-bound, run 4), at most
 * 128, and few enough positions per split that its scores fit in 40 KB of
 * shared memory. */
int fs_cuda_attn_splits(int n_ctx, int group, int D) {
    static int keys = 0;   /* FS_CUDA_ATT_KEYS=N: N positions a split instead of 64 (for A/B runs) */
    if (!keys) {
        const char *v = getenv("FS_CUDA_ATT_KEYS");
        keys = v && atoi(v) >= 16 && atoi(v) <= 4096 ? atoi(v) : 64;
    }
    int S = CEIL_DIV(n_ctx, keys);
    if (S > 128) S = 128;
    if (S < 1) S = 1;
    while (fs_cuda_attn_smem(n_ctx, S, group, D) > 40960 && S < 128 && S < n_ctx) S *= 2;
    return S;
}

/* What decode attention's blocks prefetch into L2 before they wait
 * (attention.cu, prefetch_range): 3, keys and values (measured on an H100,
 * src/cuda/NOTES.md session 14: bf16 tg128 +4.4% at depth 0 against none;
 * at depth 4096 within -2% .. +4% over three calls); FS_CUDA_ATT_PF=0
 * none, 1 keys, 2 values, for A/B runs. */
static int attn_prefetch(void) {
    static int pf = -1;
    if (pf < 0) {
        const char *v = getenv("FS_CUDA_ATT_PF");
        pf = v && v[0] >= '0' && v[0] <= '3' && !v[1] ? v[0] - '0' : 3;
    }
    return pf;
}

/* attention.cu's shared memory: q [group][D], scores [group][chunk] (rows
 * padded to 4 floats), the warps' partial outputs [8][2][D] */
size_t fs_cuda_attn_smem(int n_ctx, int S, int group, int D) {
    return ((size_t)group * (size_t)(D + (CEIL_DIV(n_ctx, S) + 3) / 4 * 4) + 16 * (size_t)D) * sizeof(float);
}

void fs_cuda_embed(fs_backend *b, const fs_buf *table, int H, fs_buf *out) {
    cuda_ctx *c = cuda_of(b);
    int dtype = (int)table->dtype;
    void *p[] = {(void *)&table->p, (void *)&table->scales, &dtype, &H, &c->step, &out->p};
    fs_cuda_launch(c, c->k.embed, (unsigned)c->T, 1, 256, 0, p, "embed");
}

void fs_cuda_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps) {
    cuda_ctx *c = cuda_of(b);
    int w_dtype = (int)w->dtype;
    void *p[] = {(void *)&x->p, (void *)&w->p, &w_dtype, &y->p, &n, &eps};
    fs_cuda_launch(c, c->k.rmsnorm, (unsigned)rows, 1, 256, 0, p, "rmsnorm");
}

/* The pipelined GEMM's shared memory (gemm.cu, gemm_pipe): PIPE_STAGES
 * input tiles; PIPE_STAGES bf16 weight tiles, or for quantized weights 2
 * decoded tiles plus PIPE_STAGES raw tiles (32 or 16 bytes a thread) and
 * their scales (a float a thread). 110,592 bytes for bf16 and q8_0: two
 * blocks fit an H100/H200 SM (228 KB). */
static size_t gemm_pipe_smem(fs_dtype dt, int bm, int stages) {
    size_t a = (size_t)stages * bm * PIPE_LDS * 2, b = (size_t)PIPE_BN * PIPE_LDS * 2;
    if (dt == FS_DTYPE_BF16) return a + stages * b;
    size_t raw = dt == FS_DTYPE_Q8_0 ? 32 : 16;
    return a + 2 * b + (size_t)stages * PIPE_THREADS * (raw + sizeof(float));
}

/* gemm_skinny.cu: the kernel for T tokens (token tiles of 8, 16, 32 or
 * 64), its row groups (8, 2 or 1 of 16 rows a block; the rest of the 8
 * warps split K), and its shared memory: TP rows of the input chunk,
 * padded - skgeo's arithmetic. */
static const int skinny_rw[3] = {8, 2, 1};
static int skinny_nt(int T) { return T <= 8 ? 0 : T <= 16 ? 1 : T <= 32 ? 2 : 3; }
static int skinny_u(fs_dtype dt) { return dt == FS_DTYPE_BF16 || dt == FS_DTYPE_F16 ? 2 : 1; }
static unsigned skinny_smem(fs_dtype dt, int nt, int rw) {
    int tp = 8 << nt, e = vec_elems(dt), w = 4 * e, kw = 8 / rw, u = skinny_u(dt);
    int cwb = SKINNY_CHUNK_BYTES / 2 / tp / w, cw = cwb > kw * u ? cwb : kw * u, ld = cw * w + (e == 16 ? 8 : 32);
    return (unsigned)tp * (unsigned)ld * 2;
}

long fs_cuda_skinny_launches;

/* FS_CUDA_GEMM=old|pipe64|pipe (default pipe): which GEMM kernel runs
 * bf16 / q8_0 / q4_0 weights, for A/B measurements. pipe: the pipelined
 * kernel, with 128x128 tiles for bf16 weights when T > 64 and their grid
 * needs no split over K (fs_cuda_matmul; qkv at T = 512: 162 against 147
 * TFLOP/s, src/cuda/NOTES.md session 4); pipe64: 64x128 tiles only; old:
 * the first kernel (which f16 and f32 weights always take). A GPU whose blocks cannot have the pipelined
 * kernel's shared memory (under 110 KB: some consumer GPUs) keeps the
 * first kernel. */
int fs_cuda_gemm_init(cuda_ctx *c, fs_err *e) {
    /* FS_CUDA_SKINNY=0: batched steps (2 <= T <= 64) on the GEMM as before
     * gemm_skinny.cu, to measure what it buys */
    const char *sk = getenv("FS_CUDA_SKINNY");
    if (sk && *sk && strcmp(sk, "0") && strcmp(sk, "1"))
        return fs_errf(e, "cuda: FS_CUDA_SKINNY=%s: expected 0 or 1", sk);
    c->no_skinny = sk && !strcmp(sk, "0");
    static const char *sk_dt[5] = {NULL, "f16", "bf16", "q8_0", "q4_0"};   /* fs_dtype order; no f32 kernel */
    for (int d = 0; d < 5; d++)
        for (int nt = 0; sk_dt[d] && nt < 4; nt++)
            for (int ri = 0; ri < 3; ri++) {
                char name[48];
                snprintf(name, sizeof name, "gemm_skinny_%s_%d_r%d", sk_dt[d], 8 << nt, skinny_rw[ri]);
                CUfunction f;
                CUresult r = c->cu.ModuleGetFunction(&f, c->mod, name);
                if (r) return fs_errf(e, "cuda: kernel %s missing from the fatbin: %s", name, fs_cu_error(&c->cu, r));
                if (c->cu.FuncSetAttribute(f, FS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                           (int)skinny_smem((fs_dtype)d, nt, skinny_rw[ri])))
                    continue;   /* a GPU with less shared memory: the GEMM takes these */
                c->k.gemm_skinny[d][nt][ri] = f;
            }
    static const struct {
        fs_dtype dt;
        const char *name;
    } pipe[] = {{FS_DTYPE_BF16, "gemm_pipe_bf16"}, {FS_DTYPE_Q8_0, "gemm_pipe_q8_0"}, {FS_DTYPE_Q4_0, "gemm_pipe_q4_0"}};
    const char *env = getenv("FS_CUDA_GEMM");
    if (env && *env && strcmp(env, "old") && strcmp(env, "pipe64") && strcmp(env, "pipe"))
        return fs_errf(e, "cuda: FS_CUDA_GEMM=%s: expected old, pipe64 or pipe", env);
    c->gemm_kind = !env ? 0 : !strcmp(env, "old") ? 1 : !strcmp(env, "pipe64") ? 2 : 0;
    int optin = 0;
    c->cu.DeviceGetAttribute(&optin, FS_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, c->dev);
    for (size_t i = 0; i < sizeof pipe / sizeof pipe[0]; i++) {
        CUfunction f;
        CUresult r = c->cu.ModuleGetFunction(&f, c->mod, pipe[i].name);
        if (r) return fs_errf(e, "cuda: kernel %s missing from the fatbin: %s", pipe[i].name, fs_cu_error(&c->cu, r));
        int smem = (int)gemm_pipe_smem(pipe[i].dt, PIPE_BM, PIPE_STAGES);
        if (smem + 64 > optin || c->cu.FuncSetAttribute(f, FS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem)) continue;
        /* all of the SM's L1/shared storage as shared memory: two blocks */
        c->cu.FuncSetAttribute(f, FS_CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, 100);
        c->k.gemm_pipe[pipe[i].dt] = f;
    }
    CUfunction f;
    int smem = (int)gemm_pipe_smem(FS_DTYPE_BF16, 128, 3);
    if (c->cu.ModuleGetFunction(&f, c->mod, "gemm_pipe128_bf16"))
        return fs_errf(e, "cuda: kernel gemm_pipe128_bf16 missing from the fatbin");
    if (smem + 64 <= optin && !c->cu.FuncSetAttribute(f, FS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem)) {
        c->cu.FuncSetAttribute(f, FS_CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, 100);
        c->k.gemm_pipe128 = f;
    }
    return 0;
}

/* Slices of K for a GEMM of `tiles` output tiles. A GEMM with fewer
 * tiles than SMs leaves most of the GPU idle - a batched decode step (64
 * tokens: one row of tiles) or o_proj/down_proj (N = 1024) - so K is cut
 * into slices, one block each, until there are about two blocks per SM;
 * the last block of a tile adds the slices' partial tiles (gemm.cu). Each
 * slice keeps at least min_steps steps of bk along K, and the partial
 * tiles (tile_floats each) fit the scratch (GEMM_SPLIT x SMs tiles of
 * 64 x 64). The pipelined kernel keeps 4 steps of 64 a slice: a batched
 * step's matmuls measured fastest there (qkv 4 slices, 20.3 us against
 * 25.3 with 8; o_proj 8, 19.8 against 24.2 with 16), as each slice's
 * partial tile costs a write and a read through L2 (src/cuda/NOTES.md). */
static int gemm_k_split(const cuda_ctx *c, int tiles, int K, int bk, int min_steps, long tile_floats) {
    if (tiles >= c->sm_count || tiles > c->gemm_split_tiles) return 1;
    long room = (long)c->gemm_split_tiles * GEMM_SPLIT * 64 * 64 / tile_floats;
    int split = CEIL_DIV(2 * c->sm_count, tiles);
    if (split > c->gemm_split_max) split = c->gemm_split_max;
    while (split > 1 && (K / bk < min_steps * split || (long)tiles * split > room)) split--;
    return split;
}

/* Slices of K across blocks for gemm_skinny.cu: none where the call's
 * blocks cover three quarters of the SMs or more; else enough for about one block per SM, each
 * slice at least 2 windows of 4 vectors, within the split-K scratch, and
 * few enough that the last block adds at most 64 partial values a thread
 * (skgeo's ZMAX; o_proj and down_proj at 64 tokens, 64 blocks of 16 rows
 * on 132 SMs, take 3 slices). */
static int skinny_split(const cuda_ctx *c, int blocks, int K, fs_dtype dt, int nt, int rw) {
    if (blocks >= c->sm_count * 3 / 4 || blocks > c->gemm_split_tiles) return 1;
    int split = CEIL_DIV(c->sm_count, blocks), windows = K / vec_elems(dt) / 4;
    long tile = 16L * rw * (8 << nt), room = (long)c->gemm_split_tiles * GEMM_SPLIT * 64 * 64;
    long no = tile / SKINNY_THREADS > 0 ? tile / SKINNY_THREADS : 1, zmax = 64 / no < 16 ? 64 / no : 16;
    if (split > c->gemm_split_max) split = c->gemm_split_max;
    if (split > zmax) split = (int)zmax;
    while (split > 1 && (windows < 2 * split || (long)blocks * split * tile > room)) split--;
    return split;
}

/* The prefetch hint: kept until the next matmul. A one-token matmul (a
 * GEMV) hands it to its kernel, which asks the L2 cache for those bytes
 * before it waits for its input (gemv.cu); any other matmul drops it.
 * Only on sm_90, whose bulk prefetch instruction takes a whole range. */
void fs_cuda_prefetch(fs_backend *b, const fs_buf *const *w, int n) {
    cuda_ctx *c = cuda_of(b);
    if (c->no_prefetch || c->cc_major < 9) return;
    for (int i = 0; i < n && c->n_pf < FS_CU_PF_MAX; i++) {
        if (!w[i]) continue;
        c->pf[c->n_pf] = w[i]->p;
        c->pf_bytes[c->n_pf++] = w[i]->bytes;
    }
}

/* The layers of one call that share a dtype run as one launch: their rows
 * (GEMV) or column tiles (GEMM) are concatenated. Mixed dtypes in one call
 * (not produced by fs's converter, but legal) become one launch per dtype. */
void fs_cuda_matmul(fs_backend *b, const fs_mm_in *in, int T, int K, const fs_linear *out, int n) {
    cuda_ctx *c = cuda_of(b);
    int done[FS_MATMUL_MAX] = {0};
    for (int first = 0; first < n; first++) {
        if (done[first]) continue;
        fs_dtype dt = out[first].W->dtype;
        fs_cu_mm a = {0};
        a.x = in->x->p;
        a.norm = in->norm ? in->norm->p : 0;
        a.norm_dtype = in->norm ? (int)in->norm->dtype : 0;
        a.eps = in->eps;
        a.up = in->up ? in->up->p : 0;
        a.xb = c->xb;
        a.dtype = (int)dt;
        a.k_split = 1;
        a.T = T;
        a.K = K;
        /* prefill or a batched step: the tensor-core GEMM, pipelined for
         * bf16 / q8_0 / q4_0 weights; its column tiles are BN wide */
        int gemm = T > 1 && K % 8 == 0 && c->xb;
        CUfunction pipe = gemm && c->gemm_kind != 1 ? c->k.gemm_pipe[dt] : 0;
        int BN = pipe ? PIPE_BN : GEMM_TILE;
        int tiles = 0;
        for (int i = first; i < n; i++) {
            if (done[i] || out[i].W->dtype != dt) continue;
            done[i] = 1;
            fs_cu_linear *L = &a.out[a.n_out++];
            L->w = out[i].W->p;
            L->scales = out[i].W->scales;
            L->y = out[i].y->p;
            L->N = out[i].N;
            L->add = out[i].add;
            L->row0 = a.N_total;
            L->tile0 = tiles;
            a.N_total += out[i].N;
            tiles += CEIL_DIV(out[i].N, BN);
        }
        void *p[] = {&a};
        if (T > 1) c->n_pf = 0;   /* a GEMM reads its weights many times over: no hint needed */
        /* a few tokens of a layer (a batched decode step): the tensor-core GEMV */
        int skinny = gemm && T <= SKINNY_MAX_T && a.N_total <= SKINNY_MAX_N && !c->no_skinny &&
                     K % vec_elems(dt) == 0 && c->k.gemm_skinny[dt][skinny_nt(T)][2];
        if (gemm) {
            /* the input once to bf16, then the GEMM (or the skinny kernel),
             * split over K when its blocks would not cover the SMs */
            a.part = c->gemm_part;
            a.counter = c->gemm_counter;
            fs_cuda_launch(c, c->k.mm_input_bf16, (unsigned)T, 1, 128, (unsigned)fs_cuda_gemv_smem(K), p, "matmul input");
            if (skinny) {
                /* the most rows a block that still give three quarters of
                 * the SMs a block (on 132 SMs: qkv and gate/up at 2 row
                 * groups, 128 and 192 blocks; o_proj and down_proj at 1, 64
                 * blocks, K in 3 slices) - the input chunk is read once per
                 * block, so fewer rows a block cost L2 traffic */
                int nt = skinny_nt(T), ri = 0;
                while (ri < 2 && CEIL_DIV(a.N_total, 16 * skinny_rw[ri]) < c->sm_count * 3 / 4) ri++;
                int rw = skinny_rw[ri], blocks = CEIL_DIV(a.N_total, 16 * rw);
                fs_cuda_launch(c, c->k.gemm_skinny[dt][nt][ri], (unsigned)blocks,
                               (unsigned)skinny_split(c, blocks, K, dt, nt, rw), SKINNY_THREADS, skinny_smem(dt, nt, rw),
                               p, "matmul (skinny)");
                fs_cuda_skinny_launches++;
            } else if (pipe) {
                /* 128x128 tiles for bf16 weights and T > 64 where their grid
                 * needs no split over K (qkv, gate/up of a prefill chunk);
                 * where it would, 64x128 tiles split into fewer slices were
                 * faster (o_proj 0.90 against 0.99 ms, down 1.09 against 1.24
                 * over 28 layers at T = 512; src/cuda/NOTES.md, call 3) */
                int bm = PIPE_BM, stages = PIPE_STAGES;
                if (c->gemm_kind == 0 && dt == FS_DTYPE_BF16 && T > 64 && c->k.gemm_pipe128 &&
                    gemm_k_split(c, tiles * CEIL_DIV(T, 128), K, PIPE_BK, 4, 128L * PIPE_BN) == 1)
                    pipe = c->k.gemm_pipe128, bm = 128, stages = 3;
                int rows = CEIL_DIV(T, bm);
                a.k_split = gemm_k_split(c, tiles * rows, K, PIPE_BK, 4, (long)bm * PIPE_BN);
                fs_cuda_launch3(c, pipe, (unsigned)tiles, (unsigned)rows, (unsigned)a.k_split, PIPE_THREADS,
                                (unsigned)gemm_pipe_smem(dt, bm, stages), p, "matmul (gemm, pipelined)");
            } else {
                int rows = CEIL_DIV(T, GEMM_TILE);
                a.k_split = gemm_k_split(c, tiles * rows, K, 32, 4, (long)GEMM_TILE * GEMM_TILE);
                fs_cuda_launch3(c, c->k.gemm[dt], (unsigned)tiles, (unsigned)rows, (unsigned)a.k_split, 128, 0, p,
                                "matmul (gemm)");
            }
        } else {
            /* decode (and any K that is not a whole number of vectors): f32
             * GEMV. A warp per R rows when that makes at least 8 such warps
             * an SM; else ("split") 4 warps per R rows, each a quarter of K,
             * if K has a vector for every lane of the 4 warps. */
            if (T == 1 && fs_cuda_persist_mm(c, &a)) {   /* an instruction of the recorded step's program */
                c->n_pf = 0;
                continue;
            }
            unsigned smem = 0, staged = T == 1 ? stage_grid(c, &a, dt, K, &smem) : 0;
            if (staged) {
                fs_cuda_staged_launches++;
                c->n_pf = 0;
                fs_cuda_launch(c, c->k.gemv_stage[dt], staged, 1, STAGE_THREADS, smem, p, "matmul (gemv, staged)");
                continue;
            }
            int vector = K % vec_elems(dt) == 0, R = gemv_rows_per_warp(dt);
            CUfunction f = vector ? c->k.gemv[dt] : c->k.gemv_any;
            long rows_per_block = vector ? FS_CU_GEMV_WARPS * R : FS_CU_GEMV_WARPS;
            /* (at 4 warps a block: fewer than 2 blocks an SM) */
            if (vector && CEIL_DIV(a.N_total, R) < 8L * c->sm_count && K / vec_elems(dt) >= 4 * 32) {
                f = c->k.gemv_split[dt];
                rows_per_block = FS_CU_GEMV_WARPS / 4 * R;
            }
            for (int i = 0; i < c->n_pf; i++) {
                a.pf[i] = c->pf[i];
                a.pf_bytes[i] = c->pf_bytes[i];
            }
            a.n_pf = c->n_pf;
            a.pf_late = c->prefetch_late;
            c->n_pf = 0;
            long blocks = CEIL_DIV(a.N_total, rows_per_block);
            long max_blocks = 32L / FS_CU_GEMV_WARPS * c->sm_count;   /* beyond this, blocks loop over rows */
            if (blocks > max_blocks) blocks = max_blocks;
            fs_cuda_launch(c, f, (unsigned)blocks, (unsigned)T, GEMV_THREADS, (unsigned)fs_cuda_gemv_smem(K), p,
                           "matmul (gemv)");
        }
    }
}

/* The caches of the step's n_seq sequences into the kernel's argument
 * (all of one dtype: f32, or f16 under --kv f16); returns the largest
 * n_ctx. */
static int put_caches(const cuda_ctx *c, fs_cu_caches *a, fs_buf *const *caches) {
    int n_max = 0;
    a->f16 = caches[0]->dtype == FS_DTYPE_F16;
    for (int i = 0; i < c->n_seq; i++) {
        a->p[i] = caches[i]->p;
        a->n_ctx[i] = caches[i]->n_ctx;
        if (caches[i]->n_ctx > n_max) n_max = caches[i]->n_ctx;
    }
    return n_max;
}

void fs_cuda_rope_kv(fs_backend *b, fs_buf *q, fs_buf *k, fs_buf *v, const fs_buf *q_norm, const fs_buf *k_norm,
                     float eps, fs_buf *const *caches, int Hq, int Hkv, int D, const fs_qkv_bias *bias) {
    cuda_ctx *c = cuda_of(b);
    fs_cu_rope a = {0};
    put_caches(c, &a.caches, caches);
    a.q = q->p;
    a.k = k->p;
    a.v = v->p;
    a.q_norm = q_norm ? q_norm->p : 0;
    a.k_norm = k_norm ? k_norm->p : 0;
    a.q_norm_dtype = q_norm ? (int)q_norm->dtype : 0;
    a.k_norm_dtype = k_norm ? (int)k_norm->dtype : 0;
    if (bias) {
        a.q_bias = bias->q->p, a.q_bias_dtype = (int)bias->q->dtype;
        a.k_bias = bias->k->p, a.k_bias_dtype = (int)bias->k->dtype;
        a.v_bias = bias->v->p, a.v_bias_dtype = (int)bias->v->dtype;
    }
    a.inv_freq = c->inv_freq;
    a.step = c->step;
    a.eps = eps;
    a.Hq = Hq;
    a.Hkv = Hkv;
    a.D = D;
    if (c->T == 1 && fs_cuda_persist_rope(c, &a)) return;
    void *p[] = {&a};
    int warps = c->T * (Hq + 2 * Hkv);
    fs_cuda_launch(c, c->k.rope_kv, (unsigned)CEIL_DIV(warps, ROPE_WARPS), 1, ROPE_WARPS * 32, 0, p, "rope_kv");
}

/* A decode step (T = 1) and a step that mixes sequences run every token
 * on its own through the split-context kernel (attention.cu), whose
 * splits are cut from the largest cache (for a decode step: its
 * session's, the same at every position); a prompt of one sequence runs
 * on the prefill kernels. */
void fs_cuda_attention(fs_backend *b, const fs_buf *q, fs_buf *const *caches, fs_buf *out, int Hq, int Hkv, int D) {
    cuda_ctx *c = cuda_of(b);
    int group = Hq / Hkv;
    fs_cu_attn a = {0};
    int n_max = put_caches(c, &a.caches, caches), f16 = a.caches.f16;   /* the kernels of the cache's type */
    a.q = q->p;
    a.out = out->p;
    a.step = c->step;
    a.part_o = c->part_o;
    a.part_ml = c->part_ml;
    a.counter = c->att_counter;
    a.min_keys = c->att_min_keys;
    a.pf = attn_prefetch();
    a.Hq = Hq;
    a.Hkv = Hkv;
    a.D = D;
    void *p[] = {&a};
    if (c->T == 1 || !c->one_seq) {
        a.n_split = fs_cuda_attn_splits(n_max, group, D);
        a.chunk = CEIL_DIV(n_max, a.n_split);
        /* a range may grow to min_keys (a short context in one block): the
         * scores' shared memory is sized for the larger of the two */
        int grow = c->att_min_keys < n_max ? c->att_min_keys : n_max;
        if (grow > a.chunk && fs_cuda_attn_smem(grow, 1, group, D) <= 40960) a.chunk = grow;
        if (a.n_split > c->max_split) {
            fprintf(stderr, "fs: cuda: attention: a cache of %d positions is larger than reserve()'s n_ctx %d\n",
                    n_max, c->n_ctx);
            abort();
        }
        unsigned smem = (unsigned)fs_cuda_attn_smem(a.chunk, 1, group, D);   /* scores for a.chunk keys */
        if (c->T == 1 && fs_cuda_persist_attn(c, &a, smem)) return;
        for (a.t0 = 0; a.t0 < c->T; a.t0 += c->att_tokens) {   /* as many tokens at a time as the scratch holds */
            int tokens = c->T - a.t0 < c->att_tokens ? c->T - a.t0 : c->att_tokens;
            fs_cuda_launch3(c, D <= 128 ? c->k.attention_decode_128[f16] : c->k.attention_decode_256[f16], (unsigned)a.n_split,
                            (unsigned)Hkv, (unsigned)tokens, ATT_THREADS, smem, p, "attention (decode)");
        }
    } else if (D == 64 || D == 128) {   /* tensor cores */
        int BQ = TC_ROWS / group;
        fs_cuda_launch(c, D == 64 ? c->k.attention_tc_64[f16] : c->k.attention_tc_128[f16], (unsigned)CEIL_DIV(c->T, BQ),
                       (unsigned)Hkv, TC_WARPS * 32, (unsigned)fs_cuda_tc_smem(D), p, "attention (prefill, tensor cores)");
    } else {   /* f32, any head dim */
        int BQ = group >= PF_ROWS ? 1 : PF_ROWS / group;
        fs_cuda_launch(c, c->k.attention_prefill[f16], (unsigned)CEIL_DIV(c->T, BQ), (unsigned)Hkv, 256,
                       (unsigned)fs_cuda_prefill_smem(D), p, "attention (prefill)");
    }
}

void fs_cuda_copy(fs_backend *b, const fs_buf *src, size_t src_off, fs_buf *dst, size_t dst_off, size_t n) {
    cuda_ctx *c = cuda_of(b);
    if (c->n_prog > c->prog_sent) fs_cuda_persist_flush(c);   /* after the ops recorded before it */
    fs_cuda_check(c,
                  c->cu.MemcpyDtoDAsync(dst->p + dst_off * sizeof(float), src->p + src_off * sizeof(float),
                                        n * sizeof(float), c->stream),
                  "copy");
}

/* The argmax answer of ring step k (kernel_args.h), written by the
 * argmax that closes a recorded step: polled in host memory, which costs
 * no driver call and wakes as soon as it lands. While waiting, the stream
 * is asked now and then whether it failed (a fault must not hang us) or
 * finished without writing the answer (a bug). */
static int ring_answer(cuda_ctx *c, unsigned k) {
    volatile int *e = c->ring + (k % FS_CU_RING) * FS_CU_RING_INTS;
    for (unsigned spins = 1; (unsigned)e[FS_CU_RING_DONE] != k + 1u; spins++) {
        if (spins % 4096 == 0) {
            CUresult r = c->cu.StreamQuery(c->stream);
            if (r != FS_CU_ERROR_NOT_READY) fs_cuda_check(c, r, "argmax (ring) wait");
            if (r == 0 && (unsigned)e[FS_CU_RING_DONE] != k + 1u) {
                fprintf(stderr, "fs: cuda: recorded step %u finished without its argmax\n", k);
                abort();
            }
        }
    }
    __sync_synchronize();
    return e[FS_CU_RING_ANSWER];
}

/* The last replay's closing argmax already read x: its answer, from the
 * ring. Else one row through argmax_rows. */
int fs_cuda_argmax(fs_backend *b, const fs_buf *x, int n) {
    cuda_ctx *c = cuda_of(b);
    if (c->replayed_x && c->replayed_x == x->p) return ring_answer(c, c->replayed_k);
    int out;
    fs_cuda_argmax_rows(b, x, 1, n, &out);
    return out;
}

/* Queued (backend.h). Three cases:
 *   recording  the argmax becomes the recorded step's last kernel, and
 *              writes its answer into the ring entry of each replay;
 *   after a replay whose recorded argmax read x: nothing to launch - the
 *              slot names the ring step;
 *   else       the kernel, whose answer stays in argmax_result (where the
 *              next step's kernel reads it when asked to), a copy of it to
 *              the slot's pinned int, and an event. Only argmax_take waits. */
void fs_cuda_argmax_queue(fs_backend *b, const fs_buf *x, int n, int slot) {
    cuda_ctx *c = cuda_of(b);
    slot &= 1;
    fs_cu_ptr ring = 0, count = 0;
    if (c->capturing) {
        ring = c->ring_dev, count = c->ring_count;
        c->cap_argmax_x = x->p;
    } else if (c->replayed_x && c->replayed_x == x->p) {
        c->slot_k[slot] = c->replayed_k;
        return;
    }
    void *p[] = {(void *)&x->p, &n, &c->argmax_part, &c->argmax_counter, &c->argmax_result, &ring, &count};
    fs_cuda_launch(c, c->k.argmax, ARGMAX_BLOCKS, 1, 256, 0, p, "argmax (queued)");
    if (c->capturing) return;
    c->slot_k[slot] = -1;
    fs_cuda_check(c, c->cu.MemcpyDtoHAsync(c->queued_host + slot, c->argmax_result, sizeof(int), c->stream),
                  "argmax (queued) copy");
    fs_cuda_check(c, c->cu.EventRecord(c->queued_done[slot], c->stream), "argmax (queued) event");
}

int fs_cuda_argmax_take(fs_backend *b, int slot) {
    cuda_ctx *c = cuda_of(b);
    slot &= 1;
    if (c->slot_k[slot] >= 0) return ring_answer(c, (unsigned)c->slot_k[slot]);
    fs_cuda_check(c, c->cu.EventSynchronize(c->queued_done[slot]), "argmax (queued) wait");
    return ((volatile int *)c->queued_host)[slot];
}

/* Every row at once: 16 blocks a row (64 rows: 1,024 blocks), one copy of
 * the answers, one wait. */
void fs_cuda_argmax_rows(fs_backend *b, const fs_buf *x, int rows, int n, int *out) {
    cuda_ctx *c = cuda_of(b);
    if (rows < 1 || rows > c->max_seqs) {
        fprintf(stderr, "fs: cuda: argmax of %d rows: reserve() allowed 1 .. %d\n", rows, c->max_seqs);
        abort();
    }
    fs_cu_ptr none = 0;
    void *p[] = {(void *)&x->p, &n, &c->argmax_part, &c->argmax_counter, &c->argmax_result, &none, &none};
    fs_cuda_launch(c, c->k.argmax, rows == 1 ? ARGMAX_BLOCKS : 16, (unsigned)rows, 256, 0, p, "argmax (rows)");
    fs_cuda_check(c, c->cu.MemcpyDtoHAsync(c->result_host, c->argmax_result, (size_t)rows * sizeof(int), c->stream),
                  "argmax copy");
    fs_cuda_check(c, c->cu.StreamSynchronize(c->stream), "argmax wait");
    memcpy(out, c->result_host, (size_t)rows * sizeof(int));
}
