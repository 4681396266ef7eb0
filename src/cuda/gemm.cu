/* gemm.cu - the matmul of a prefill chunk (T > 1): matrix times matrix on
 * the tensor cores.
 *
 *   y_i[t, n] (+)= sum_k in[t, k] * W_i[n, k]     in: [T, K]   W_i: [N_i, K]   y_i: [T, N_i] f32
 *
 * With T tokens each weight is used T times, so a chunk of 512 tokens is
 * arithmetic, not memory: 2 * T * N * K flops. The tensor cores do it with
 * mma.sync.m16n8k16: a warp multiplies a 16x16 bf16 tile of A by a 16x8
 * bf16 tile of B and adds to a 16x8 f32 tile of C, in one instruction.
 *
 * Numerics (the stated tolerance of T > 1): the input is rounded to bf16
 * once (mm_input_bf16 below, after its norm or SwiGLU, in f32), weights are
 * rounded to bf16 as they enter shared memory (bf16 weights are exact;
 * f16 loses 3 mantissa bits; a Q8_0 / Q4_0 weight is d * q rounded to
 * bf16), and products are accumulated in f32. Expect a relative error
 * near 2^-9 per element, ~1e-3 on a dot product's scale, against ~1e-7 for
 * the f32 decode path (gemv.cu).
 *
 * Two kernels share the warp's inner step (warp_mma_k16) and the end
 * (store_tile). The grid of both is (column tiles of all layers of the
 * call, row tiles of T, slices of K): a call with fewer tiles than SMs
 * (a batched decode step's 64 tokens are one row of tiles; o_proj and
 * down_proj have N = 1024) cuts K into slices (ops_cuda.c chooses how
 * many), and the last slice of each tile to finish adds the partial tiles
 * (an atomic counter; the sum is in slice order, so the result does not
 * depend on timing).
 *
 * The pipelined kernel (gemm_pipe: bf16, q8_0, q4_0 weights). A block of
 * 8 warps computes a 64x128 tile of y (64 tokens x 128 outputs); warp w
 * owns rows 32 (w / 4) .. + 31 and outputs 32 (w % 4) .. + 31: 2 x 4 mma
 * tiles of 16x8 per k16. K is walked 64 at a time through a ring of 4
 * shared-memory stages: while the warps multiply stage kt, the copies of
 * stages kt+1 .. kt+3 are in flight (cp.async: global to shared with no
 * registers, one commit group per stage; cp.async.wait_group 2 says stage
 * kt has landed). Loading stage kt+3 begins right after the barrier that
 * says every warp is done with stage kt-1, whose slot it reuses. Thread
 * tid copies the input pieces tid and tid + 256 (16 bytes each: 8 threads
 * a row) and, for bf16 weights, the pieces tid + 256 j of the weight tile
 * (also 8 threads a row), straight into the stage's bf16 tile. For Q8_0 /
 * Q4_0 it copies the block of row tid / 2, columns 32 (tid % 2) .. + 31;
 * quantized blocks go to the stage as stored bytes, and the thread that copied a
 * block decodes it (d * q to bf16) into one of two bf16 tiles just before
 * the barrier of its step: its own cp.async group has completed, so no
 * extra barrier is needed. (Its scale is an ordinary load, issued with
 * the stage's copies and parked in shared memory after the multiply.)
 * Why, and what was measured (H200; src/cuda/NOTES.md, session 4): the
 * first kernel (below) kept one step of 32 in flight, so the depth was
 * meant to hide DRAM latency (up to 3 x 16 KB of weights in flight a
 * block, two blocks per SM: 110.6 KB of shared memory each). It bought
 * nothing: built with 2, 3 or 4 stages the kernel ran at the same ~110
 * TFLOP/s at T = 512 and the same ~25 us for a 64-token qkv. What bounded
 * it was how it pulled bytes from L2: (1) per multiply-add - a 64x128
 * tile reads 384 bytes per step of k for 8,192 multiply-adds (q4_0
 * weights: 200 bytes, 133 TFLOP/s), so bf16 prefill takes 128x128 tiles
 * where they fill the GPU (gemm_pipe128: warp w owns rows 64 (w / 4) ..
 * + 63, 3 stages; 512 bytes for 16,384: qkv 110 -> 147 TFLOP/s); (2) per
 * request - bf16 weight rows copied by thread pairs touched 16 cache lines
 * per warp instruction; 8 threads a row (4 whole lines) made qkv 147 ->
 * 162 TFLOP/s (128x128) and the 64-row lm_head 1.8 -> 2.35 TB/s. fs bench
 * pp512 bf16: first kernel 66.9k, 64x128 70.3k, 128x128 75.7k, with
 * whole-line copies 79.2k (128x128) / 80.5k (64x128). Rows are padded to
 * 144 bytes, so ldmatrix's 8-row x 16-byte reads hit 8 different bank
 * groups.
 *
 * The first kernel (gemm: f16 and f32 weights; all of them under
 * FS_CUDA_GEMM=old, for A/B measurements): a 64x64 tile, 4 warps each a
 * 32x32 quarter, K 32 at a time through two buffers: the next input tile
 * by cp.async, the next weight tile loaded to registers, decoded to bf16
 * there and stored after the multiply. Rows padded to 80 bytes.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

#define BM 64
#define BK 32
#define LDS (BK + 8)   /* bf16 per shared row: 80 bytes, 16-aligned, conflict-free for ldmatrix */

