/* attention.cu - the attention of single query tokens, each against its
 * own sequence's cache, split over the context ("flash-decoding"): a
 * decode step (T = 1), and every token of a step that mixes sequences (a
 * server's batched decode step; attention_tc.cu and attention_prefill.cu
 * take a prompt of one sequence).
 *
 *   q, out: [T, Hq, D]   caches K, V: [Hkv, n_ctx, D] each (kernel_args.h)
 *   token t: n = pos[t] + 1 keys (positions 0 .. pos[t] of caches[seq[t]],
 *   pos and seq read from the step)
 *   out[t,h] = sum_{j < n} softmax_j(q[t,h] . K[g, j] / sqrt(D)) V[g, j]     g = h / (Hq / Hkv)
 *
 * One token reads every cached key and value of its layer once: at 4096
 * positions that is 32 MB a layer, more than the layer's weights. To read
 * it at the memory's speed the work must cover the whole GPU, so the
 * context is cut into n_split ranges of `chunk` positions and each
 * (range, kv head, token) is one block: 8 kv heads x 32 splits = 256
 * blocks per token at n_ctx = 4096. n_split depends on the caches' sizes,
 * never on the positions: the same launch serves every step, which is
 * what lets a recorded step replay. Inside it, the ranges are cut from
 * the token's own number of keys (n_keys / n_split, at least 64), so a
 * context is spread over as many blocks as it needs, whatever the cache's
 * size, and up to 64 keys need no combining at all. Blocks whose range starts past the
 * token's position leave at once; when all its keys fit in the first range
 * (a short context), that block writes the answer itself and nothing is
 * combined. A launch takes tokens t0 .. t0 + gridDim.z - 1 of the step
 * (the host cuts a long step into launches that fit the scratch).
 *
 * A block (8 warps) serves the Hq / Hkv query heads that share its kv
 * head, so each key and value is read once for all of them:
 *   1. scores: 8 lanes per key (each 4 floats of every 32, a 3-step shuffle
 *      sum), 8 keys per warp at a time; scores go to shared memory.
 *   2. per head, the range's max m and l = sum exp(s - m) (one warp each);
 *      scores become exp(s - m).
 *   3. o[h, :] = sum_j exp(s_j - m) V[j, :], a warp per key, 16 bytes per
 *      lane (a value row is one coalesced load), the warps' sums added in
 *      shared memory.
 * Each block writes (m, l, o) of its range to scratch. The last block to
 * finish a (token, kv head) (an atomic counter, reset by that block for
 * the next call) combines the ranges:
 *   M = max m_s,  out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s.
 * This costs no extra launch. The weights e^(m_s - M) are computed once
 * per head into shared memory; then every thread issues all of its loads
 * of the partial outputs before its first sum (a float4 column of a
 * slice of the ranges; the slices added in shared memory): one trip to
 * L2, where a loop over the ranges waited for 8 of them at 64 ranges.
 * The result differs from the reference only in rounding (f32 sums in
 * another order).
 *
 * Docs: docs/gpu.md, docs/kv-cache.md
 */
#include <math_constants.h>

#include "common.cuh"

#define ATT_THREADS 256
#define ATT_WARPS 8
#define GMAX 16        /* query heads per kv head at most (reserve checks) */
#define MAX_SPLIT 128  /* context splits at most (fs_cuda_attn_splits) */
#define KEY_SLOTS 2    /* keys per 8-lane group per step: loads in flight */
#define CMB_LOADS 8    /* the combine's partial-output loads in flight a thread: 32
                          registers; 16 took the kernel past 64 registers, 3 blocks
                          an SM instead of 4, and depth 4096's 512 blocks into two
                          waves (src/cuda/NOTES.md, session 14) */

/* The barrier among a block's ATT_THREADS threads: __syncthreads in the
 * kernels below; the persistent decode step (persist.cu), whose blocks
 * have one more warp that never joins, passes its named barrier. */
struct block_sync {
    __device__ void operator()() const { __syncthreads(); }
};

/* Range s of kv head g of the launch's token z, by threads 0 ..
 * ATT_THREADS - 1 of a block; sm: its shared memory
 * (fs_cuda_attn_smem). */
/* The block's fixed shared memory: per head the range's max and sum, the
 * combining weights of the ranges and their sum; whether this block
 * combines. (Passed in, so a kernel that instantiates the function more
 * than once holds one copy.) */
