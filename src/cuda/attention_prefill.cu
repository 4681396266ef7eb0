/* attention_prefill.cu - causal attention of a prefill chunk (T > 1),
 * tiled, with the online softmax of FlashAttention.
 *
 *   q, out: [T, Hq, D]   cache K, V: [Hkv, n_ctx, D], filled for 0 .. pos0+T-1
 *   out[t,h] = sum_{j <= pos0+t} softmax_j(q[t,h] . K[g,j] / sqrt(D)) V[g,j]
 *   (one sequence's tokens at consecutive positions pos0 .. pos0+T-1; a
 *   step that mixes sequences goes to attention.cu)
 *
 * The f32 path for head dims other than 64 and 128 (attention_tc.cu runs
 * those on the tensor cores). The decode kernel (attention.cu) reads the
 * keys once per query; with T
 * queries that would be T passes over the cache. Here a block takes a tile
 * of 32 query rows - BQ consecutive tokens times the Hq / Hkv heads that
 * share kv head g - and walks the keys in tiles of 32 positions, each tile
 * loaded into shared memory once for all 32 rows. A row's softmax is kept
 * online: its running max m, running sum l and unnormalized output o are
 * rescaled by e^(m_old - m_new) whenever a tile raises the max, so scores
 * never need to be stored beyond one tile (FlashAttention, Dao et al.).
 * Causality: key j counts for a row only if j <= its token's position; the
 * walk stops after the tile's last token.
 *
 * Mapping. 256 threads = 32 rows x 8 threads. A row's 8 threads are 8
 * consecutive lanes of one warp: each computes 4 of the tile's 32 scores
 * (keys sub, sub + 8, ...), the row max and sum are 3-step shuffles, and
 * the probabilities pass between them through shared memory with only a
 * __syncwarp. For o, thread sub owns the float4 columns sub, sub + 8, ...
 * of its row. Shared rows are padded by 4 floats, which makes the 8
 * different rows read by one 16-byte instruction fall on different banks.
 *
 * Arithmetic is f32 throughout (no tensor cores): this path has the same
 * accuracy as the decode path, up to the order of the sums.
 *
 * Docs: docs/gpu.md, docs/kv-cache.md
 */
#include <math_constants.h>

#include "common.cuh"

#define PF_ROWS 32
#define PF_KEYS 32
#define PF_MAXC 8   /* float4 columns of o per thread: D <= 8 * 8 * 4 = 256 */