/* mm_input_bf16: xb[t, k] = bf16(in[t, k]). One block per token row; the
 * row is prepared in shared memory by gemv.cu's load_input (so both
 * matmul paths transform their input with the same code), then rounded. */
extern "C" __global__ void __launch_bounds__(128) mm_input_bf16(fs_cu_mm a) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ float red[32];
    float *xs = (float *)dyn_smem;
    const int t = blockIdx.x;
    load_input<6>(a, t, xs, red);
    __nv_bfloat16 *xb = (__nv_bfloat16 *)a.xb + (size_t)t * a.K;
    for (int k = threadIdx.x; k < a.K; k += blockDim.x) xb[k] = __float2bfloat16_rn(xs[xpad(k)]);
}

__device__ __forceinline__ unsigned smem_addr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared without registers; n = 0 writes zeros. */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool ok) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(ok ? 16 : 0));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&h;
}

/* Weight tile loaders: rows n0 .. n0+NR-1, columns k0 .. k0+31 of W into
 * a [NR][LDS] bf16 shared tile (NR = BN, 64 or 32). fetch() issues the
 * global loads (registers, or cp.async for bf16), store() writes the
 * decoded bf16 to shared memory. Rows past N and columns past K are
 * zeros. 128 threads. */
template <int DT, int NR> struct wtile;

template <int NR> struct wtile<FS_CU_BF16, NR> {   /* 16-byte pieces: 4 per row */
    __device__ void fetch(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*s)[LDS]) {
#pragma unroll
        for (int i = 0; i < NR / 32; i++) {
            int idx = threadIdx.x + i * 128, r = idx >> 2, k = k0 + (idx & 3) * 8;
            bool ok = n0 + r < L.N && k < K;
            const __nv_bfloat16 *src = (const __nv_bfloat16 *)L.w + (ok ? (size_t)(n0 + r) * K + k : 0);
            cp_async16(&s[r][(idx & 3) * 8], src, ok);
        }
    }
    __device__ void store(__nv_bfloat16 (*)[LDS]) {}
};

template <int NR> struct wtile<FS_CU_F16, NR> {
    uint4 v[NR / 32];
    __device__ void fetch(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*)[LDS]) {
#pragma unroll
        for (int i = 0; i < NR / 32; i++) {
            int idx = threadIdx.x + i * 128, r = idx >> 2, k = k0 + (idx & 3) * 8;
            bool ok = n0 + r < L.N && k < K;
            v[i] = ok ? __ldg((const uint4 *)((const uint16_t *)L.w + (size_t)(n0 + r) * K + k)) : make_uint4(0, 0, 0, 0);
        }
    }
    __device__ void store(__nv_bfloat16 (*s)[LDS]) {
#pragma unroll
        for (int i = 0; i < NR / 32; i++) {
            int idx = threadIdx.x + i * 128, r = idx >> 2;
            uint32_t in[4] = {v[i].x, v[i].y, v[i].z, v[i].w}, o[4];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                float2 f = __half22float2(*(const __half2 *)&in[j]);
                o[j] = pack_bf16(f.x, f.y);
            }
            *(uint4 *)&s[r][(idx & 3) * 8] = make_uint4(o[0], o[1], o[2], o[3]);
        }
    }
};