struct att_shared {
    float m_s[GMAX], l_s[GMAX], w_s[GMAX][MAX_SPLIT], den_s[GMAX];
    int is_last;
};

/* Before waiting for the kernels in front of it, a block asks the L2
 * cache for its range's keys and values (a.pf: bit 0 keys, bit 1 values;
 * FS_CUDA_ATT_PF): one `cp.async.bulk.prefetch.L2` per 4 KB piece (the
 * bulk copy engine, sm_90; common.cuh), a piece a thread, fire and forget. Only the
 * newest key is written by the kernel before (rope_kv), and L2 is where
 * every write lands, so a line fetched early is never stale; the point is
 * that the range's bytes are on their way while rope_kv and the matmul
 * before it finish, and the loads after the wait find them in L2.
 * Measured alone (H100, FS_CUDA_ATT_PF 0 / 2 / 3, bf16 tg128): f16 cache
 * 927.8 / 953.3 / 968.2 tok/s at depth 0, 667.9 / 692.3 / 692.4 at 4096;
 * f32 940.1 / 973.7 / 981.0 and 648.5 / 658.3 / 660.2 - it pays
 * everywhere (src/cuda/NOTES.md, session 14). */
__device__ __forceinline__ void prefetch_range(const fs_cu_attn &a, int sq, int g, int j0, int n, int f16) {
    const size_t esz = f16 ? 2 : 4, n_ctx = (size_t)a.caches.n_ctx[sq];
    const char *base = (const char *)a.caches.p[sq];
    const size_t row = (size_t)a.D * esz;
    const int kv = threadIdx.x / (ATT_THREADS / 2);   /* 0: keys, 1: values - half the threads each */
    if (a.pf >> kv & 1)
        prefetch_l2_range(base + (((size_t)kv * a.Hkv + g) * n_ctx + (size_t)j0) * row, (size_t)n * row,
                          threadIdx.x % (ATT_THREADS / 2), ATT_THREADS / 2);
}

/* rp (the persistent step, one token, rope_kv folded in): the query
 * heads are rotated here, from q as the matmul left it, into shared
 * memory; the block of the range holding the token's own position also
 * rotates its key and stores key and value into the cache before reading
 * them. NULL: q is rope_kv's output, the cache already holds the token. */
