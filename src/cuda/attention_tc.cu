/* attention_tc.cu - causal attention of a prefill chunk (T > 1) on the
 * tensor cores: FlashAttention-2's structure with mma.sync.
 *
 *   q, out: [T, Hq, D]   cache K, V: [Hkv, n_ctx, D], filled for 0 .. pos0+T-1
 *   out[t,h] = sum_{j <= pos0+t} softmax_j(q[t,h] . K[g,j] / sqrt(D)) V[g,j]
 *   (one sequence's tokens at consecutive positions pos0 .. pos0+T-1; a
 *   step that mixes sequences goes to attention.cu)
 *
 * For head dims 64 and 128 (the f32 kernel in attention_prefill.cu serves
 * the others). A prefill chunk's attention is 4 T^2 D Hq / 2 flops, which
 * the f32 kernel computes at ~5 TFLOP/s; here both products run on the
 * tensor cores.
 *
 * Mapping. A block takes 16 query rows - 16 / group consecutive tokens
 * times the group of query heads that share kv head g. Its 4 warps split
 * the keys: warp w walks key tiles w, w + 4, w + 8, ... of 32 keys, each
 * with its own K and V buffers (a chunk of 512 tokens has only 512 query
 * tiles of 16 rows, so splitting the keys is what gives the GPU enough
 * warps: run 4 had one warp per 16 rows and 4 warps per SM). At the end
 * the warps' partial softmaxes are merged through shared memory, like the
 * splits of the decode kernel. Per warp and key tile:
 *   S = Q K^T   16 x 32: 4 mma tiles of 16x8, k = D in steps of
 *               16; Q's fragments stay in registers for the whole walk,
 *               K's come from shared memory (ldmatrix, rows = keys).
 *   softmax     online (running max m and sum l per row, the output
 *               rescaled by e^(m_old - m_new) when the max grows); a row's
 *               64 scores are spread over the 4 lanes of a quad, so its max
 *               and sum are 2-step shuffles.
 *   O += P V    P never leaves registers: the 16x8 f32 accumulator tiles of
 *               S, rounded to bf16 in pairs, are exactly the A fragments of
 *               the next mma (FlashAttention-2's trick); V's fragments come
 *               from shared memory with ldmatrix.trans (V is stored
 *               [key][d], the mma wants it [d][key]).
 * K and V tiles are converted from the f32 cache to bf16 as they are
 * stored to shared memory.
 *
 * Numerics (T > 1 tolerance): q, K, V and the probabilities are rounded to
 * bf16; products accumulate in f32; softmax is f32. Expect ~1e-3 relative.
 *
 * Docs: docs/gpu.md, docs/kv-cache.md
 */
#include <math_constants.h>

#include "common.cuh"

#define TC_WARPS 4   /* each walks every 4th key tile */
#define TC_ROWS 16   /* query rows per block: one mma tile */
#define TC_KEYS 32   /* keys per tile */

__device__ __forceinline__ void tc_ldmatrix_x4(uint32_t r[4], const void *p, bool trans) {
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    if (trans)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

__device__ __forceinline__ void tc_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t tc_pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&h;
}

/* rows [ROWS][D] f32 (or f16: a KV cache made f16) from src (row r at
 * src_row(r), NULL: zeros) -> bf16
 * in shared memory. 8 loads per thread in flight before the first store:
 * a loop that stores each load before issuing the next waits one L2 round
 * trip per float4 (run 3: 2.8 ms of a 512-token prefill). */
template <int D, int ROWS, int NT, typename F>   /* NT threads, this one is `me` */
__device__ __forceinline__ void tc_load_tile(__nv_bfloat16 *dst, F src_row, int me, int f16 = 0) {
    constexpr int LD = D + 8, C4 = D / 4, N = ROWS * C4, BATCH = 8;
    for (int i0 = me; i0 < N; i0 += NT * BATCH) {
        float4 v[BATCH];
#pragma unroll
        for (int b = 0; b < BATCH; b++) {
            int i = i0 + b * NT;
            const void *row = i < N ? src_row(i / C4) : nullptr;
            v[b] = row ? kv_load4(row, (size_t)(i % C4) * 4, f16) : make_float4(0, 0, 0, 0);
        }
#pragma unroll
        for (int b = 0; b < BATCH; b++) {
            int i = i0 + b * NT;
            if (i < N) *(uint2 *)(dst + (i / C4) * LD + (i % C4) * 4) = make_uint2(tc_pack(v[b].x, v[b].y), tc_pack(v[b].z, v[b].w));
        }
    }
}