template <int NR> struct wtile<FS_CU_F32, NR> {   /* float4 pieces: 8 per row */
    float4 v[NR / 16];
    __device__ void fetch(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*)[LDS]) {
#pragma unroll
        for (int i = 0; i < NR / 16; i++) {
            int idx = threadIdx.x + i * 128, r = idx >> 3, k = k0 + (idx & 7) * 4;
            bool ok = n0 + r < L.N && k < K;
            v[i] = ok ? __ldg((const float4 *)((const float *)L.w + (size_t)(n0 + r) * K + k)) : make_float4(0, 0, 0, 0);
        }
    }
    __device__ void store(__nv_bfloat16 (*s)[LDS]) {
#pragma unroll
        for (int i = 0; i < NR / 16; i++) {
            int idx = threadIdx.x + i * 128, r = idx >> 3;
            *(uint2 *)&s[r][(idx & 7) * 4] = make_uint2(pack_bf16(v[i].x, v[i].y), pack_bf16(v[i].z, v[i].w));
        }
    }
};

/* Q8_0: thread = (row tid/2, half tid%2): 16 int8 and the block's scale
 * (threads past 2 NR idle). */
template <int NR> struct wtile<FS_CU_Q8_0, NR> {
    uint4 v;
    float d;
    __device__ void fetch(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*)[LDS]) {
        int r = threadIdx.x >> 1, h = threadIdx.x & 1;
        bool ok = r < NR && n0 + r < L.N;
        size_t n = ok ? (size_t)(n0 + r) : 0;
        v = ok ? __ldg((const uint4 *)((const int8_t *)L.w + n * K + k0 + h * 16)) : make_uint4(0, 0, 0, 0);
        d = ok ? f16_to_f32(__ldg((const uint16_t *)L.scales + n * (K / 32) + k0 / 32)) : 0.0f;
    }
    __device__ void store(__nv_bfloat16 (*s)[LDS]) {
        int r = threadIdx.x >> 1, h = threadIdx.x & 1;
        if (r >= NR) return;
        uint32_t in[4] = {v.x, v.y, v.z, v.w}, o[8];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float q0 = (float)(int8_t)(in[j] & 0xff), q1 = (float)(int8_t)((in[j] >> 8) & 0xff);
            float q2 = (float)(int8_t)((in[j] >> 16) & 0xff), q3 = (float)(int8_t)(in[j] >> 24);
            o[2 * j] = pack_bf16(d * q0, d * q1);
            o[2 * j + 1] = pack_bf16(d * q2, d * q3);
        }
        *(uint4 *)&s[r][h * 16] = make_uint4(o[0], o[1], o[2], o[3]);
        *(uint4 *)&s[r][h * 16 + 8] = make_uint4(o[4], o[5], o[6], o[7]);
    }
};

/* Q4_0: thread = (row tid/2, half tid%2): 8 bytes of the block's 16, that
 * is weights h*8 .. h*8+7 (low nibbles) and 16+h*8 .. (high nibbles). */
template <int NR> struct wtile<FS_CU_Q4_0, NR> {
    uint2 v;
    float d;
    __device__ void fetch(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*)[LDS]) {
        int r = threadIdx.x >> 1, h = threadIdx.x & 1;
        bool ok = r < NR && n0 + r < L.N;
        size_t n = ok ? (size_t)(n0 + r) : 0;
        v = ok ? __ldg((const uint2 *)((const uint8_t *)L.w + n * (K / 2) + (k0 / 32) * 16 + h * 8)) : make_uint2(0, 0);
        d = ok ? f16_to_f32(__ldg((const uint16_t *)L.scales + n * (K / 32) + k0 / 32)) : 0.0f;
    }
    __device__ void store(__nv_bfloat16 (*s)[LDS]) {
        int r = threadIdx.x >> 1, h = threadIdx.x & 1;
        if (r >= NR) return;
        uint32_t in[2] = {v.x, v.y}, lo[4], hi[4];
#pragma unroll
        for (int j = 0; j < 2; j++) {
            float l[4], u[4];
#pragma unroll
            for (int b = 0; b < 4; b++) {
                uint32_t byte = (in[j] >> (8 * b)) & 0xff;
                l[b] = d * (float)((int)(byte & 15) - 8);
                u[b] = d * (float)((int)(byte >> 4) - 8);
            }
            lo[2 * j] = pack_bf16(l[0], l[1]);
            lo[2 * j + 1] = pack_bf16(l[2], l[3]);
            hi[2 * j] = pack_bf16(u[0], u[1]);
            hi[2 * j + 1] = pack_bf16(u[2], u[3]);
        }
        *(uint4 *)&s[r][h * 8] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
        *(uint4 *)&s[r][16 + h * 8] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
    }
};

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

/* c += a b: A 16x16 (row-major, 4 regs), B 16x8 (column-major, 2 regs), C 16x8 f32. */
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* One k16 step of a warp's 32x32 piece of the tile: A rows wm .. wm+31,
 * B rows (outputs) wn .. wn+31, columns kk .. kk+15 of the shared tiles
 * (rows of LD bf16). ldmatrix.x4 gives a 16x16 A fragment, or the B
 * fragments of two n8 tiles; then 2 x 4 mma. Both kernels use it. */
