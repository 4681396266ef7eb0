/* gemm_skinny.cu - the matmul of a few tokens (2 <= T <= 64) on the tensor
 * cores: a batched decode step, where each of up to 64 conversations
 * brings one token.
 *
 *   y_i[t, n] (+)= sum_k in[t, k] * W_i[n, k]     in: [T, K] (bf16, xb)   W_i: [N_i, K]   y_i: [T, N_i] f32
 *
 * Why a third matmul kernel. One token is a race to stream the weights
 * (gemv.cu); a prefill chunk of 512 is arithmetic (gemm.cu). In between,
 * 64 tokens use each weight 64 times - still little arithmetic for a
 * tensor core - but the big-tile GEMM spends its time elsewhere: its 64 x
 * 128 tiles leave most SMs idle or cut K into slices whose partial tiles
 * go through L2, and every weight takes a detour through shared memory.
 * Measured on the H200 (src/cuda/NOTES.md, session 4): 19-26 us per
 * matmul of a 64-token step for 4-12 MB of weights, 0.3-0.4 TB/s.
 *
 * So this kernel is a GEMV that happens to use the tensor cores. The
 * weights are the MMA's A operand, its M = 16 rows; the tokens are B, its
 * N = 8 columns (T is the small side: "swap A and B"). A warp owns 16
 * weight rows; its lanes load the weights straight from memory into the
 * registers where mma.sync wants them - no shared memory on the way, 16
 * bytes per load, as the GEMV does. Only the input, T rows of bf16, sits
 * in shared memory, shared by the block's 8 warps (128 rows).
 *
 * The one trick: which k goes where. mma.m16n8k16 gives lane (g, q) =
 * (lane / 4, lane % 4) the A elements of rows g and g + 8 at columns 2q,
 * 2q + 1 (register 0 / 1) and 2q + 8, 2q + 9 (register 2 / 3). A dot
 * product does not care in which order its k are summed, so the kernel
 * renames them: lane q loads 16 bytes of its row - E consecutive weights,
 * k = E q .. E q + E - 1 of a "window" of 4 E - and feeds them, two by
 * two, into successive mma steps: step s takes weights E q + 4 s .. + 3,
 * the first pair as "columns 2q, 2q+1", the second as "2q+8, 2q+9". The
 * input must be renamed the same way, and it is: lane (g, q)'s B
 * registers for step s are the same four k of token g, 8 contiguous bytes
 * of shared memory. No shuffles; the 16-byte load of bf16 is already two
 * steps of A, in the layout mma wants (element 2i in the low half).
 *
 * Quantized and f16 weights are decoded in registers to bf16 pairs, in
 * the same order: q8_0 (16 per vector, 4 steps) and q4_0 (a whole block of
 * 32, 8 steps: low nibbles are k 0-15, high nibbles 16-31), each d * q
 * rounded to bf16 as gemm.cu does; the numbers of this kernel are the
 * GEMM's (bf16 inputs and weights, f32 accumulation: the T > 1
 * tolerance, gemm.cu's header).
 *
 * Mapping. Block = 8 warps, rows 128 b .. 128 b + 127 of all the call's
 * layers concatenated (q, k, v in one pass). K is walked in chunks of CK
 * (the input chunk, TP x CK bf16, fills 64 KB of shared memory: CK = 512
 * at 64 tokens, 4096 at 8); within a chunk each warp loads U windows of
 * its 16 rows (2 U vectors a lane in flight), multiplies, and goes on. The
 * first weights of a chunk are loaded before the block waits for its
 * input. Where the call has fewer blocks than SMs (o_proj and down_proj,
 * N = 1024: 8 blocks), K is also cut into slices across blocks
 * (blockIdx.y, ops_cuda.c chooses how many); each slice parks its 128 x
 * TP partial tile and the last to arrive adds them in slice order, so the
 * result does not depend on timing. The 8 warps' accumulators go through
 * shared memory at the end so that each output is written by one thread
 * (consecutive threads: consecutive rows).
 *
 * Shared rows are padded so that a quarter warp's 16-byte reads (2 tokens
 * x 4 lanes) fall on distinct banks for 8- and 16-weight vectors; q4_0's
 * 64 bytes a lane leave a 2-way conflict.
 *
 * Uses gemm.cu's helpers (mma_bf16, pack_bf16, cp_async16: kernels.cu is
 * one compilation unit) and gemv.cu's byte_f.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

#define SK_WARPS 8
#define SK_THREADS (SK_WARPS * 32)
#define SK_ROWS (SK_WARPS * 16)         /* rows per block */
#define SK_CHUNK_BYTES 65536            /* the input chunk in shared memory */
#define SK_SPLIT_MAX FS_CU_GEMM_SPLIT_MAX