template <int D, int F16>   /* F16: the cache's elements */
__device__ __forceinline__ void attention_tc(const fs_cu_attn &a) {
    constexpr int LD = D + 8;   /* bf16 per shared row: (D + 8) * 2 bytes, ldmatrix conflict-free */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gq = lane >> 2, tq = lane & 3;
    /* shared: Q [16][LD], then per warp K [32][LD] and V [32][LD] */
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)dyn_smem;
    __nv_bfloat16 *Ks = Qs + TC_ROWS * LD + warp * 2 * TC_KEYS * LD, *Vs = Ks + TC_KEYS * LD;
    pdl_launch_dependents();
    pdl_wait();
    /* one sequence's prompt (ops_cuda.c sends no other step here): token t
     * at position pos0 + t of caches[seq of token 0] */
    const int *tok0 = step_token(a.step, 0);
    const int T = step_T(a.step), pos0 = tok0[FS_CU_TOK_POS];
    const size_t n_ctx = (size_t)a.caches.n_ctx[tok0[FS_CU_TOK_SEQ]];
    const void *cache = (const void *)a.caches.p[tok0[FS_CU_TOK_SEQ]];
    constexpr int f16 = F16, esz = f16 ? 2 : 4;   /* bytes per cached element (compile time) */
    const int group = a.Hq / a.Hkv, BQ = TC_ROWS / group;   /* tokens per block */
    const int g = blockIdx.y, t0 = blockIdx.x * BQ;
    const float *q = (const float *)a.q;
    const char *Kg = (const char *)cache + (size_t)g * n_ctx * D * esz;
    const char *Vg = (const char *)cache + ((size_t)a.Hkv + g) * n_ctx * D * esz;

    /* query row r = (token t0 + r / group, head g * group + r % group) */
    tc_load_tile<D, TC_ROWS, TC_WARPS * 32>(Qs, [&](int r) -> const void * {
        int t = t0 + r / group;
        return r < BQ * group && t < T ? q + ((size_t)t * a.Hq + g * group + r % group) * D : nullptr;
    }, threadIdx.x);
    __syncthreads();
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) tc_ldmatrix_x4(qf[kk], Qs + (lane & 15) * LD + kk * 16 + (lane >> 4) * 8, false);

    /* this thread's two rows: gq and gq + 8; rows past T use token t0 */
    int pos[2];
    bool live[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int r = gq + 8 * i, t = t0 + r / group;
        live[i] = r < BQ * group && t < T;
        pos[i] = pos0 + (live[i] ? t : t0);
    }
    const int last_pos = pos0 + min(t0 + BQ, T) - 1;
    const float scale = (float)(1.0 / sqrt((double)D));
    float m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.0f, 0.0f};
    float o[D / 8][4] = {};

    for (int j0 = warp * TC_KEYS; j0 <= last_pos; j0 += TC_WARPS * TC_KEYS) {
        __syncwarp();   /* this warp's previous tile is no longer read */
        tc_load_tile<D, TC_KEYS, 32>(Ks, [&](int r) -> const void * { return j0 + r <= last_pos ? Kg + (size_t)(j0 + r) * D * esz : nullptr; }, lane, f16);
        tc_load_tile<D, TC_KEYS, 32>(Vs, [&](int r) -> const void * { return j0 + r <= last_pos ? Vg + (size_t)(j0 + r) * D * esz : nullptr; }, lane, f16);
        __syncwarp();

        float s[TC_KEYS / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
            for (int np = 0; np < TC_KEYS / 16; np++) {
                uint32_t r[4];
                tc_ldmatrix_x4(r, Ks + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8, false);
                tc_mma(s[2 * np], qf[kk], r[0], r[1]);
                tc_mma(s[2 * np + 1], qf[kk], r[2], r[3]);
            }

        /* scale, causal mask, online softmax: s[nt][e] is row (e < 2 ? 0 : 1), key j0 + nt*8 + 2 tq + (e & 1) */
        float tmax[2] = {-CUDART_INF_F, -CUDART_INF_F};
#pragma unroll
        for (int nt = 0; nt < TC_KEYS / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = j0 + nt * 8 + 2 * tq + (e & 1);
                float v = key <= pos[e >> 1] ? s[nt][e] * scale : -CUDART_INF_F;
                s[nt][e] = v;
                tmax[e >> 1] = fmaxf(tmax[e >> 1], v);
            }
        float corr[2], psum[2] = {0.0f, 0.0f}, m_use[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            tmax[i] = fmaxf(tmax[i], __shfl_xor_sync(0xffffffffu, tmax[i], 1));
            tmax[i] = fmaxf(tmax[i], __shfl_xor_sync(0xffffffffu, tmax[i], 2));
            float m_new = fmaxf(m[i], tmax[i]);
            /* a row can have no key yet in this warp's tiles (its keys are
             * all later): keep it empty, without computing inf - inf */
            m_use[i] = m_new == -CUDART_INF_F ? 0.0f : m_new;
            corr[i] = expf(m[i] - m_use[i]);
            m[i] = m_new;
        }
#pragma unroll
        for (int nt = 0; nt < TC_KEYS / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float p = expf(s[nt][e] - m_use[e >> 1]);
                s[nt][e] = p;
                psum[e >> 1] += p;
            }
#pragma unroll
        for (int i = 0; i < 2; i++) {
            psum[i] += __shfl_xor_sync(0xffffffffu, psum[i], 1);
            psum[i] += __shfl_xor_sync(0xffffffffu, psum[i], 2);
            l[i] = l[i] * corr[i] + psum[i];
        }
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++) {
            o[dt][0] *= corr[0], o[dt][1] *= corr[0];
            o[dt][2] *= corr[1], o[dt][3] *= corr[1];
        }

        /* O += P V, 16 keys per step */
#pragma unroll
        for (int kk = 0; kk < TC_KEYS / 16; kk++) {
            uint32_t pa[4] = {tc_pack(s[2 * kk][0], s[2 * kk][1]), tc_pack(s[2 * kk][2], s[2 * kk][3]),
                              tc_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), tc_pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t r[4];
                tc_ldmatrix_x4(r, Vs + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD + dp * 16 + (lane >> 4) * 8, true);
                tc_mma(o[2 * dp], pa, r[0], r[1]);
                tc_mma(o[2 * dp + 1], pa, r[2], r[3]);
            }
        }
    }

    /* Merge the 4 warps' rows: M = max m_w, out = sum_w e^(m_w - M) o_w / sum_w e^(m_w - M) l_w.
     * The K/V buffers become [4][16][D] f32 partial outputs and [4][16][2] (m, l). */
    __syncthreads();
    float *red = (float *)(Qs + TC_ROWS * LD), *ml = red + TC_WARPS * TC_ROWS * D;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int r = gq + 8 * i;
        if (tq == 0) {
            ml[(warp * TC_ROWS + r) * 2] = m[i];
            ml[(warp * TC_ROWS + r) * 2 + 1] = l[i];
        }
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++)
            *(float2 *)(red + (warp * TC_ROWS + r) * D + dt * 8 + 2 * tq) = make_float2(o[dt][2 * i], o[dt][2 * i + 1]);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < TC_ROWS * D; i += TC_WARPS * 32) {
        int r = i / D, d = i % D, t = t0 + r / group;
        if (r >= BQ * group || t >= T) continue;
        float M = -CUDART_INF_F;
#pragma unroll
        for (int w = 0; w < TC_WARPS; w++) M = fmaxf(M, ml[(w * TC_ROWS + r) * 2]);
        float num = 0.0f, den = 0.0f;
#pragma unroll
        for (int w = 0; w < TC_WARPS; w++) {
            float mw = ml[(w * TC_ROWS + r) * 2];
            if (mw == -CUDART_INF_F) continue;   /* this warp saw no key of row r */
            float f = expf(mw - M);
            num = fmaf(f, red[(w * TC_ROWS + r) * D + d], num);
            den = fmaf(f, ml[(w * TC_ROWS + r) * 2 + 1], den);
        }
        ((float *)a.out)[((size_t)t * a.Hq + g * group + r % group) * D + d] = num / den;
    }
}

extern "C" __global__ void __launch_bounds__(TC_WARPS * 32) attention_tc_64(fs_cu_attn a) { attention_tc<64, 0>(a); }
extern "C" __global__ void __launch_bounds__(TC_WARPS * 32) attention_tc_128(fs_cu_attn a) { attention_tc<128, 0>(a); }
extern "C" __global__ void __launch_bounds__(TC_WARPS * 32) attention_tc_64_f16(fs_cu_attn a) { attention_tc<64, 1>(a); }
extern "C" __global__ void __launch_bounds__(TC_WARPS * 32) attention_tc_128_f16(fs_cu_attn a) { attention_tc<128, 1>(a); }