template <int LD, int MT>
__device__ __forceinline__ void warp_mma_k16(float (&acc)[MT][4][4], const __nv_bfloat16 (*A)[LD],
                                             const __nv_bfloat16 (*B)[LD], int wm, int wn, int kk) {
    const int lane = threadIdx.x & 31;
    uint32_t af[MT][4], bf[4][2];
#pragma unroll
    for (int mi = 0; mi < MT; mi++) ldmatrix_x4(af[mi], &A[wm + mi * 16 + (lane & 15)][kk + (lane >> 4) * 8]);
#pragma unroll
    for (int nj = 0; nj < 2; nj++) {
        uint32_t r[4];
        ldmatrix_x4(r, &B[wn + nj * 16 + (lane >> 4) * 8 + (lane & 7)][kk + ((lane >> 3) & 1) * 8]);
        bf[2 * nj][0] = r[0];
        bf[2 * nj][1] = r[1];
        bf[2 * nj + 1][0] = r[2];
        bf[2 * nj + 1][1] = r[3];
    }
#pragma unroll
    for (int mi = 0; mi < MT; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++) mma_bf16(acc[mi][ni], af[mi], bf[ni]);
}

/* The last slice of a tile to arrive: y (+)= the sum of the k_split
 * partial tiles (TM x TN, row-major, one after another), in slice order.
 * A turn takes NI groups of four outputs per thread (group ii at
 * i0 + 4 ii blockDim.x: each load instruction reads consecutive 16 bytes
 * across the warp), loading all NI x k_split (<= ZN) float4 first. */
template <int TM, int TN, int ZN, int NI>
__device__ __forceinline__ void add_slices(const fs_cu_mm &a, const fs_cu_linear &L, const float *part, int m0, int n0) {
    for (int i0 = 4 * threadIdx.x; i0 < TM * TN; i0 += 4 * NI * blockDim.x) {
        float4 p[NI][ZN];
#pragma unroll
        for (int ii = 0; ii < NI; ii++)
#pragma unroll
            for (int z = 0; z < ZN; z++) {
                int i = i0 + 4 * ii * blockDim.x;
                if (z < a.k_split && i < TM * TN) p[ii][z] = __ldcg((const float4 *)(part + (size_t)z * TM * TN + i));
            }
#pragma unroll
        for (int ii = 0; ii < NI; ii++) {
            int i = i0 + 4 * ii * blockDim.x;
            if (i >= TM * TN) break;
            float4 sum = p[ii][0];
#pragma unroll
            for (int z = 1; z < ZN; z++)
                if (z < a.k_split) sum.x += p[ii][z].x, sum.y += p[ii][z].y, sum.z += p[ii][z].z, sum.w += p[ii][z].w;
            const int t = m0 + i / TN;
            const float s4[4] = {sum.x, sum.y, sum.z, sum.w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int n = n0 + i % TN + e;
                if (t >= a.T || n >= L.N) continue;
                float *y = (float *)L.y + (size_t)t * L.N + n;
                *y = L.add ? *y + s4[e] : s4[e];
            }
        }
    }
}

/* The end of both kernels: the warp's 32x32 accumulators (rows wm.., cols
 * wn.. of the block's TM x TN tile at m0, n0 of layer L) into y, or - split
 * over K - into this slice's partial tile, the last slice of the tile to
 * arrive adding all of them. C fragment: c0, c1 at (row g, cols 2q, 2q+1),
 * c2, c3 at row g + 8. */