/* A 16-byte vector of one weight row: E weights, decoded into E / 2 words
 * of two bf16 in k order (element 2i in the low half). */
template <int DT> struct skv;

template <> struct skv<FS_CU_BF16> {
    enum { E = 8, QUANT = 0 };
    __device__ static void decode(uint4 v, float, uint32_t *o) { o[0] = v.x, o[1] = v.y, o[2] = v.z, o[3] = v.w; }
};

template <> struct skv<FS_CU_F16> {
    enum { E = 8, QUANT = 0 };
    __device__ static void decode(uint4 v, float, uint32_t *o) {
        const uint32_t in[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 f = __half22float2(*(const __half2 *)&in[i]);
            o[i] = pack_bf16(f.x, f.y);
        }
    }
};

template <> struct skv<FS_CU_Q8_0> {   /* 16 int8 of a block; q ^ 0x80 = q + 128 as a byte (gemv.cu) */
    enum { E = 16, QUANT = 1 };
    __device__ static void decode(uint4 v, float d, uint32_t *o) {
        const uint32_t in[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t u = in[i] ^ 0x80808080u;
            o[2 * i] = pack_bf16(d * (byte_f(u, 0) - 8388736.0f), d * (byte_f(u, 1) - 8388736.0f));
            o[2 * i + 1] = pack_bf16(d * (byte_f(u, 2) - 8388736.0f), d * (byte_f(u, 3) - 8388736.0f));
        }
    }
};

template <> struct skv<FS_CU_Q4_0> {   /* a whole block: byte j is weight j (low nibble) and j + 16 (high) */
    enum { E = 32, QUANT = 1 };
    __device__ static void decode(uint4 v, float d, uint32_t *o) {
        const uint32_t in[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t lo = in[i] & 0x0F0F0F0Fu, hi = (in[i] >> 4) & 0x0F0F0F0Fu;
            o[2 * i] = pack_bf16(d * (byte_f(lo, 0) - 8388616.0f), d * (byte_f(lo, 1) - 8388616.0f));
            o[2 * i + 1] = pack_bf16(d * (byte_f(lo, 2) - 8388616.0f), d * (byte_f(lo, 3) - 8388616.0f));
            o[8 + 2 * i] = pack_bf16(d * (byte_f(hi, 0) - 8388616.0f), d * (byte_f(hi, 1) - 8388616.0f));
            o[8 + 2 * i + 1] = pack_bf16(d * (byte_f(hi, 2) - 8388616.0f), d * (byte_f(hi, 3) - 8388616.0f));
        }
    }
};

/* Shared-memory geometry per dtype and token tiles: chunk CK (weights of
 * a row per chunk), row stride LD (bf16, padded; see the header). */
template <int E, int NT> struct skgeo {
    enum {
        TP = 8 * NT,
        CK = SK_CHUNK_BYTES / 2 / TP,
        LD = CK + (E == 16 ? 8 : 32),
    };
};

/* Weights streamed once: not kept in L1 (the input chunk and the other
 * warps' data are what L1 and shared memory are for). */
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