template <int DV, int F16, class Sync>   /* float4s of a key per lane: D <= 32 * DV; F16: the cache's elements */
__device__ __forceinline__ void attention_decode(const fs_cu_attn &a, int s, int g, int z, float *sm, att_shared &sh,
                                                 Sync sync, const fs_cu_rope *rp = nullptr) {
    float *m_s = sh.m_s, *l_s = sh.l_s, *den_s = sh.den_s;
    float(*w_s)[MAX_SPLIT] = sh.w_s;
    int &is_last = sh.is_last;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int D = a.D, group = a.Hq / a.Hkv;
    /* the step is not written by the previous kernel: read it before waiting */
    const int *tok = step_token(a.step, a.t0 + z);
    const int n_keys = tok[FS_CU_TOK_POS] + 1, sq = tok[FS_CU_TOK_SEQ];
    /* The ranges are cut from this token's keys, not from the cache's size:
     * n_keys / n_split each (at least a.min_keys, at most a.chunk, which
     * sized the shared memory): with a long cache of few keys used, the
     * work is not left to the first range's block alone. */
    const int chunk = min(a.chunk, max(a.min_keys, (n_keys + a.n_split - 1) / a.n_split));
    const int S = (n_keys + chunk - 1) / chunk;   /* ranges that hold keys; the rest of the grid leaves */
    if (s >= S) return;
    const int j0 = s * chunk, n = min(j0 + chunk, n_keys) - j0;   /* keys of this range, >= 1 */
    prefetch_range(a, sq, g, j0, n, F16);
    pdl_wait();
    tl_mark(TL_ATTN, TL_WAITED, a.caches.p[0]);
    const int stride = a.n_split;                                  /* of the partials in scratch */
    /* shared: q [group][D], scores [group][a.chunk], the warps' o [ATT_WARPS][2][D] */
    const int sc_stride = (a.chunk + 3) & ~3;   /* the scores' row stride: o_red stays 16-byte aligned */
    float *q_s = sm, *sc = q_s + group * D, *o_red = sc + group * sc_stride;
    const size_t n_ctx = (size_t)a.caches.n_ctx[sq];
    /* element offsets of this kv head's keys and values in the cache (kv_load4: f32 or f16) */
    const void *cache = (const void *)a.caches.p[sq];
    constexpr int f16 = F16;   /* a compile-time choice: the f32 kernel is the one it was */
    const size_t K = (size_t)g * n_ctx * D, V = ((size_t)a.Hkv + g) * n_ctx * D;
    /* the group's first query head: row0 in q and out, prow0 in the partials (by the token's place in the launch) */
    const size_t row0 = (size_t)(a.t0 + z) * a.Hq + (size_t)g * group, prow0 = (size_t)z * a.Hq + (size_t)g * group;
    float *part_o = (float *)a.part_o, *part_ml = (float *)a.part_ml;
    int *counter = (int *)a.counter + (size_t)z * a.Hkv + g;

    {
        if (rp) {   /* warp w rotates query head g * group + w; the last range's block stores k and v */
            const int heads = rp->Hq + 2 * rp->Hkv;
            for (int w = warp; w < group + 2; w += ATT_WARPS) {
                if (w < group) rope_kv_warp(*rp, z * heads + g * group + w, q_s + w * D);
                else if (s == S - 1) rope_kv_warp(*rp, z * heads + rp->Hq + (w - group) * rp->Hkv + g);
            }
            __threadfence_block();
        } else {
#pragma unroll 4
            for (int i = tid; i < group * D; i += ATT_THREADS) q_s[i] = __ldcg((const float *)a.q + row0 * D + i);
        }
        sync();
        tl_mark(TL_ATTN, TL_INPUT, a.caches.p[0]);
        const float scale = (float)(1.0 / sqrt((double)D));
        const int sub = lane & 7;
        /* 1. scores: 8 lanes per key, lane sub holding d = sub*4 + 32 i;
         * a warp takes 4 keys x KEY_SLOTS per step, all their loads issued
         * before the first product. The bound is the same for the whole
         * warp, so every lane reaches the shuffles. */
        for (int jw = warp * 4 * KEY_SLOTS; jw < n; jw += ATT_WARPS * 4 * KEY_SLOTS) {
            float4 kv[KEY_SLOTS][DV];
#pragma unroll
            for (int ks = 0; ks < KEY_SLOTS; ks++) {
                int j = jw + ks * 4 + (lane >> 3);
                const size_t kj = K + (size_t)(j0 + j) * D;
#pragma unroll
                for (int i = 0; i < DV; i++) {
                    int d = sub * 4 + 32 * i;
                    kv[ks][i] = j < n && d < D ? kv_load4(cache, kj + d, f16) : make_float4(0, 0, 0, 0);
                }
            }
#pragma unroll
            for (int h = 0; h < GMAX; h++) {
                if (h >= group) break;
#pragma unroll
                for (int ks = 0; ks < KEY_SLOTS; ks++) {
                    float dot = 0.0f;
#pragma unroll
                    for (int i = 0; i < DV; i++) {
                        int d = sub * 4 + 32 * i;
                        if (d >= D) break;
                        float4 qv = *(const float4 *)(q_s + h * D + d), k4 = kv[ks][i];
                        dot = fmaf(qv.x, k4.x, fmaf(qv.y, k4.y, fmaf(qv.z, k4.z, fmaf(qv.w, k4.w, dot))));
                    }
                    dot += __shfl_xor_sync(0xffffffffu, dot, 4);
                    dot += __shfl_xor_sync(0xffffffffu, dot, 2);
                    dot += __shfl_xor_sync(0xffffffffu, dot, 1);
                    int j = jw + ks * 4 + (lane >> 3);
                    if (j < n && sub == 0) sc[h * sc_stride + j] = dot * scale;
                }
            }
        }
        sync();
        /* 2. max and sum of exponentials per head (a warp per head) */
        for (int h = warp; h < group; h += ATT_WARPS) {
            float *sh = sc + h * sc_stride;
            float m = -CUDART_INF_F;
            for (int j = lane; j < n; j += 32) m = fmaxf(m, sh[j]);
            m = warp_max(m);
            float l = 0.0f;
            for (int j = lane; j < n; j += 32) {
                float e = expf(sh[j] - m);
                sh[j] = e;
                l += e;
            }
            l = warp_sum(l);
            if (lane == 0) {
                m_s[h] = m;
                l_s[h] = l;
            }
        }
        sync();
        /* 3. o[h] = sum_j e_j V[j], two heads at a time: warp w takes keys
         * j = w, w + 4, ..., lane the float4 columns lane and lane + 32 of
         * each value row (512 contiguous bytes per warp load); then the 4
         * warps' sums are added in shared memory. */
        for (int h0 = 0; h0 < group; h0 += 2) {
            const bool two = h0 + 1 < group;
            float4 o[2][2] = {};
#pragma unroll 8
            for (int j = warp; j < n; j += ATT_WARPS) {
                float p0 = sc[h0 * sc_stride + j], p1 = two ? sc[(h0 + 1) * sc_stride + j] : 0.0f;
                const size_t vj = V + (size_t)(j0 + j) * D;
#pragma unroll
                for (int cs = 0; cs < 2; cs++) {
                    int d = 4 * (lane + 32 * cs);
                    if (d >= D) break;
                    float4 v = kv_load4(cache, vj + d, f16);
                    o[0][cs].x = fmaf(p0, v.x, o[0][cs].x), o[0][cs].y = fmaf(p0, v.y, o[0][cs].y);
                    o[0][cs].z = fmaf(p0, v.z, o[0][cs].z), o[0][cs].w = fmaf(p0, v.w, o[0][cs].w);
                    o[1][cs].x = fmaf(p1, v.x, o[1][cs].x), o[1][cs].y = fmaf(p1, v.y, o[1][cs].y);
                    o[1][cs].z = fmaf(p1, v.z, o[1][cs].z), o[1][cs].w = fmaf(p1, v.w, o[1][cs].w);
                }
            }
#pragma unroll
            for (int hp = 0; hp < 2; hp++)
#pragma unroll
                for (int cs = 0; cs < 2; cs++) {
                    int d = 4 * (lane + 32 * cs);
                    if (d < D) *(float4 *)(o_red + (warp * 2 + hp) * D + d) = o[hp][cs];
                }
            sync();
            for (int i = tid; i < (two ? 2 : 1) * D; i += ATT_THREADS) {
                int hp = i / D, d = i % D;
                float sum = 0.0f;
#pragma unroll
                for (int w = 0; w < ATT_WARPS; w++) sum += o_red[(w * 2 + hp) * D + d];
                if (S == 1)   /* the whole context in one range: the answer */
                    ((float *)a.out)[(row0 + h0 + hp) * D + d] = sum / l_s[h0 + hp];
                else
                    part_o[((prow0 + h0 + hp) * stride + s) * D + d] = sum;
            }
            sync();
        }
    }
    tl_mark(TL_ATTN, TL_MID, a.caches.p[0]);
    if (S == 1) return;
    if (tid < group) {
        float *ml = part_ml + ((prow0 + tid) * stride + s) * 2;
        ml[0] = m_s[tid];
        ml[1] = l_s[tid];
    }

    /* The last block of (token, kv head g) combines the ranges. The fence makes this
     * block's partials visible before its count is; the reads below bypass
     * L1 (__ldcg), which may hold stale lines. */
    __threadfence();
    sync();
    if (tid == 0) is_last = atomicAdd(counter, 1) == S - 1;
    sync();
    if (!is_last) return;
    __threadfence();
    /* every head at once: warp h the weights e^(m_s - M) of head h's
     * ranges, then all threads the outputs - two waits on memory, not two
     * per head */
    for (int h = warp; h < group; h += ATT_WARPS) {
        const float *ml = part_ml + (prow0 + h) * stride * 2;
        float mv[MAX_SPLIT / 32], lv[MAX_SPLIT / 32], M = -CUDART_INF_F, den = 0.0f;
#pragma unroll
        for (int i = 0; i < MAX_SPLIT / 32; i++) {
            int r = lane + 32 * i;
            mv[i] = r < S ? __ldcg(ml + 2 * r) : -CUDART_INF_F;
            lv[i] = r < S ? __ldcg(ml + 2 * r + 1) : 0.0f;
            M = fmaxf(M, mv[i]);
        }
        M = warp_max(M);
#pragma unroll
        for (int i = 0; i < MAX_SPLIT / 32; i++) {
            int r = lane + 32 * i;
            float w = lv[i] > 0.0f ? expf(mv[i] - M) : 0.0f;   /* an empty range: its o was never written */
            if (r < S) w_s[h][r] = w;
            den = fmaf(w, lv[i], den);
        }
        den = warp_sum(den);
        if (lane == 0) den_s[h] = den;
    }
    sync();
    /* then the partial outputs, every load issued before the first sum: P
     * = group x D/4 float4 columns, Q slices of the ranges a column (Q x P
     * threads, so a column's 64 ranges at 4,096 positions are 16 loads of
     * each of 4 threads, one trip to L2), the slices added in shared memory
     * (o_red: 16 D floats, Q x P float4s at most) */
    const int nc = D / 4, P = group * nc, Q = P >= ATT_THREADS ? 1 : min(ATT_THREADS / P, 16 / group);
    float4 *red = (float4 *)o_red;
    for (int i = tid; i < P * Q; i += ATT_THREADS) {
        const int p = i % P, q = i / P, h = p / nc, c = p - h * nc;
        const float4 *o = (const float4 *)(part_o + (prow0 + h) * stride * D) + c;
        float4 num = make_float4(0, 0, 0, 0);
        for (int r0 = q; r0 < S; r0 += CMB_LOADS * Q) {
            float4 v[CMB_LOADS];
#pragma unroll
            for (int k = 0; k < CMB_LOADS; k++) {
                const int r = r0 + k * Q;
                v[k] = r < S ? __ldcg(o + (size_t)r * nc) : make_float4(0, 0, 0, 0);
            }
#pragma unroll
            for (int k = 0; k < CMB_LOADS; k++) {
                const int r = r0 + k * Q;
                const float w = r < S ? w_s[h][r] : 0.0f;
                if (w != 0.0f)
                    num.x = fmaf(w, v[k].x, num.x), num.y = fmaf(w, v[k].y, num.y), num.z = fmaf(w, v[k].z, num.z),
                    num.w = fmaf(w, v[k].w, num.w);
            }
        }
        if (Q == 1) {
            const float inv = 1.0f / den_s[h];
            ((float4 *)a.out)[((row0 + h) * D) / 4 + c] = make_float4(num.x * inv, num.y * inv, num.z * inv, num.w * inv);
        } else {
            red[i] = num;
        }
    }
    if (Q > 1) {
        sync();
        for (int p = tid; p < P; p += ATT_THREADS) {
            const int h = p / nc, c = p - h * nc;
            float4 sum = red[p];
            for (int q = 1; q < Q; q++) {
                const float4 v = red[q * P + p];
                sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
            }
            const float inv = 1.0f / den_s[h];
            ((float4 *)a.out)[((row0 + h) * D) / 4 + c] = make_float4(sum.x * inv, sum.y * inv, sum.z * inv, sum.w * inv);
        }
    }
    if (tid == 0) *counter = 0;
}