template <int TM, int TN, int MT>
__device__ __forceinline__ void store_tile(const fs_cu_mm &a, const fs_cu_linear &L, const float (&acc)[MT][4][4], int wm,
                                           int wn, int m0, int n0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3, T = a.T;
    if (a.k_split > 1) {
        /* Park this slice's tile; the last slice of the tile to arrive adds
         * all of them, in slice order (the same sum whichever block is
         * last), and resets the count for the next call. */
        const int tile = blockIdx.y * gridDim.x + blockIdx.x;
        float *part = (float *)a.part + (size_t)tile * a.k_split * TM * TN;
        float *mine = part + (size_t)blockIdx.z * TM * TN;
#pragma unroll
        for (int mi = 0; mi < MT; mi++)
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    int r = wm + mi * 16 + g + hh * 8, cl = wn + ni * 8 + 2 * q;
                    *(float2 *)&mine[r * TN + cl] = make_float2(acc[mi][ni][2 * hh], acc[mi][ni][2 * hh + 1]);
                }
        __shared__ int is_last;
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) is_last = atomicAdd((int *)a.counter + tile, 1) == a.k_split - 1;
        __syncthreads();
        if (!is_last) return;
        __threadfence();
        /* every slice's partials loaded before the first is added (a loop
         * that adds each as it arrives waits one L2 round trip per slice:
         * with 16 slices that tail was most of a batched decode step's
         * o_proj), and with fewer slices more outputs a turn: 16 loads of
         * 16 bytes in flight per thread whatever the split */
        if (a.k_split <= 4) add_slices<TM, TN, 4, 4>(a, L, part, m0, n0);
        else if (a.k_split <= 8) add_slices<TM, TN, 8, 2>(a, L, part, m0, n0);
        else add_slices<TM, TN, FS_CU_GEMM_SPLIT_MAX, 1>(a, L, part, m0, n0);
        if (threadIdx.x == 0) ((int *)a.counter)[tile] = 0;
        return;
    }
    /* two neighbouring outputs at a time (8 bytes) where the row length
     * keeps them aligned */
    const bool pairs = (L.N & 1) == 0 && (L.y & 7) == 0;
#pragma unroll
    for (int mi = 0; mi < MT; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                int t = m0 + wm + mi * 16 + g + hh * 8, n = n0 + wn + ni * 8 + 2 * q;
                if (t >= T || n >= L.N) continue;
                float *y = (float *)L.y + (size_t)t * L.N + n;
                float v0 = acc[mi][ni][2 * hh], v1 = acc[mi][ni][2 * hh + 1];
                if (pairs) {   /* n + 1 < N: N is even and n is */
                    float2 o = make_float2(v0, v1);
                    if (L.add) {
                        float2 old = *(const float2 *)y;
                        o.x += old.x, o.y += old.y;
                    }
                    *(float2 *)y = o;
                } else {
                    y[0] = L.add ? y[0] + v0 : v0;
                    if (n + 1 < L.N) y[1] = L.add ? y[1] + v1 : v1;
                }
            }
}

/* ---- The first kernel: 64x64 tiles, 4 warps, a 2-stage pipeline ----
 * (f16 and f32 weights, and FS_CUDA_GEMM=old for measuring) */
template <int DT>
__device__ __forceinline__ void gemm(const fs_cu_mm &a) {
    pdl_launch_dependents();
    pdl_wait();
    constexpr int BN = 64;
    __shared__ __align__(16) __nv_bfloat16 As[2][BM][LDS];
    __shared__ __align__(16) __nv_bfloat16 Bs[2][BN][LDS];
    const int warp = threadIdx.x >> 5;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * (BN / 2);   /* the warp's quarter of the tile */

    /* which layer and which of its column tiles this block computes */
    int li = 0;
    while (li + 1 < a.n_out && (int)blockIdx.x >= a.out[li + 1].tile0) li++;
    const fs_cu_linear &L = a.out[li];
    const int n0 = ((int)blockIdx.x - L.tile0) * BN, m0 = blockIdx.y * BM;
    const int T = a.T, K = a.K, n_k_all = (K + BK - 1) / BK;
    /* this block's slice of K (blockIdx.z of k_split) */
    const int kt0 = (int)blockIdx.z * n_k_all / a.k_split, n_k = ((int)blockIdx.z + 1) * n_k_all / a.k_split - kt0;
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)a.xb;

    auto fetch_a = [&](int k0, int buf) {
#pragma unroll
        for (int i = 0; i < 2; i++) {
            int idx = threadIdx.x + i * 128, r = idx >> 2, k = k0 + (idx & 3) * 8;
            bool ok = m0 + r < T && k < K;
            cp_async16(&As[buf][r][(idx & 3) * 8], xb + (ok ? (size_t)(m0 + r) * K + k : 0), ok);
        }
    };

    float acc[2][4][4] = {};
    wtile<DT, BN> wt;
    fetch_a(kt0 * BK, 0);
    wt.fetch(L, K, n0, kt0 * BK, Bs[0]);
    wt.store(Bs[0]);
    asm volatile("cp.async.commit_group;\ncp.async.wait_all;\n" ::: "memory");
    __syncthreads();

    for (int kt = 0; kt < n_k; kt++) {
        const int cur = kt & 1, nxt = cur ^ 1;
        const bool more = kt + 1 < n_k;
        if (more) {
            fetch_a((kt0 + kt + 1) * BK, nxt);
            wt.fetch(L, K, n0, (kt0 + kt + 1) * BK, Bs[nxt]);
            asm volatile("cp.async.commit_group;\n" ::: "memory");
        }
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) warp_mma_k16<LDS, 2>(acc, As[cur], Bs[cur], wm, wn, kk);
        if (more) wt.store(Bs[nxt]);
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        __syncthreads();
    }
    store_tile<BM, BN, 2>(a, L, acc, wm, wn, m0, n0);
}