template <int DT, int NT, int U>
__device__ __forceinline__ void gemm_skinny(const fs_cu_mm &a) {
    using V = skv<DT>;
    using G = skgeo<V::E, NT>;
    constexpr int E = V::E, W = 4 * E;          /* weights of a row per window (a quad's 4 vectors) */
    constexpr int TP = G::TP, CK = G::CK, LD = G::LD;
    constexpr int CW = CK / W;                  /* windows per chunk */
    static_assert(CW % U == 0, "a chunk holds whole groups of windows");
    constexpr int STEPS = E / 4;                /* mma k-steps per window */
    __nv_bfloat16 *xs = (__nv_bfloat16 *)dyn_smem;   /* [TP][LD] */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
    const int T = a.T, K = a.K, n_vec = K / E, n_win = (n_vec + 3) / 4;
    /* this block's slice of K, in windows */
    const int w_lo = (int)blockIdx.y * n_win / (int)gridDim.y, w_hi = ((int)blockIdx.y + 1) * n_win / (int)gridDim.y;
    const int row_base = (int)blockIdx.x * SK_ROWS + warp * 16;   /* the warp's 16 rows */

    /* rows g and g + 8 of the warp */
    const uint4 *wr[2];
    const uint16_t *sr[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int row = row_base + g + 8 * h;
        wr[h] = nullptr;
        sr[h] = nullptr;
        if (row < a.N_total) {
            const fs_cu_linear &L = a.out[layer_of(a, row)];
            size_t n = (size_t)(row - L.row0);
            wr[h] = (const uint4 *)L.w + n * (size_t)n_vec;
            if (V::QUANT) sr[h] = (const uint16_t *)L.scales + n * (size_t)(K / 32);
        }
    }

    uint4 wv[U][2];
    float sc[U][2];
    /* group j of chunk c: windows w_lo + c CW + j U .. + U - 1, lane q's vector of each */
    auto load = [&](int c, int j) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            int wi = w_lo + c * CW + j * U + u, v = 4 * wi + q;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                bool ok = wr[h] && wi < w_hi && v < n_vec;
                wv[u][h] = ok ? ld_stream(wr[h] + v) : make_uint4(0, 0, 0, 0);
                sc[u][h] = V::QUANT && ok ? f16_to_f32(__ldg(sr[h] + v * E / 32)) : 0.0f;
            }
        }
    };

    float acc[NT][4];