template <int F16>   /* the cache's elements */
__device__ __forceinline__ void attention_prefill(const fs_cu_attn &a) {
    pdl_launch_dependents();
    pdl_wait();
    float *sm = (float *)dyn_smem;
    const int D = a.D, DP = D + 4, group = a.Hq / a.Hkv;
    const int BQ = group >= PF_ROWS ? 1 : PF_ROWS / group;   /* tokens per block */
    const int rows = BQ * group;
    float *Qs = sm, *Ks = Qs + PF_ROWS * DP, *Vs = Ks + PF_KEYS * DP, *Ps = Vs + PF_KEYS * DP;   /* Ps: [32][33] */

    /* one sequence's prompt (ops_cuda.c sends no other step here): token t
     * at position pos0 + t of caches[seq of token 0] */
    const int *tok0 = step_token(a.step, 0);
    const int T = step_T(a.step), pos0 = tok0[FS_CU_TOK_POS];
    const size_t n_ctx = (size_t)a.caches.n_ctx[tok0[FS_CU_TOK_SEQ]];
    const void *cache = (const void *)a.caches.p[tok0[FS_CU_TOK_SEQ]];
    constexpr int f16 = F16;   /* the cache's elements: f32 or f16 (kv_load4), at compile time */
    const int g = blockIdx.y, t0 = blockIdx.x * BQ;
    const int tid = threadIdx.x, r = tid >> 3, sub = tid & 7;

    /* this thread's row: token t, head h; rows past T or past `rows` compute
     * on token t0 and store nothing */
    const int t_r = t0 + r / group;
    const bool live = r < rows && t_r < T;
    const int t = live ? t_r : t0, h = g * group + (r % group);
    const int pos = pos0 + t;
    const int last_pos = pos0 + min(t0 + BQ, T) - 1;

    for (int i = tid; i < PF_ROWS * (D / 4); i += 256) {
        int rr = i / (D / 4), c4 = i % (D / 4);
        int tt = t0 + rr / group;
        float4 v = make_float4(0, 0, 0, 0);
        if (rr < rows && tt < T) v = *(const float4 *)((const float *)a.q + ((size_t)tt * a.Hq + g * group + rr % group) * D + 4 * c4);
        *(float4 *)(Qs + rr * DP + 4 * c4) = v;
    }

    const size_t Kg = (size_t)g * n_ctx * D, Vg = ((size_t)a.Hkv + g) * n_ctx * D;   /* element offsets */
    const float scale = (float)(1.0 / sqrt((double)D));
    float m = -CUDART_INF_F, l = 0.0f;
    float4 o[PF_MAXC];
#pragma unroll
    for (int c = 0; c < PF_MAXC; c++) o[c] = make_float4(0, 0, 0, 0);

    for (int j0 = 0; j0 <= last_pos; j0 += PF_KEYS) {
        __syncthreads();   /* the previous tile is no longer read */
        for (int i = tid; i < PF_KEYS * (D / 4); i += 256) {
            int jj = i / (D / 4), c4 = i % (D / 4);
            float4 kv = make_float4(0, 0, 0, 0), vv = kv;
            if (j0 + jj <= last_pos) {
                kv = kv_load4(cache, Kg + (size_t)(j0 + jj) * D + 4 * c4, f16);
                vv = kv_load4(cache, Vg + (size_t)(j0 + jj) * D + 4 * c4, f16);
            }
            *(float4 *)(Ks + jj * DP + 4 * c4) = kv;
            *(float4 *)(Vs + jj * DP + 4 * c4) = vv;
        }
        __syncthreads();

        float s[4], tile_max = -CUDART_INF_F;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            int jj = sub + 8 * c;
            const float *qr = Qs + r * DP, *kr = Ks + jj * DP;
            float dot = 0.0f;
            for (int d = 0; d < D; d += 4) {
                float4 qv = *(const float4 *)(qr + d), kv = *(const float4 *)(kr + d);
                dot = fmaf(qv.x, kv.x, fmaf(qv.y, kv.y, fmaf(qv.z, kv.z, fmaf(qv.w, kv.w, dot))));
            }
            s[c] = j0 + jj <= pos ? dot * scale : -CUDART_INF_F;
            tile_max = fmaxf(tile_max, s[c]);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 4));
        const float m_new = fmaxf(m, tile_max);   /* finite: key 0 is in every row's first tile */
        const float corr = expf(m - m_new);
        float psum = 0.0f;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            float p = expf(s[c] - m_new);
            Ps[r * 33 + sub + 8 * c] = p;
            psum += p;
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        psum += __shfl_xor_sync(0xffffffffu, psum, 2);
        psum += __shfl_xor_sync(0xffffffffu, psum, 4);
        l = l * corr + psum;
        m = m_new;
        __syncwarp();
#pragma unroll
        for (int c = 0; c < PF_MAXC; c++) {
            o[c].x *= corr;
            o[c].y *= corr;
            o[c].z *= corr;
            o[c].w *= corr;
        }
        for (int jj = 0; jj < PF_KEYS; jj++) {
            float p = Ps[r * 33 + jj];
#pragma unroll
            for (int c = 0; c < PF_MAXC; c++) {
                int d = 4 * (sub + 8 * c);
                if (d >= D) continue;
                float4 vv = *(const float4 *)(Vs + jj * DP + d);
                o[c].x = fmaf(p, vv.x, o[c].x);
                o[c].y = fmaf(p, vv.y, o[c].y);
                o[c].z = fmaf(p, vv.z, o[c].z);
                o[c].w = fmaf(p, vv.w, o[c].w);
            }
        }
    }
    if (!live) return;
    float *out = (float *)a.out + ((size_t)t * a.Hq + h) * D;
    const float inv = 1.0f / l;
#pragma unroll
    for (int c = 0; c < PF_MAXC; c++) {
        int d = 4 * (sub + 8 * c);
        if (d >= D) break;
        *(float4 *)(out + d) = make_float4(o[c].x * inv, o[c].y * inv, o[c].z * inv, o[c].w * inv);
    }
}

extern "C" __global__ void __launch_bounds__(256, 1) attention_prefill_f32(fs_cu_attn a) { attention_prefill<0>(a); }
extern "C" __global__ void __launch_bounds__(256, 1) attention_prefill_f16(fs_cu_attn a) { attention_prefill<1>(a); }