#define GEMM(name, DT) \
    extern "C" __global__ void __launch_bounds__(128) gemm_##name(fs_cu_mm a) { gemm<DT>(a); }
GEMM(bf16, FS_CU_BF16)
GEMM(f16, FS_CU_F16)
GEMM(f32, FS_CU_F32)
GEMM(q8_0, FS_CU_Q8_0)
GEMM(q4_0, FS_CU_Q4_0)

/* ---- The pipelined kernel: 64x128 tiles, 8 warps, 4 stages of 64 ---- */
#define PBM 64
#define PBN 128
#define PBK 64
#define PLDS (PBK + 8)   /* 72 bf16 = 144 bytes a row: ldmatrix's 8 rows hit 8 different 16-byte bank groups */
#define PSTAGES FS_CU_GEMM_STAGES
#define PTHREADS 256

/* How one weight tile (rows n0 .. n0+127, columns k0 .. k0+63) travels.
 * Thread tid owns row r = tid / 2, columns k0 + 32 h .. + 31 (h = tid % 2):
 * exactly one Q8_0 / Q4_0 block. copy() issues its cp.async pieces: bf16
 * straight into the stage's bf16 tile; quantized bytes into the stage's
 * raw area (RAW 16-byte pieces per thread, piece j of thread tid at
 * raw[j * PTHREADS + tid]: a warp's 16-byte reads and writes are
 * conflict-free). scale() loads the block's scale into a register.
 * decode() turns the thread's own raw bytes (visible to it once its
 * cp.async group has completed: no barrier needed) into bf16 in the tile
 * the warps multiply. Rows past N and blocks past K are zeros (cp.async
 * with a source size of 0 writes zeros; the scale is 0). */
template <int DT> struct wpipe;

/* bf16: nothing to decode, so no thread needs to own a block: piece
 * p = tid + 256 j (j < 4) is row p / 8, columns 8 (p % 8) .. + 7, and
 * each copy instruction of a warp reads 4 whole rows of 128 bytes: 4 cache
 * lines (the quantized mapping below, thread pairs per row, touches 16
 * lines per instruction, a part of each). */
template <> struct wpipe<FS_CU_BF16> {
    static constexpr int RAW = 0;
    __device__ void copy(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*B)[PLDS], uint4 *) {
#pragma unroll
        for (int j = 0; j < PBN * PBK / 8 / PTHREADS; j++) {
            const int p = threadIdx.x + j * PTHREADS, r = p >> 3, c = (p & 7) * 8;
            bool ok = n0 + r < L.N && k0 + c < K;
            const __nv_bfloat16 *src = (const __nv_bfloat16 *)L.w + (ok ? (size_t)(n0 + r) * K + k0 + c : 0);
            cp_async16(&B[r][c], src, ok);
        }
    }
    __device__ float scale(const fs_cu_linear &, int, int, int) { return 0.0f; }
    __device__ void decode(const uint4 *, float, __nv_bfloat16 (*)[PLDS]) {}
};

/* scale of this thread's block: 0 where the block is past N or K */
__device__ __forceinline__ float pipe_scale(const fs_cu_linear &L, int K, int n0, int k0) {
    const int r = threadIdx.x >> 1, c = (threadIdx.x & 1) * 32;
    bool ok = n0 + r < L.N && k0 + c < K;
    return ok ? f16_to_f32(__ldg((const uint16_t *)L.scales + (size_t)(n0 + r) * (K / 32) + (k0 + c) / 32)) : 0.0f;
}