/* one kernel per head-dim bound and cache type (ops_cuda.c picks by a.caches.f16): block (x, y, z) is
 * range x of kv head y of token t0 + z. MINB: blocks an SM the compiler
 * must leave room for. At depth 4096 a token has 8 x 65 blocks, and 4 an
 * SM (64 registers a thread) run them in one wave on 132 SMs; at 80
 * registers (3 an SM) the last 124 waited for a second wave: tg128 at
 * depth 4096 bf16 with an f16 cache 692 -> 778 tok/s when bounded (H100,
 * session 14). D 256 keeps its registers (bounded, it spills). */
#define ATT_KERNEL(name, DV, F16, MINB)                                                                            \
    extern "C" __global__ void __launch_bounds__(ATT_THREADS, MINB) name(fs_cu_attn a) {                           \
        __shared__ att_shared sh;                                                                                  \
        pdl_launch_dependents();                                                                                   \
        tl_mark(TL_ATTN, TL_START, a.caches.p[0]);                                                                 \
        attention_decode<DV, F16>(a, blockIdx.x, blockIdx.y, blockIdx.z, (float *)dyn_smem, sh, block_sync());    \
        tl_mark(TL_ATTN, TL_END, a.caches.p[0]);                                                                   \
    }
ATT_KERNEL(attention_decode_128, 4, 0, 4)
ATT_KERNEL(attention_decode_256, 8, 0, 1)
ATT_KERNEL(attention_decode_128_f16, 4, 1, 4)
ATT_KERNEL(attention_decode_256_f16, 8, 1, 1)
