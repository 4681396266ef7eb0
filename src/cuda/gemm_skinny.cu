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
 * in shared memory, shared by the block's 8 warps.
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
 * Mapping. Block = 8 warps: RW row groups of 16 rows (rows of all the
 * call's layers concatenated: q, k, v in one pass) x 8 / RW k groups
 * (skgeo; ops_cuda.c picks RW = 8, 2 or 1). K is walked in chunks of CW
 * windows (the input chunk, TP rows of bf16, ~64 KB of shared memory);
 * within a chunk k group kg takes the groups of U windows kg, kg + KW,
 * ..., loads them for its 16 rows (2 U vectors a lane in flight),
 * multiplies, and goes on. The first weights of a chunk are loaded before
 * the block waits for its input. Where the call has too few blocks for
 * the SMs (o_proj and down_proj at 64 tokens: 64 blocks of 16 rows), K is
 * also cut into slices across blocks (blockIdx.y, ops_cuda.c chooses how
 * many); each slice parks its TP x 16 RW partial tile and the last to
 * arrive adds them in slice order, so the result does not depend on
 * timing. The warps' accumulators go through shared memory at the end:
 * the k groups' sums are added in order, and each output is written by
 * one thread (consecutive threads: consecutive rows), every load it needs
 * (partials, y) issued before its first store.
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

/* Shared-memory geometry per dtype, token tiles and warps: a block's 8
 * warps are RW row groups of 16 rows x KW = 8 / RW k groups. A chunk of
 * the input holds CW windows (W weights of a row each): as many as
 * SK_CHUNK_BYTES allow, and at least one group of U windows for every k
 * group. LD: the bf16 row stride, padded (see the header). */
template <int E, int NT, int U, int RW> struct skgeo {
    enum {
        TP = 8 * NT,
        W = 4 * E,
        KW = SK_WARPS / RW,
        CWB = SK_CHUNK_BYTES / 2 / TP / W,
        CW = CWB > KW * U ? CWB : KW * U,
        CK = CW * W,
        LD = CK + (E == 16 ? 8 : 32),
        BR = 16 * RW,                               /* rows per block */
        NO = TP * BR / SK_THREADS > 0 ? TP * BR / SK_THREADS : 1,   /* outputs per thread at the end */
        ZMAX = 64 / NO < SK_SPLIT_MAX ? 64 / NO : SK_SPLIT_MAX,     /* K slices the last block adds (ops_cuda.c) */
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

template <int DT, int NT, int U, int RW>
__device__ __forceinline__ void gemm_skinny(const fs_cu_mm &a) {
    using V = skv<DT>;
    using G = skgeo<V::E, NT, U, RW>;
    constexpr int E = V::E, W = G::W;           /* weights of a row per window (a quad's 4 vectors) */
    constexpr int TP = G::TP, CW = G::CW, LD = G::LD, KW = G::KW, BR = G::BR, NO = G::NO;
    static_assert(CW % U == 0, "a chunk holds whole groups of windows");
    constexpr int STEPS = E / 4;                /* mma k-steps per window */
    __nv_bfloat16 *xs = (__nv_bfloat16 *)dyn_smem;   /* [TP][LD] */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
    const int rg = warp % RW, kg = warp / RW;   /* the warp's row group and k group */
    const int T = a.T, K = a.K, n_vec = K / E, n_win = (n_vec + 3) / 4;
    /* this block's slice of K, in windows */
    const int w_lo = (int)blockIdx.y * n_win / (int)gridDim.y, w_hi = ((int)blockIdx.y + 1) * n_win / (int)gridDim.y;
    const int row0 = (int)blockIdx.x * BR, row_base = row0 + rg * 16;   /* the block's and the warp's rows */

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
    /* group gi of chunk c: windows w_lo + c CW + gi U .. + U - 1, lane q's
     * vector of each (past the slice: zeros) */
    auto load = [&](int c, int gi) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            int wi = w_lo + c * CW + gi * U + u, v = 4 * wi + q;
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
    load(0, kg);   /* weights depend on no earlier kernel */
    pdl_launch_dependents();
    pdl_wait();
    for (int c = 0; c < n_chunk; c++) {
        const int k0 = (w_lo + c * CW) * W;
        /* the groups of this chunk the slice has: k group kg takes groups
         * kg, kg + KW, ...; the columns they read */
        const int groups = (min(w_hi - (w_lo + c * CW), CW) + U - 1) / U, cols = groups * U * W / 8;
        if (c > 0) {
            load(c, kg);
            __syncthreads();   /* every warp is done with the last chunk */
        }
        /* the chunk's input: TP rows x cols pieces of 16 bytes (rows past T
         * and k past K are zeros: 0 x 0 where the weights are zeros too) */
        for (int p = threadIdx.x; p < TP * cols; p += SK_THREADS) {
            int t = p / cols, k = k0 + (p % cols) * 8;
            bool ok = t < T && k < K;
            cp_async16(xs + t * LD + (p % cols) * 8, (const __nv_bfloat16 *)a.xb + (ok ? (size_t)t * K + k : 0), ok);
        }
        asm volatile("cp.async.commit_group;\ncp.async.wait_all;\n" ::: "memory");
        __syncthreads();
        for (int gi = kg; gi < groups; gi += KW) {
            if (gi != kg) load(c, gi);
#pragma unroll
            for (int u = 0; u < U; u++) {
                uint32_t A0[E / 2], A1[E / 2];   /* rows g, g + 8 */
                V::decode(wv[u][0], sc[u][0], A0);
                V::decode(wv[u][1], sc[u][1], A1);
                const __nv_bfloat16 *xw = xs + (gi * U + u) * W + q * E;   /* this lane's k of the window */
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

    /* The warps' 16 x TP tiles through shared memory, red[kg][tok][BR rows]
     * (C fragment: c0, c1 at (row g, tokens 2q, 2q + 1), c2, c3 at row
     * g + 8); then each output is the sum over the k groups in order. */
    __syncthreads();
    float *red = (float *)dyn_smem;
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            int tok = nt * 8 + 2 * q, row = rg * 16 + g + 8 * hh;
            red[(kg * TP + tok) * BR + row] = acc[nt][2 * hh];
            red[(kg * TP + tok + 1) * BR + row] = acc[nt][2 * hh + 1];
        }
    __syncthreads();
    /* Thread tid ends row r = tid % BR of the block, tokens t0 + k TS
     * (consecutive threads: consecutive rows, one layer lookup). Every
     * load a thread needs is issued before the first result is used: the
     * partial tiles, then y where the layer adds to it. */
    constexpr int TS = SK_THREADS / BR > 0 ? SK_THREADS / BR : 1;
    const int r = threadIdx.x % BR, t0 = threadIdx.x / BR, row = row0 + r;
    float val[NO];
#pragma unroll
    for (int k = 0; k < NO; k++) {
        int tok = t0 + k * TS;
        float s = 0.0f;
#pragma unroll
        for (int z = 0; z < KW; z++) s += tok < TP ? red[(z * TP + tok) * BR + r] : 0.0f;
        val[k] = s;
    }
    if (gridDim.y > 1) {
        /* Split over K: park this slice's tile ([TP][BR], as red), and the
         * last slice of the block's rows to arrive adds all of them in
         * slice order and resets the count for the next call. */
        float *part = (float *)a.part + (size_t)blockIdx.x * gridDim.y * TP * BR;
        float *mine = part + (size_t)blockIdx.y * TP * BR;
#pragma unroll
        for (int k = 0; k < NO; k++)
            if (t0 + k * TS < TP) mine[(t0 + k * TS) * BR + r] = val[k];
        __shared__ int is_last;
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) is_last = atomicAdd((int *)a.counter + blockIdx.x, 1) == (int)gridDim.y - 1;
        __syncthreads();
        if (!is_last) return;
        __threadfence();
        float p[G::ZMAX][NO];
#pragma unroll
        for (int z = 0; z < G::ZMAX; z++)
#pragma unroll
            for (int k = 0; k < NO; k++)
                if (z < (int)gridDim.y && t0 + k * TS < TP) p[z][k] = __ldcg(part + ((size_t)z * TP + t0 + k * TS) * BR + r);
#pragma unroll
        for (int k = 0; k < NO; k++) {
            float s = p[0][k];
#pragma unroll
            for (int z = 1; z < G::ZMAX; z++)
                if (z < (int)gridDim.y) s += p[z][k];
            val[k] = s;
        }
        if (threadIdx.x == 0) ((int *)a.counter)[blockIdx.x] = 0;
    }
    if (row >= a.N_total) return;
    const fs_cu_linear &L = a.out[layer_of(a, row)];
    float *y = (float *)L.y + (row - L.row0);
    float old[NO];
#pragma unroll
    for (int k = 0; k < NO; k++) {
        int tok = t0 + k * TS;
        old[k] = L.add && tok < T ? y[(size_t)tok * L.N] : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < NO; k++) {
        int tok = t0 + k * TS;
        if (tok < T) y[(size_t)tok * L.N] = old[k] + val[k];
    }
}

/* One kernel per weight format, token tiles (NT x 8 >= T: 8, 16, 32 or
 * 64) and row groups (RW: 8, 2 or 1 of 16 rows a block; ops_cuda.c takes
 * the most that still give every SM a block); U windows per load group:
 * 2 vectors x U a lane in flight. */
#define SK_KERNEL(name, DT, U, T, NT, RW) \
    extern "C" __global__ void __launch_bounds__(SK_THREADS) gemm_skinny_##name##_##T##_r##RW(fs_cu_mm a) { gemm_skinny<DT, NT, U, RW>(a); }
#define SK_ROWS_T(name, DT, U, T, NT) SK_KERNEL(name, DT, U, T, NT, 8) SK_KERNEL(name, DT, U, T, NT, 2) SK_KERNEL(name, DT, U, T, NT, 1)
#define GEMM_SKINNY(name, DT, U) \
    SK_ROWS_T(name, DT, U, 8, 1) SK_ROWS_T(name, DT, U, 16, 2) SK_ROWS_T(name, DT, U, 32, 4) SK_ROWS_T(name, DT, U, 64, 8)
GEMM_SKINNY(bf16, FS_CU_BF16, 2)
GEMM_SKINNY(f16, FS_CU_F16, 2)
GEMM_SKINNY(q8_0, FS_CU_Q8_0, 1)
GEMM_SKINNY(q4_0, FS_CU_Q4_0, 1)
