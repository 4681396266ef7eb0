/* attention.cu - the attention of a decode step (T = 1), split over the
 * context ("flash-decoding").
 *
 *   q, out: [Hq, D]   cache K, V: [Hkv, n_ctx, D] (kernel_args.h)
 *   n = pos0 + 1 keys (positions 0 .. pos0, pos0 read from the step)
 *   out[h] = sum_{j < n} softmax_j(q[h] . K[g, j] / sqrt(D)) V[g, j]     g = h / (Hq / Hkv)
 *
 * One token reads every cached key and value of its layer once: at 4096
 * positions that is 32 MB a layer, more than the layer's weights. To read
 * it at the memory's speed the work must cover the whole GPU, so the
 * context is cut into n_split ranges of `chunk` positions and each
 * (range, kv head) is one block: 8 kv heads x 32 splits = 256 blocks at
 * n_ctx = 4096. n_split depends on the cache's size, never on the
 * position: the same launch serves every step, which is what lets a
 * recorded step replay. Blocks whose range starts past pos0 have nothing
 * to do and say so.
 *
 * A block (4 warps) serves the Hq / Hkv query heads that share its kv
 * head, so each key and value is read once for all of them:
 *   1. scores: 8 lanes per key (each 4 floats of every 32, a 3-step shuffle
 *      sum), 4 keys per warp at a time; scores go to shared memory.
 *   2. per head, the range's max m and l = sum exp(s - m) (one warp each);
 *      scores become exp(s - m).
 *   3. o[h, d] = sum_j exp(s_j - m) V[j, d], thread per d (coalesced rows).
 * Each block writes (m, l, o) of its range to scratch. The last block to
 * finish a kv head (an atomic counter, reset by that block for the next
 * call) combines the ranges:
 *   M = max m_s,  out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s.
 * This costs no extra launch. The result differs from the reference only
 * in rounding (f32 sums in another order).
 *
 * Docs: docs/gpu.md, docs/kv-cache.md
 */
#include <math_constants.h>

#include "common.cuh"

#define ATT_THREADS 128
#define GMAX 16   /* query heads per kv head at most (reserve checks) */

extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_decode(fs_cu_attn a) {
    float *sm = (float *)dyn_smem;
    __shared__ float m_s[GMAX], l_s[GMAX];
    __shared__ int is_last;
    const int s = blockIdx.x, g = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int D = a.D, group = a.Hq / a.Hkv, chunk = a.chunk, S = a.n_split;
    const int n_keys = ((const int *)a.step)[FS_CU_STEP_POS0] + 1;
    const int j0 = s * chunk, n = min(j0 + chunk, n_keys) - j0;   /* keys of this range; <= 0: none */
    float *q_s = sm, *sc = sm + group * D;                         /* q [group][D], scores [group][chunk] */
    const float *K = (const float *)a.cache + (size_t)g * a.n_ctx * D;
    const float *V = (const float *)a.cache + ((size_t)a.Hkv + g) * a.n_ctx * D;
    float *part_o = (float *)a.part_o, *part_ml = (float *)a.part_ml;

    if (n > 0) {
        for (int i = tid; i < group * D; i += ATT_THREADS) q_s[i] = ((const float *)a.q)[(size_t)g * group * D + i];
        __syncthreads();
        const float scale = (float)(1.0 / sqrt((double)D));
        const int sub = lane & 7;
        /* 1. scores. The loop bound is the same for the whole warp, so all
         * 32 lanes reach the shuffles. */
        for (int jw = warp * 4; jw < n; jw += 16) {
            int j = jw + (lane >> 3);
            bool ok = j < n;
            float dot[GMAX];
#pragma unroll
            for (int h = 0; h < GMAX; h++) dot[h] = 0.0f;
            if (ok) {
                const float *kj = K + (size_t)(j0 + j) * D;
                for (int d = sub * 4; d < D; d += 32) {
                    float4 kv = *(const float4 *)(kj + d);
#pragma unroll
                    for (int h = 0; h < GMAX; h++) {
                        if (h >= group) break;
                        float4 qv = *(const float4 *)(q_s + h * D + d);
                        dot[h] = fmaf(qv.x, kv.x, fmaf(qv.y, kv.y, fmaf(qv.z, kv.z, fmaf(qv.w, kv.w, dot[h]))));
                    }
                }
            }
#pragma unroll
            for (int h = 0; h < GMAX; h++) {
                if (h >= group) break;
                float v = dot[h];
                v += __shfl_xor_sync(0xffffffffu, v, 4);
                v += __shfl_xor_sync(0xffffffffu, v, 2);
                v += __shfl_xor_sync(0xffffffffu, v, 1);
                if (ok && sub == 0) sc[h * chunk + j] = v * scale;
            }
        }
        __syncthreads();
        /* 2. max and sum of exponentials per head */
        for (int h = warp; h < group; h += ATT_THREADS / 32) {
            float *sh = sc + h * chunk;
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
        __syncthreads();
        /* 3. the range's weighted sum of values, thread per element d */
        for (int d = tid; d < D; d += ATT_THREADS) {
            float o[GMAX];
#pragma unroll
            for (int h = 0; h < GMAX; h++) o[h] = 0.0f;
#pragma unroll 4
            for (int j = 0; j < n; j++) {
                float v = V[(size_t)(j0 + j) * D + d];
#pragma unroll
                for (int h = 0; h < GMAX; h++) {
                    if (h >= group) break;
                    o[h] = fmaf(sc[h * chunk + j], v, o[h]);
                }
            }
#pragma unroll
            for (int h = 0; h < GMAX; h++) {
                if (h >= group) break;
                part_o[((size_t)(g * group + h) * S + s) * D + d] = o[h];
            }
        }
    }
    if (tid < group) {
        float *ml = part_ml + ((size_t)(g * group + tid) * S + s) * 2;
        ml[0] = n > 0 ? m_s[tid] : -CUDART_INF_F;
        ml[1] = n > 0 ? l_s[tid] : 0.0f;
    }

    /* The last block of kv head g combines the ranges. The fence makes this
     * block's partials visible before its count is; the reads below bypass
     * L1 (__ldcg), which may hold stale lines. */
    __threadfence();
    __syncthreads();
    if (tid == 0) is_last = atomicAdd((int *)a.counter + g, 1) == S - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    for (int i = tid; i < group * D; i += ATT_THREADS) {
        int h = i / D, d = i % D;
        const float *ml = part_ml + (size_t)(g * group + h) * S * 2;
        const float *o = part_o + (size_t)(g * group + h) * S * D + d;
        float M = -CUDART_INF_F;
        for (int r = 0; r < S; r++) M = fmaxf(M, __ldcg(ml + 2 * r));
        float num = 0.0f, den = 0.0f;
        for (int r = 0; r < S; r++) {
            float l = __ldcg(ml + 2 * r + 1);
            if (l == 0.0f) continue;   /* an empty range; its o was never written */
            float w = expf(__ldcg(ml + 2 * r) - M);
            num = fmaf(w, __ldcg(o + (size_t)r * D), num);
            den = fmaf(w, l, den);
        }
        ((float *)a.out)[(size_t)(g * group + h) * D + d] = num / den;
    }
    if (tid == 0) ((int *)a.counter)[g] = 0;
}
