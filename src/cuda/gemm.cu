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
 * Mapping. A block computes a 64xBN tile of y (64 tokens x BN = 64 or 32
 * outputs) with 4 warps, each a 32 x BN/2 quarter: 2 x BN/16 mma tiles of
 * 16x8. K is walked 32 at
 * a time (one Q8_0 / Q4_0 block) through two shared-memory buffers: while
 * the warps multiply one, the next tile of the input is copied in by
 * cp.async (no registers involved) and the next tile of weights is loaded
 * to registers (decoded to bf16 there, then stored). Fragments are read
 * from shared memory with ldmatrix, whose 8-row x 16-byte reads are
 * conflict-free because rows are padded to 80 bytes. The grid is
 * (column tiles of all layers of the call, row tiles of T, slices of K):
 * a call with fewer tiles than SMs (o_proj and down_proj at T = 512: 128
 * tiles) splits K in 4, and the last slice of each tile to finish adds
 * the four partial tiles (an atomic counter; the sum is in slice order,
 * so the result does not depend on timing).
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

template <int DT, int BN>
__device__ __forceinline__ void gemm(const fs_cu_mm &a) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ __align__(16) __nv_bfloat16 As[2][BM][LDS];
    __shared__ __align__(16) __nv_bfloat16 Bs[2][BN][LDS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    constexpr int NT = BN / 16;                                  /* n8 tiles per warp */
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

    float acc[2][NT][4] = {};
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
        for (int kk = 0; kk < BK; kk += 16) {
            uint32_t af[2][4], bf[NT][2];
#pragma unroll
            for (int mi = 0; mi < 2; mi++) ldmatrix_x4(af[mi], &As[cur][wm + mi * 16 + (lane & 15)][kk + (lane >> 4) * 8]);
#pragma unroll
            for (int nj = 0; nj < NT / 2; nj++) {
                uint32_t r[4];
                ldmatrix_x4(r, &Bs[cur][wn + nj * 16 + (lane >> 4) * 8 + (lane & 7)][kk + ((lane >> 3) & 1) * 8]);
                bf[2 * nj][0] = r[0];
                bf[2 * nj][1] = r[1];
                bf[2 * nj + 1][0] = r[2];
                bf[2 * nj + 1][1] = r[3];
            }
#pragma unroll
            for (int mi = 0; mi < 2; mi++)
#pragma unroll
                for (int ni = 0; ni < NT; ni++) mma_bf16(acc[mi][ni], af[mi], bf[ni]);
        }
        if (more) wt.store(Bs[nxt]);
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        __syncthreads();
    }

    /* C fragment: c0, c1 at (row g, cols 2q, 2q+1), c2, c3 at row g + 8 */
    const int g = lane >> 2, q = lane & 3;
    if (a.k_split > 1) {
        /* Split over K: park this slice's tile; the last slice of the tile to
         * arrive adds all of them, in slice order (the same sum whichever
         * block is last), and resets the count for the next call. */
        const int tile = blockIdx.y * gridDim.x + blockIdx.x;
        float *part = (float *)a.part + (size_t)tile * a.k_split * BM * BN;
#pragma unroll
        for (int mi = 0; mi < 2; mi++)
#pragma unroll
            for (int ni = 0; ni < NT; ni++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int r = wm + mi * 16 + g + (e >> 1) * 8, cl = wn + ni * 8 + 2 * q + (e & 1);
                    part[(size_t)blockIdx.z * BM * BN + r * BN + cl] = acc[mi][ni][e];
                }
        __shared__ int is_last;
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) is_last = atomicAdd((int *)a.counter + tile, 1) == a.k_split - 1;
        __syncthreads();
        if (!is_last) return;
        __threadfence();
        /* four outputs at a time, every slice's partials loaded before the
         * first is added (a loop that adds each as it arrives waits one L2
         * round trip per slice: with 16 slices that tail was most of a
         * batched decode step's o_proj) */
        for (int i = 4 * threadIdx.x; i < BM * BN; i += 4 * blockDim.x) {
            float4 p[FS_CU_GEMM_SPLIT_MAX];
#pragma unroll
            for (int z = 0; z < FS_CU_GEMM_SPLIT_MAX; z++)
                if (z < a.k_split) p[z] = __ldcg((const float4 *)(part + (size_t)z * BM * BN + i));
            float4 sum = p[0];
#pragma unroll
            for (int z = 1; z < FS_CU_GEMM_SPLIT_MAX; z++)
                if (z < a.k_split) sum.x += p[z].x, sum.y += p[z].y, sum.z += p[z].z, sum.w += p[z].w;
            const int t = m0 + i / BN;
            const float s4[4] = {sum.x, sum.y, sum.z, sum.w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int n = n0 + i % BN + e;
                if (t >= T || n >= L.N) continue;
                float *y = (float *)L.y + (size_t)t * L.N + n;
                *y = L.add ? *y + s4[e] : s4[e];
            }
        }
        if (threadIdx.x == 0) ((int *)a.counter)[tile] = 0;
        return;
    }
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < NT; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int t = m0 + wm + mi * 16 + g + (e >> 1) * 8, n = n0 + wn + ni * 8 + 2 * q + (e & 1);
                if (t < T && n < L.N) {
                    float *y = (float *)L.y + (size_t)t * L.N + n;
                    *y = L.add ? *y + acc[mi][ni][e] : acc[mi][ni][e];
                }
            }
}

/* 64x64 tiles. (64x32 tiles, tried for the N = 1024 layers whose 64x64
 * grid leaves SMs idle, were slower: src/cuda/NOTES.md, run 2.) */
#define GEMM(name, DT) \
    extern "C" __global__ void __launch_bounds__(128) gemm_##name(fs_cu_mm a) { gemm<DT, 64>(a); }
GEMM(bf16, FS_CU_BF16)
GEMM(f16, FS_CU_F16)
GEMM(f32, FS_CU_F32)
GEMM(q8_0, FS_CU_Q8_0)
GEMM(q4_0, FS_CU_Q4_0)