template <> struct wpipe<FS_CU_Q8_0> {   /* 32 int8: two pieces */
    static constexpr int RAW = 2;
    __device__ void copy(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*)[PLDS], uint4 *raw) {
        const int r = threadIdx.x >> 1, c = (threadIdx.x & 1) * 32;
        bool ok = n0 + r < L.N && k0 + c < K;
        const int8_t *src = ok ? (const int8_t *)L.w + (size_t)(n0 + r) * K + k0 + c : (const int8_t *)L.w;
        cp_async16(&raw[threadIdx.x], src, ok);
        cp_async16(&raw[PTHREADS + threadIdx.x], src + (ok ? 16 : 0), ok);
    }
    __device__ float scale(const fs_cu_linear &L, int K, int n0, int k0) { return pipe_scale(L, K, n0, k0); }
    __device__ void decode(const uint4 *raw, float d, __nv_bfloat16 (*B)[PLDS]) {
        const int r = threadIdx.x >> 1, c = (threadIdx.x & 1) * 32;
#pragma unroll
        for (int j = 0; j < 2; j++) {
            uint4 v = raw[j * PTHREADS + threadIdx.x];
            uint32_t in[4] = {v.x, v.y, v.z, v.w}, o[8];
#pragma unroll
            for (int w = 0; w < 4; w++) {
                float q0 = (float)(int8_t)(in[w] & 0xff), q1 = (float)(int8_t)((in[w] >> 8) & 0xff);
                float q2 = (float)(int8_t)((in[w] >> 16) & 0xff), q3 = (float)(int8_t)(in[w] >> 24);
                o[2 * w] = pack_bf16(d * q0, d * q1);
                o[2 * w + 1] = pack_bf16(d * q2, d * q3);
            }
            *(uint4 *)&B[r][c + 16 * j] = make_uint4(o[0], o[1], o[2], o[3]);
            *(uint4 *)&B[r][c + 16 * j + 8] = make_uint4(o[4], o[5], o[6], o[7]);
        }
    }
};

template <> struct wpipe<FS_CU_Q4_0> {   /* 16 bytes: byte i is weight i (low nibble) and 16 + i (high) */
    static constexpr int RAW = 1;
    __device__ void copy(const fs_cu_linear &L, int K, int n0, int k0, __nv_bfloat16 (*)[PLDS], uint4 *raw) {
        const int r = threadIdx.x >> 1, c = (threadIdx.x & 1) * 32;
        bool ok = n0 + r < L.N && k0 + c < K;
        const uint8_t *src = ok ? (const uint8_t *)L.w + (size_t)(n0 + r) * (K / 2) + (k0 + c) / 2 : (const uint8_t *)L.w;
        cp_async16(&raw[threadIdx.x], src, ok);
    }
    __device__ float scale(const fs_cu_linear &L, int K, int n0, int k0) { return pipe_scale(L, K, n0, k0); }
    __device__ void decode(const uint4 *raw, float d, __nv_bfloat16 (*B)[PLDS]) {
        const int r = threadIdx.x >> 1, c = (threadIdx.x & 1) * 32;
        uint4 v = raw[threadIdx.x];
        uint32_t in[4] = {v.x, v.y, v.z, v.w}, lo[8], hi[8];
#pragma unroll
        for (int w = 0; w < 4; w++) {
            float l[4], u[4];
#pragma unroll
            for (int b = 0; b < 4; b++) {
                uint32_t byte = (in[w] >> (8 * b)) & 0xff;
                l[b] = d * (float)((int)(byte & 15) - 8);
                u[b] = d * (float)((int)(byte >> 4) - 8);
            }
            lo[2 * w] = pack_bf16(l[0], l[1]);
            lo[2 * w + 1] = pack_bf16(l[2], l[3]);
            hi[2 * w] = pack_bf16(u[0], u[1]);
            hi[2 * w + 1] = pack_bf16(u[2], u[3]);
        }
        *(uint4 *)&B[r][c] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
        *(uint4 *)&B[r][c + 8] = make_uint4(lo[4], lo[5], lo[6], lo[7]);
        *(uint4 *)&B[r][c + 16] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
        *(uint4 *)&B[r][c + 24] = make_uint4(hi[4], hi[5], hi[6], hi[7]);
    }
};

