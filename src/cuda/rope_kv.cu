/* rope_kv.cu - the attention inputs of a step, made ready: q/k/v biases,
 * QK-norm, RoPE, and the store of K and V into the cache. One kernel
 * instead of five.
 *
 *   q: [T, Hq, D], k, v: [T, Hkv, D]   q_norm, k_norm: [D] or none
 *   q_bias [Hq*D], k_bias, v_bias [Hkv*D] or none (Qwen2)
 *   q[t,h] = rope(rmsnorm(q[t,h] + q_bias[h], q_norm), p)   p = pos[t] (from the step)
 *   k[t,g] = rope(rmsnorm(k[t,g] + k_bias[g], k_norm), p)   both in place
 *   v[t,g] += v_bias[g]
 *   K[g, p, :] = k[t,g],  V[g, p, :] = v[t,g]      of caches[seq[t]]
 *   rope: for i < D/2, the pair (x[i], x[i + D/2]) turns by p * inv_freq[i]
 *
 * Mapping. One warp per head of one token: T * (Hq + Hkv + Hkv) warps, the
 * last Hkv of each token only copy v. Lane l holds the pairs
 * (i, i + D/2) for i = l, l + 32, ... (D <= 256: at most 4 pairs), so the
 * norm is a warp shuffle sum and the rotation needs no exchange at all.
 * Each token reads its position and its sequence from the step, and writes
 * into that sequence's cache (a batched step's tokens go to different
 * caches; fs_cu_caches).
 *
 * q, k and v are read through L2 (__ldcg), never a stale L1 line: in the
 * persistent decode step the same buffers are rewritten by other blocks
 * between two layers of one launch.
 *
 * Angles follow the reference (src/cpu/rope_kv.c) step by step: the angle is
 * one f32 product p * inv_freq[i] (inv_freq is forward.c's f32 table), and
 * its cos and sin are computed in double and rounded once - the GPU's
 * double units make that affordable for the few hundred angles of a step.
 * Products are rounded before the sums, as the reference evaluates them.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

#define ROPE_WARPS 4

/* cos and sin of position p's angle i, the reference's way (above) */
__device__ __forceinline__ float2 rope_angle(int p, fs_cu_ptr inv_freq, int i) {
    const float angle = __fmul_rn((float)p, ((const float *)inv_freq)[i]);
    double sn, cs;
    sincos((double)angle, &sn, &cs);
    return make_float2((float)cs, (float)sn);
}

/* The work of warp gw (of T * (Hq + 2 Hkv)): one head of one token. The
 * kernel below maps its warps onto it; so does the persistent decode step
 * (persist.cu), which runs this op as one of its phases - or, folded into
 * attention, has each attention block rotate the query heads it needs
 * into its own shared memory: q_out non-NULL (a query head only) takes
 * the result instead of q, which is then left as it was. */
