/* gemv_stage.cu - the decode matmul (T = 1) with its weights staged in
 * shared memory before it waits: the same product as gemv.cu,
 *
 *   y_i[n] (+)= sum_k in[k] * W_i[n, k]
 *
 * but shaped for a chain of small dependent kernels (a decode step).
 *
 * Why. A decode step is ~170 kernels, each of which must wait for the one
 * before it (its input is the previous output). With programmatic launches
 * (common.cuh) a kernel starts early and can load what does not depend on
 * its predecessor - its weights - before it waits. gemv.cu loads a first
 * chunk into registers that way, but registers are few: the kernel after
 * the next cannot even start until blocks of this one leave, so most of a
 * layer's 31.5 MB still streams while the chain waits. Shared memory is
 * larger (up to 227 KB a block, 228 KB an SM: ~30 MB over the H200's 132
 * SMs, about a layer of Qwen3-0.6B in bf16). Here each block copies ALL of
 * its rows into shared memory first, with the copy engine (the TMA's bulk
 * copy: one instruction per contiguous range, completion counted in bytes
 * on an mbarrier), then tells the next kernel it may start
 * (pdl_launch_dependents), and only then waits for its input. The next
 * kernel does the same, and so on while shared memory lasts: the weights
 * of the next few matmuls stream from memory while the chain of dependent
 * steps runs, and a kernel whose turn comes finds its weights on chip.
 *
 * Mapping. Block b owns rows [b R, b R + R) of the call's rows (the layers
 * of the call concatenated, as in gemv.cu; R = stage_rows, chosen by the
 * host so that the copy fits its budget: ops_cuda.c). In shared memory:
 * the prepared input row (padded, gemv.cu's xpad), a copy of the norm's
 * weights, the R rows' weights, and for Q8_0 / Q4_0 the rows' scales.
 * Eight warps take the rows in turn; lane l of a warp takes the 16-byte
 * vectors l, l + 32, ... of its row - 512 contiguous bytes of shared
 * memory per instruction, no bank conflicts - in the same order as gemv.cu
 * does, so the dot products are its unsplit kernel's; not the outputs bit
 * for bit, though: a fused norm's sum of squares is reduced over 8 warps
 * here, and gemv.cu takes its split kernel for o_proj and down_proj.
 *
 * sm_90 only (the bulk copy and mbarrier transaction counts are Hopper's);
 * the host uses gemv.cu's kernels elsewhere, for the lm_head (311 MB: it
 * cannot be staged, it is streamed) and where a row's bytes are not
 * 16-byte multiples. FS_CUDA_GEMV_STAGE=0 turns it off (A/B), =N sets the
 * budget per block to N KB.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

#define STAGE_WARPS 8


template <int DT>
__device__ __forceinline__ void gemv_stage(const fs_cu_mm &a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    char *sm = (char *)dyn_smem;
    float *xs = (float *)sm;
    __shared__ float red[32];
    __shared__ __align__(8) unsigned long long bar[2];   /* [0] the norm's weights, [1] the rows */
    constexpr int E = vec<DT>::E;
    constexpr bool QUANT = DT == FS_CU_Q8_0 || DT == FS_CU_Q4_0;
    const int n_vec = a.K / E;                    /* 16-byte vectors per row */
    const unsigned wrow = (unsigned)n_vec * 16;   /* bytes of a row's weights */
    const unsigned srow = QUANT ? (unsigned)a.K / 16 : 0;   /* ... and of its f16 scales */
    const int r0 = blockIdx.x * a.stage_rows;
    const int nr = min(a.stage_rows, a.N_total - r0);

    /* One thread starts the copies: the norm's weights on bar[0] (small,
     * wanted first), every row on bar[1]. A block's rows of one layer are
     * contiguous in memory, so each layer it touches is one copy (two
     * with scales). */
    if (threadIdx.x == 0) {
        mbar_init(&bar[0], 1);
        mbar_init(&bar[1], 1);
        mbar_init_fence();
        if (a.norm) {
            unsigned nb = (unsigned)a.K * (a.norm_dtype == FS_CU_F32 ? 4u : 2u);
            mbar_arrive_expect(&bar[0], nb);
            bulk_copy(sm + a.stage_norm_off, (const void *)a.norm, nb, &bar[0]);
        }
        mbar_arrive_expect(&bar[1], (unsigned)nr * (wrow + srow));
        for (int i = 0; i < a.n_out; i++) {
            const fs_cu_linear &L = a.out[i];
            int lo = max(r0, L.row0), hi = min(r0 + nr, L.row0 + L.N);
            if (lo >= hi) continue;
            bulk_copy(sm + a.stage_w_off + (size_t)(lo - r0) * wrow, (const char *)L.w + (size_t)(lo - L.row0) * wrow,
                      (unsigned)(hi - lo) * wrow, &bar[1]);
            if (QUANT)
                bulk_copy(sm + a.stage_s_off + (size_t)(lo - r0) * srow,
                          (const char *)L.scales + (size_t)(lo - L.row0) * srow, (unsigned)(hi - lo) * srow, &bar[1]);
        }
    }
    /* The next kernel may start (and stage its own weights); then wait for
     * this one's input. The barrier makes bar's initialization visible to
     * every thread before any waits on it. */
    pdl_launch_dependents();
    pdl_wait();
    __syncthreads();
    load_input<2>(a, 0, xs, red, a.norm ? (fs_cu_ptr)(sm + a.stage_norm_off) : 0, a.norm ? &bar[0] : nullptr);
    mbar_wait(&bar[1], 0);

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const uint4 *W = (const uint4 *)(sm + a.stage_w_off);
    const uint16_t *S = (const uint16_t *)(sm + a.stage_s_off);
    for (int r = warp; r < nr; r += STAGE_WARPS) {
        const uint4 *wr = W + (size_t)r * n_vec;
        const uint16_t *sr = S + (size_t)r * (a.K / 32);
        float acc = 0.0f;
#pragma unroll 4
        for (int v = lane; v < n_vec; v += 32) {
            float s = vec<DT>::dot(wr[v], xs + xpad(v * E));
            acc = QUANT ? fmaf(f16_to_f32(sr[v * E / 32]), s, acc) : acc + s;
        }
        acc = warp_sum(acc);
        if (lane == 0) {
            const fs_cu_linear &L = a.out[layer_of(a, r0 + r)];
            float *y = (float *)L.y + (r0 + r - L.row0);
            *y = L.add ? *y + acc : acc;
        }
    }
#else
    (void)a;
#endif
}

#define GEMV_STAGE(name, DT) \
    extern "C" __global__ void __launch_bounds__(STAGE_WARPS * 32) gemv_stage_##name(fs_cu_mm a) { gemv_stage<DT>(a); }
GEMV_STAGE(bf16, FS_CU_BF16)
GEMV_STAGE(f16, FS_CU_F16)
GEMV_STAGE(f32, FS_CU_F32)
GEMV_STAGE(q8_0, FS_CU_Q8_0)
GEMV_STAGE(q4_0, FS_CU_Q4_0)