#pragma unroll
    for (int i = 0; i < NT; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;

    const int n_chunk = (w_hi - w_lo + CW - 1) / CW;
    load(0, 0);   /* weights depend on no earlier kernel */
    pdl_launch_dependents();
    pdl_wait();
    for (int c = 0; c < n_chunk; c++) {
        /* the chunk's input: TP rows x CK bf16, 16 bytes a piece (rows past
         * T and k past K are zeros: 0 x 0 where the weights are zeros too) */
        const int k0 = (w_lo + c * CW) * W;
        /* the groups of this chunk the slice has (the loop below stops at
         * the first group past w_hi): the columns it will read */
        const int groups = (min(w_hi - (w_lo + c * CW), CW) + U - 1) / U, cols = groups * U * W / 8;
        if (c > 0) {
            load(c, 0);
            __syncthreads();   /* every warp is done with the last chunk */
        }
        for (int p = threadIdx.x; p < TP * cols; p += SK_THREADS) {
            int t = p / cols, k = k0 + (p % cols) * 8;
            bool ok = t < T && k < K;
            cp_async16(xs + t * LD + (p % cols) * 8, (const __nv_bfloat16 *)a.xb + (ok ? (size_t)t * K + k : 0), ok);
        }
        asm volatile("cp.async.commit_group;\ncp.async.wait_all;\n" ::: "memory");
        __syncthreads();
        for (int j = 0; j < groups; j++) {
            if (j > 0) load(c, j);
#pragma unroll
            for (int u = 0; u < U; u++) {
                uint32_t A0[E / 2], A1[E / 2];   /* rows g, g + 8 */
                V::decode(wv[u][0], sc[u][0], A0);
                V::decode(wv[u][1], sc[u][1], A1);
                const __nv_bfloat16 *xw = xs + (j * U + u) * W + q * E;   /* this lane's k of the window */
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    const __nv_bfloat16 *xt = xw + (nt * 8 + g) * LD;
#pragma unroll
                    for (int s2 = 0; s2 < STEPS / 2; s2++) {   /* 16 bytes of the input: two steps */
                        uint4 b = *(const uint4 *)(xt + 8 * s2);
                        const uint32_t a0[4] = {A0[4 * s2], A1[4 * s2], A0[4 * s2 + 1], A1[4 * s2 + 1]};
                        const uint32_t b0[2] = {b.x, b.y};
                        mma_bf16(acc[nt], a0, b0);
                        const uint32_t a1[4] = {A0[4 * s2 + 2], A1[4 * s2 + 2], A0[4 * s2 + 3], A1[4 * s2 + 3]};
                        const uint32_t b1[2] = {b.z, b.w};
                        mma_bf16(acc[nt], a1, b1);
                    }
                }
            }
        }
    }

    /* The 8 warps' 16 x TP tiles through shared memory, red[tok][row]
     * (row fastest): C fragment c0, c1 at (row g, tokens 2q, 2q + 1), c2,
     * c3 at row g + 8. */
    __syncthreads();
    float *red = (float *)dyn_smem;
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            int tok = nt * 8 + 2 * q, row = warp * 16 + g + 8 * hh;
            red[tok * SK_ROWS + row] = acc[nt][2 * hh];
            red[(tok + 1) * SK_ROWS + row] = acc[nt][2 * hh + 1];
        }
    __syncthreads();
    const int row0 = (int)blockIdx.x * SK_ROWS;
    if (gridDim.y == 1) {
        for (int i = threadIdx.x; i < TP * SK_ROWS; i += SK_THREADS) {
            int tok = i / SK_ROWS, row = row0 + i % SK_ROWS;
            if (tok >= T || row >= a.N_total) continue;
            const fs_cu_linear &L = a.out[layer_of(a, row)];
            float *y = (float *)L.y + (size_t)tok * L.N + (row - L.row0);
            *y = L.add ? *y + red[i] : red[i];
        }
        return;
    }
    /* Split over K: park this slice's tile (TP x 128, as red), and the last
     * slice of the block's rows to arrive adds all of them in slice order
     * and resets the count for the next call. */
    float *part = (float *)a.part + (size_t)blockIdx.x * gridDim.y * TP * SK_ROWS;
    float *mine = part + (size_t)blockIdx.y * TP * SK_ROWS;
    for (int i = 4 * threadIdx.x; i < TP * SK_ROWS; i += 4 * SK_THREADS) *(float4 *)(mine + i) = *(const float4 *)(red + i);
    __shared__ int is_last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) is_last = atomicAdd((int *)a.counter + blockIdx.x, 1) == (int)gridDim.y - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    for (int i = 4 * threadIdx.x; i < TP * SK_ROWS; i += 4 * SK_THREADS) {
        float4 p[SK_SPLIT_MAX];
#pragma unroll
        for (int z = 0; z < SK_SPLIT_MAX; z++)
            if (z < (int)gridDim.y) p[z] = __ldcg((const float4 *)(part + (size_t)z * TP * SK_ROWS + i));
        float4 s = p[0];
#pragma unroll
        for (int z = 1; z < SK_SPLIT_MAX; z++)
            if (z < (int)gridDim.y) s.x += p[z].x, s.y += p[z].y, s.z += p[z].z, s.w += p[z].w;
        const float s4[4] = {s.x, s.y, s.z, s.w};
        const int tok = i / SK_ROWS;
        if (tok >= T) continue;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int row = row0 + i % SK_ROWS + e;
            if (row >= a.N_total) break;
            const fs_cu_linear &L = a.out[layer_of(a, row)];
            float *y = (float *)L.y + (size_t)tok * L.N + (row - L.row0);
            *y = L.add ? *y + s4[e] : s4[e];
        }
    }
    if (threadIdx.x == 0) ((int *)a.counter)[blockIdx.x] = 0;
}

/* One kernel per weight format and token tiles (NT x 8 >= T: 1, 2, 4 or 8);
 * U windows per load group: 2 vectors x U a lane in flight. */
#define GEMM_SKINNY(name, DT, U)                                                                                              \
    extern "C" __global__ void __launch_bounds__(SK_THREADS) gemm_skinny_##name##_8(fs_cu_mm a) { gemm_skinny<DT, 1, U>(a); }  \
    extern "C" __global__ void __launch_bounds__(SK_THREADS) gemm_skinny_##name##_16(fs_cu_mm a) { gemm_skinny<DT, 2, U>(a); } \
    extern "C" __global__ void __launch_bounds__(SK_THREADS) gemm_skinny_##name##_32(fs_cu_mm a) { gemm_skinny<DT, 4, U>(a); } \
    extern "C" __global__ void __launch_bounds__(SK_THREADS) gemm_skinny_##name##_64(fs_cu_mm a) { gemm_skinny<DT, 8, U>(a); }
GEMM_SKINNY(bf16, FS_CU_BF16, 4)
GEMM_SKINNY(f16, FS_CU_F16, 4)
GEMM_SKINNY(q8_0, FS_CU_Q8_0, 2)
GEMM_SKINNY(q4_0, FS_CU_Q4_0, 2)