__device__ __forceinline__ void rope_kv_warp(const fs_cu_rope &a, int gw, float *q_out = nullptr,
                                             const float2 *tab = nullptr, int tab_t0 = 0) {
    const int lane = threadIdx.x & 31;
    const int heads = a.Hq + 2 * a.Hkv;
    if (gw >= step_T(a.step) * heads) return;
    const int t = gw / heads, hh = gw % heads, D = a.D, half = D / 2;
    const int *tok = step_token(a.step, t);
    const int p = tok[FS_CU_TOK_POS], sq = tok[FS_CU_TOK_SEQ];   /* its position, its sequence's cache */
    const int n_ctx = a.caches.n_ctx[sq];
    /* element offsets into this sequence's cache (f32 or f16: kv_store) */
    void *cache = (void *)a.caches.p[sq];
    const int f16 = a.caches.f16;
    const size_t V_off = (size_t)a.Hkv * n_ctx * D;

    if (hh >= a.Hq + a.Hkv) {   /* v: copy into the cache */
        int g = hh - a.Hq - a.Hkv;
        float *v = (float *)a.v + ((size_t)t * a.Hkv + g) * D;
        const size_t dst = V_off + ((size_t)g * n_ctx + p) * D;
        pdl_wait();
        if (a.v_bias) {
            for (int i = lane; i < D; i += 32) {
                float x = __fadd_rn(__ldcg(v + i), weight_at(a.v_bias, a.v_bias_dtype, (size_t)g * D + i));
                v[i] = x;
                kv_store(cache, dst + i, x, f16);
            }
            return;
        }
        for (int i = lane; i < D; i += 32) kv_store(cache, dst + i, __ldcg(v + i), f16);
        return;
    }
    const bool is_q = hh < a.Hq;
    const int h = is_q ? hh : hh - a.Hq;
    float *x = is_q ? (float *)a.q + ((size_t)t * a.Hq + h) * D : (float *)a.k + ((size_t)t * a.Hkv + h) * D;
    const fs_cu_ptr w = is_q ? a.q_norm : a.k_norm;
    const int w_dtype = is_q ? a.q_norm_dtype : a.k_norm_dtype;
    const fs_cu_ptr bias = is_q ? a.q_bias : a.k_bias;   /* this head's D values start at h * D */
    const int b_dtype = is_q ? a.q_bias_dtype : a.k_bias_dtype;

    float c[4], s[4], w_lo[4], w_hi[4], b_lo[4], b_hi[4];
#pragma unroll
    for (int m = 0; m < 4; m++) {
        int i = lane + 32 * m;
        c[m] = s[m] = w_lo[m] = w_hi[m] = b_lo[m] = b_hi[m] = 0.0f;
        if (i < half) {
            /* the block's table (rope_kv below), or computed here */
            const float2 cs = tab ? tab[(size_t)(t - tab_t0) * half + i] : rope_angle(p, a.inv_freq, i);
            c[m] = cs.x;
            s[m] = cs.y;
            if (w) w_lo[m] = weight_at(w, w_dtype, i), w_hi[m] = weight_at(w, w_dtype, i + half);
            if (bias) {
                b_lo[m] = weight_at(bias, b_dtype, (size_t)h * D + i);
                b_hi[m] = weight_at(bias, b_dtype, (size_t)h * D + i + half);
            }
        }
    }
    pdl_wait();
    tl_mark(TL_ROPE, TL_WAITED, a.caches.p[0]);

    float lo[4], hi[4];
    float ss = 0.0f;
#pragma unroll
    for (int m = 0; m < 4; m++) {
        int i = lane + 32 * m;
        lo[m] = i < half ? __fadd_rn(__ldcg(x + i), b_lo[m]) : 0.0f;   /* + 0 where there is no bias: exact */
        hi[m] = i < half ? __fadd_rn(__ldcg(x + i + half), b_hi[m]) : 0.0f;
        ss = fmaf(lo[m], lo[m], ss);
        ss = fmaf(hi[m], hi[m], ss);
    }
    if (w) {
        float scale = rms_scale(warp_sum(ss), D, a.eps);
#pragma unroll
        for (int m = 0; m < 4; m++) {
            lo[m] = __fmul_rn(w_lo[m], __fmul_rn(lo[m], scale));
            hi[m] = __fmul_rn(w_hi[m], __fmul_rn(hi[m], scale));
        }
    }
    const size_t k_dst = ((size_t)h * n_ctx + p) * D;
#pragma unroll
    for (int m = 0; m < 4; m++) {
        int i = lane + 32 * m;
        if (i >= half) break;
        float r_lo = __fsub_rn(__fmul_rn(lo[m], c[m]), __fmul_rn(hi[m], s[m]));
        float r_hi = __fadd_rn(__fmul_rn(hi[m], c[m]), __fmul_rn(lo[m], s[m]));
        float *dst = q_out && is_q ? q_out : x;
        dst[i] = r_lo;
        dst[i + half] = r_hi;
        if (!is_q) {
            kv_store(cache, k_dst + i, r_lo, f16);
            kv_store(cache, k_dst + i + half, r_hi, f16);
        }
    }
}

/* The kernel: warp w of block b is head gw = b * ROPE_WARPS + w. The
 * heads of a token share their angles, so the block computes them once
 * for its tokens (one or two: ROPE_WARPS consecutive heads), a thread
 * per angle, into shared memory: where every warp computed its own, a
 * prefill chunk of 512 tokens evaluated each cos and sin 32 times over
 * (Qwen3-0.6B: 16 + 8 + 8 heads a token) in double precision. Measured
 * (H100, src/cuda/NOTES.md session 14): a chunk's rope_kv 0.44 -> 0.41 ms
 * over 28 layers, a decode step's 1.84 -> 1.74 us - less than the
 * instruction count promised; the loads, not the trig, bound it. */
#define ROPE_MAX_HALF 128   /* D <= 256 (fs_cuda_reserve checks) */
extern "C" __global__ void __launch_bounds__(ROPE_WARPS * 32) rope_kv(fs_cu_rope a) {
    /* The step was written before this recorded step began, not by the
     * previous kernel: it, the angles and the norm weights can be read
     * before waiting for q, k, v (programmatic launch, common.cuh). */
    pdl_launch_dependents();
    __shared__ float2 tab[ROPE_WARPS * ROPE_MAX_HALF];
    const int heads = a.Hq + 2 * a.Hkv, half = a.D / 2, T = step_T(a.step);
    const int gw0 = blockIdx.x * ROPE_WARPS, t0 = gw0 / heads;
    const int t1 = min((gw0 + ROPE_WARPS - 1) / heads, T - 1);   /* the block's last token */
    for (int e = threadIdx.x; e < (t1 - t0 + 1) * half; e += blockDim.x) {
        const int t = t0 + e / half;
        tab[e] = rope_angle(step_token(a.step, t)[FS_CU_TOK_POS], a.inv_freq, e % half);
    }
    __syncthreads();
    tl_mark(TL_ROPE, TL_START, a.caches.p[0]);
    rope_kv_warp(a, gw0 + (threadIdx.x >> 5), nullptr, tab, t0);
    tl_mark(TL_ROPE, TL_END, a.caches.p[0]);
}