template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int DT, int TM, int STAGES>
__device__ __forceinline__ void gemm_pipe(const fs_cu_mm &a) {
    pdl_launch_dependents();
    pdl_wait();
    using W = wpipe<DT>;
    constexpr bool QUANT = W::RAW > 0;
    /* dynamic shared memory (ops_cuda.c's gemm_pipe_smem computes the same):
     * As[STAGES] input tiles, Bs[STAGES] (bf16) or Bs[2] (decoded)
     * weight tiles, then for quantized weights raw[STAGES] and the
     * scales sc[STAGES][PTHREADS] */
    typedef __nv_bfloat16 ATile[TM][PLDS];
    typedef __nv_bfloat16 BTile[PBN][PLDS];
    ATile *As = (ATile *)dyn_smem;
    BTile *Bs = (BTile *)(As + STAGES);
    uint4 *raw = (uint4 *)(Bs + (QUANT ? 2 : STAGES));
    float *sc = (float *)(raw + STAGES * W::RAW * PTHREADS);

    const int tid = threadIdx.x, warp = tid >> 5;
    constexpr int MT = TM / 32;                                   /* m16 tiles per warp */
    const int wm = (warp >> 2) * (TM / 2), wn = (warp & 3) * 32;   /* the warp's TM/2 x 32 of the tile */
    int li = 0;
    while (li + 1 < a.n_out && (int)blockIdx.x >= a.out[li + 1].tile0) li++;
    const fs_cu_linear &L = a.out[li];
    const int n0 = ((int)blockIdx.x - L.tile0) * PBN, m0 = blockIdx.y * TM;
    const int T = a.T, K = a.K, n_k_all = (K + PBK - 1) / PBK;
    const int kt0 = (int)blockIdx.z * n_k_all / a.k_split, n_k = ((int)blockIdx.z + 1) * n_k_all / a.k_split - kt0;
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)a.xb;
    W w;

    /* step kt of this slice into slot s: the input tile (64 rows x 8
     * pieces of 16 bytes: 2 per thread) and the weight tile */
    auto load = [&](int kt, int s) {
        const int k0 = (kt0 + kt) * PBK;
#pragma unroll
        for (int i = 0; i < TM * PBK / 8 / PTHREADS; i++) {
            int idx = tid + i * PTHREADS, r = idx >> 3, k = k0 + (idx & 7) * 8;
            bool ok = m0 + r < T && k < K;
            cp_async16(&As[s][r][(idx & 7) * 8], xb + (ok ? (size_t)(m0 + r) * K + k : 0), ok);
        }
        w.copy(L, K, n0, k0, Bs[s], raw + s * W::RAW * PTHREADS);
    };

    float acc[MT][4][4] = {};
    /* prologue: steps 0 .. STAGES-2 in flight, one commit group each */
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < n_k) {
            load(s, s);
            if (QUANT) sc[s * PTHREADS + tid] = w.scale(L, K, n0, (kt0 + s) * PBK);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < n_k; kt++) {
        const int s = kt % STAGES;
        /* groups committed so far: kt + STAGES - 1; at most STAGES - 2
         * still in flight means step kt's (this thread's) have landed */
        cp_async_wait<STAGES - 2>();
        if (QUANT) w.decode(raw + s * W::RAW * PTHREADS, sc[s * PTHREADS + tid], Bs[kt & 1]);
        /* every thread's step kt is in shared memory, and every warp is done
         * with step kt - 1: its slot may be refilled */
        __syncthreads();
        const int nx = kt + STAGES - 1, ns = nx % STAGES;
        float d = 0.0f;
        if (nx < n_k) {
            load(nx, ns);
            if (QUANT) d = w.scale(L, K, n0, (kt0 + nx) * PBK);
        }
        cp_async_commit();
        const __nv_bfloat16(*B)[PLDS] = Bs[QUANT ? kt & 1 : s];
#pragma unroll
        for (int kk = 0; kk < PBK; kk += 16) warp_mma_k16<PLDS, MT>(acc, As[s], B, wm, wn, kk);
        /* the scale's load had the multiply to arrive; only this thread reads it */
        if (QUANT && nx < n_k) sc[ns * PTHREADS + tid] = d;
    }
    store_tile<TM, PBN, MT>(a, L, acc, wm, wn, m0, n0);
}

#define GEMM_PIPE(name, DT)                                                                    \
    extern "C" __global__ void __launch_bounds__(PTHREADS, 2) gemm_pipe_##name(fs_cu_mm a) { \
        gemm_pipe<DT, PBM, PSTAGES>(a);                                                          \
    }
GEMM_PIPE(bf16, FS_CU_BF16)
GEMM_PIPE(q8_0, FS_CU_Q8_0)
GEMM_PIPE(q4_0, FS_CU_Q4_0)

/* 128x128 tiles (each warp 64x32), bf16 weights, 3 stages (the same
 * 110.6 KB): 512 bytes from L2 per step of k for 16,384 multiply-adds,
 * against 384 for 8,192 (and 6 ldmatrix per 16 mma, against 4 per 8).
 * ops_cuda.c takes it for bf16 weights when T > 64 and the grid needs no
 * split over K (qkv, gate/up of a prefill chunk): qkv at T = 512 162
 * against 147 TFLOP/s with 64x128 tiles (src/cuda/NOTES.md). */
extern "C" __global__ void __launch_bounds__(PTHREADS, 2) gemm_pipe128_bf16(fs_cu_mm a) {
    gemm_pipe<FS_CU_BF16, 128, 3>(a);
}
