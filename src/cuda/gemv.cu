/* gemv.cu - the matmul of a decode step (T = 1): matrix times vector.
 *
 *   y_i[t, n] (+)= sum_k in[t, k] * W_i[n, k]     in: [T, K] f32 (kernel_args.h, fs_cu_mm)
 *   W_i: [N_i, K] bf16 / f16 / f32 / Q8_0 / Q4_0    y_i: [T, N_i] f32     (up to 4 layers i)
 *
 * At one token per step a linear layer does 2 flops per weight it reads,
 * so decode is a race to stream the weights from memory: every byte once,
 * 16 bytes per load, many loads in flight. The input row is small (1-4K
 * floats) and every output needs all of it, so each block keeps it in
 * shared memory, already transformed: normalized (rmsnorm'd input; every
 * block recomputes the norm of the row, which is in L2 - cheaper than a
 * separate kernel and its launch) or SwiGLU'd.
 *
 * Mapping. A block is GEMV_WARPS warps (8: kernel_args.h says why). A
 * warp owns R consecutive weight rows at a time (rows of all the layers of
 * the call, concatenated: q, k and v are one pass) and the block moves on
 * by the grid's stride until all rows are done. (For layers with few
 * rows, the "split" kernels give each row 4 warps, each a quarter of K,
 * and add the four parts in shared memory.)
 * Lane l reads 16-byte vectors l, l + 32, l + 64, ... of each of its rows,
 * so a warp reads 512 contiguous bytes per row per load instruction
 * (coalesced), U vectors per row per lane in flight at once; the R rows
 * share each read of x. Each lane accumulates its part of the R dot
 * products in f32; a warp shuffle sums the 32 parts; lane 0 stores.
 * The first vectors are loaded before the kernel waits for the previous
 * one (programmatic launch) and before the input is prepared, so the wait
 * for memory overlaps both.
 *
 * Shared memory holds x padded by 4 floats after every 32: lanes read x at
 * a stride of E floats (E weights per vector: 8 for bf16, 32 for Q4_0),
 * which without padding puts 8 lanes of a 16-byte read on the same banks.
 *
 * Weight decoding. bf16 widens by a shift; f16 by the hardware conversion.
 * Q8_0 and Q4_0 integers become floats through the exponent trick: byte b
 * placed in the low mantissa of 2^23 (0x4B0000bb) is the float 2^23 + b
 * exactly, and one subtraction removes 2^23 and the format's offset (128 for
 * the sign-flipped int8, 8 for a nibble). That is a byte permute and an add,
 * where the int-to-float conversion unit would be the bottleneck (a quarter
 * of the FMA rate). Each block of 32 products is summed, then scaled once.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

#define GEMV_WARPS FS_CU_GEMV_WARPS

/* Where element k of x sits in shared memory (4 floats of padding after
 * every 32). A vector's E <= 32 elements stay contiguous. */
__device__ __forceinline__ int xpad(int k) { return k + (k >> 5) * 4; }

/* byte i of u, as the float 2^23 + byte (the exponent trick above) */
__device__ __forceinline__ float byte_f(uint32_t u, int i) {
    return __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7650 | i));
}

/* One 16-byte vector of a weight row against E floats of x (xs points at
 * the first), per dtype. Quantized formats return the unscaled block sum. */
template <int DT> struct vec;

template <> struct vec<FS_CU_BF16> {
    enum { E = 8 };
    __device__ static float dot(uint4 w, const float *xs) {
        float4 a = *(const float4 *)xs, b = *(const float4 *)(xs + 4);
        float s = bf16_lo(w.x) * a.x;
        s = fmaf(bf16_hi(w.x), a.y, s);
        s = fmaf(bf16_lo(w.y), a.z, s);
        s = fmaf(bf16_hi(w.y), a.w, s);
        s = fmaf(bf16_lo(w.z), b.x, s);
        s = fmaf(bf16_hi(w.z), b.y, s);
        s = fmaf(bf16_lo(w.w), b.z, s);
        s = fmaf(bf16_hi(w.w), b.w, s);
        return s;
    }
};

template <> struct vec<FS_CU_F16> {
    enum { E = 8 };
    __device__ static float dot(uint4 w, const float *xs) {
        float4 a = *(const float4 *)xs, b = *(const float4 *)(xs + 4);
        float2 w0 = __half22float2(*(const __half2 *)&w.x), w1 = __half22float2(*(const __half2 *)&w.y);
        float2 w2 = __half22float2(*(const __half2 *)&w.z), w3 = __half22float2(*(const __half2 *)&w.w);
        float s = w0.x * a.x;
        s = fmaf(w0.y, a.y, s);
        s = fmaf(w1.x, a.z, s);
        s = fmaf(w1.y, a.w, s);
        s = fmaf(w2.x, b.x, s);
        s = fmaf(w2.y, b.y, s);
        s = fmaf(w3.x, b.z, s);
        s = fmaf(w3.y, b.w, s);
        return s;
    }
};

template <> struct vec<FS_CU_F32> {
    enum { E = 4 };
    __device__ static float dot(uint4 w, const float *xs) {
        float4 a = *(const float4 *)xs;
        float s = __uint_as_float(w.x) * a.x;
        s = fmaf(__uint_as_float(w.y), a.y, s);
        s = fmaf(__uint_as_float(w.z), a.z, s);
        s = fmaf(__uint_as_float(w.w), a.w, s);
        return s;
    }
};

/* Q8_0: 16 int8 of a block (half of it). q ^ 0x80 = q + 128 as a byte. */
template <> struct vec<FS_CU_Q8_0> {
    enum { E = 16 };
    __device__ static float word(uint32_t u, float4 a, float s) {
        u ^= 0x80808080u;
        s = fmaf(byte_f(u, 0) - 8388736.0f, a.x, s);
        s = fmaf(byte_f(u, 1) - 8388736.0f, a.y, s);
        s = fmaf(byte_f(u, 2) - 8388736.0f, a.z, s);
        s = fmaf(byte_f(u, 3) - 8388736.0f, a.w, s);
        return s;
    }
    __device__ static float dot(uint4 w, const float *xs) {
        float s = word(w.x, *(const float4 *)xs, 0.0f);
        s = word(w.y, *(const float4 *)(xs + 4), s);
        s = word(w.z, *(const float4 *)(xs + 8), s);
        s = word(w.w, *(const float4 *)(xs + 12), s);
        return s;
    }
};

/* Q4_0: a whole block, 16 bytes: byte j holds weight j (low nibble) and
 * weight j + 16 (high nibble), each q - 8. */
template <> struct vec<FS_CU_Q4_0> {
    enum { E = 32 };
    __device__ static float nibbles(uint32_t n, float4 a, float s) {
        s = fmaf(byte_f(n, 0) - 8388616.0f, a.x, s);
        s = fmaf(byte_f(n, 1) - 8388616.0f, a.y, s);
        s = fmaf(byte_f(n, 2) - 8388616.0f, a.z, s);
        s = fmaf(byte_f(n, 3) - 8388616.0f, a.w, s);
        return s;
    }
    __device__ static float dot(uint4 w, const float *xs) {
        uint32_t u[4] = {w.x, w.y, w.z, w.w};
        float s = 0.0f;
#pragma unroll
        for (int m = 0; m < 4; m++) {
            s = nibbles(u[m] & 0x0F0F0F0Fu, *(const float4 *)(xs + 4 * m), s);
            s = nibbles((u[m] >> 4) & 0x0F0F0F0Fu, *(const float4 *)(xs + 16 + 4 * m), s);
        }
        return s;
    }
};

/* The prefetch hint (backend.h, kernel_args.h): ask the L2 cache to load
 * the ranges a.pf[i] (the weights of the ops after this one) while this
 * kernel runs. One `cp.async.bulk.prefetch.L2` (sm_90's bulk copy engine,
 * the TMA) per 4 KB piece, fire and forget: nothing waits for it, and a
 * later kernel that reads those bytes finds them in L2 (or already on the
 * way). The pieces go round the blocks - piece j to block j mod gridDim.x,
 * one of its threads - so every SM's copy engine takes a share. Issued
 * before the kernel waits for its predecessor: the memory system streams
 * the next weights while the chain of dependent kernels runs. */
__device__ __forceinline__ void prefetch_l2(const fs_cu_mm &a) {
    if (blockIdx.y != 0) return;
    unsigned long long j0 = 0;   /* pieces of the ranges before range i */
    for (int i = 0; i < a.n_pf; i++) {
        unsigned long long bytes = a.pf_bytes[i] & ~15ull, pieces = (bytes + PF_PIECE - 1) / PF_PIECE;
        /* this block's pieces of range i: j = j0 + k with j mod gridDim.x == blockIdx.x */
        unsigned long long first = (blockIdx.x + gridDim.x - j0 % gridDim.x) % gridDim.x;
        for (unsigned long long k = first + (unsigned long long)threadIdx.x * gridDim.x; k < pieces;
             k += (unsigned long long)blockDim.x * gridDim.x) {
            unsigned long long off = k * PF_PIECE, n = bytes - off < PF_PIECE ? bytes - off : PF_PIECE;
            prefetch_l2_bulk((const void *)(a.pf[i] + off), (unsigned)n);
        }
        j0 += pieces;
    }
}

/* The layer of the call that concatenated row r belongs to. */
__device__ __forceinline__ int layer_of(const fs_cu_mm &a, int r) {
    int i = 0;
    while (i + 1 < a.n_out && r >= a.out[i + 1].row0) i++;
    return i;
}

/* Prepare row t of the input in shared memory (padded), all threads.
 * Every load a thread needs is issued before the first is used (a loop
 * that waits for each load in turn costs one L2 round trip per element it
 * handles - 24 of them for down_proj's K = 3072, most of that kernel's
 * time in run 2). SLOTS float4 per thread per pass: 2 covers K = 2048 in
 * one pass of the GEMV's 256 threads, 6 covers K = 3072 with 128 threads
 * (the GEMM's, gemm.cu); each costs registers, and the
 * GEMVs over K = 1024 need few to keep all their blocks resident. */

/* four 16-bit weights (bf16 or f16) as floats */
__device__ __forceinline__ float4 weight4_of(uint2 h, int dtype) {
    if (dtype == FS_CU_BF16) return make_float4(bf16_lo(h.x), bf16_hi(h.x), bf16_lo(h.y), bf16_hi(h.y));
    float2 a = __half22float2(*(const __half2 *)&h.x), b = __half22float2(*(const __half2 *)&h.y);
    return make_float4(a.x, a.y, b.x, b.y);
}

__device__ __forceinline__ float4 weight4_at(fs_cu_ptr w, int dtype, int i) {   /* elements i .. i+3 */
    if (dtype == FS_CU_F32) return *(const float4 *)((const float *)w + i);
    return weight4_of(*(const uint2 *)((const uint16_t *)w + i), dtype);
}

/* norm_src: where the norm's weights are read (0: a.norm itself; the
 * staged GEMV passes its copy in shared memory, gemv_stage.cu, and the
 * barrier on which that copy lands, norm_bar, waited for just before the
 * norm's weights are read). pre: the thread's norm weights are already in
 * nw, as stored (norm_early). */
template <int SLOTS>
__device__ __forceinline__ void load_input(const fs_cu_mm &a, int t, float *xs, float *red, fs_cu_ptr norm_src,
                                           unsigned long long *norm_bar, bool pre, const uint2 (&nw)[SLOTS]) {
    const float *x_row = (const float *)a.x + (size_t)t * a.K;
    const float *up_row = a.up ? (const float *)a.up + (size_t)t * a.K : nullptr;
    if (a.K % 4 != 0) {   /* rows not in whole float4s: one element at a time */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        if (norm_bar) mbar_wait(norm_bar, 0);   /* never leave a bulk copy in flight (the staged
                                                   kernel's K % 256 keeps it out of here) */
#endif
        float scale = mm_input_scale(a, x_row, red);
        for (int k = threadIdx.x; k < a.K; k += blockDim.x) xs[xpad(k)] = mm_input_at(a, x_row, up_row, k, scale);
        __syncthreads();
        return;
    }
    const int K4 = a.K / 4, nt = blockDim.x;
    float ss = 0.0f;
    for (int base = threadIdx.x; base < K4; base += nt * SLOTS) {
        float4 v[SLOTS], u[SLOTS];
#pragma unroll
        for (int j = 0; j < SLOTS; j++) {
            int i = base + j * nt;
            if (i < K4) {
                v[j] = ((const float4 *)x_row)[i];
                if (up_row) u[j] = ((const float4 *)up_row)[i];
            }
        }
#pragma unroll
        for (int j = 0; j < SLOTS; j++) {
            int i = base + j * nt;
            if (i >= K4) break;
            if (up_row) {
                v[j] = make_float4(swiglu(v[j].x, u[j].x), swiglu(v[j].y, u[j].y), swiglu(v[j].z, u[j].z), swiglu(v[j].w, u[j].w));
            } else {
                ss = fmaf(v[j].x, v[j].x, ss);
                ss = fmaf(v[j].y, v[j].y, ss);
                ss = fmaf(v[j].z, v[j].z, ss);
                ss = fmaf(v[j].w, v[j].w, ss);
            }
            *(float4 *)(xs + xpad(4 * i)) = v[j];
        }
    }
    if (a.norm) {   /* second pass over this thread's own elements, now scaled */
        float scale = rms_scale(block_sum(ss, red), a.K, a.eps);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        if (norm_bar) mbar_wait(norm_bar, 0);
#endif
        for (int base = threadIdx.x; base < K4; base += nt * SLOTS) {
            float4 w[SLOTS];
#pragma unroll
            for (int j = 0; j < SLOTS; j++) {
                int i = base + j * nt;
                if (i < K4) w[j] = pre ? weight4_of(nw[j], a.norm_dtype) : weight4_at(norm_src ? norm_src : a.norm, a.norm_dtype, 4 * i);
            }
#pragma unroll
            for (int j = 0; j < SLOTS; j++) {
                int i = base + j * nt;
                if (i >= K4) break;
                float4 *xv = (float4 *)(xs + xpad(4 * i)), v = *xv;
                *xv = make_float4(__fmul_rn(w[j].x, __fmul_rn(v.x, scale)), __fmul_rn(w[j].y, __fmul_rn(v.y, scale)),
                                  __fmul_rn(w[j].z, __fmul_rn(v.z, scale)), __fmul_rn(w[j].w, __fmul_rn(v.w, scale)));
            }
        }
    }
    __syncthreads();
}
template <int SLOTS>
__device__ __forceinline__ void load_input(const fs_cu_mm &a, int t, float *xs, float *red, fs_cu_ptr norm_src = 0,
                                           unsigned long long *norm_bar = nullptr) {
    const uint2 none[SLOTS] = {};
    load_input<SLOTS>(a, t, xs, red, norm_src, norm_bar, false, none);
}

/* The norm's weights of this thread, loaded before the wait (they depend on
 * no kernel): where the input is normalized by 16-bit weights and one pass
 * of load_input covers the row, the weights are in registers, as stored
 * (8 bytes per 4: the bf16 GEMV has no registers to spare), when the input
 * arrives - one round trip to memory fewer on the chain after the wait.
 * Returns whether it loaded them. */
template <int SLOTS>
__device__ __forceinline__ bool norm_early(const fs_cu_mm &a, uint2 (&w)[SLOTS]) {
    const int K4 = a.K / 4;
    if (!a.norm || a.norm_dtype == FS_CU_F32 || a.K % 4 != 0 || K4 > (int)blockDim.x * SLOTS) return false;
#pragma unroll
    for (int j = 0; j < SLOTS; j++) {
        int i = threadIdx.x + j * blockDim.x;
        if (i < K4) w[j] = *(const uint2 *)((const uint16_t *)a.norm + 4 * i);
    }
    return true;
}

/* The timeline build's TL_LOADED mark (common.cuh): when the weights in w
 * have arrived - the thread waits for them, which only that build does. */
template <int R, int U>
__device__ __forceinline__ void tl_arrived(const uint4 (&w)[R][U], unsigned kind, fs_cu_ptr tag) {
#ifdef FS_CU_TIMELINE
    unsigned dep = 0;
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int u = 0; u < U; u++) dep |= w[r][u].x;
    asm volatile("" ::"r"(dep));
    tl_mark(kind, TL_LOADED, tag);
#else
    (void)w, (void)kind, (void)tag;
#endif
}

template <int DT, int R, int U, int KS, bool NE>
__device__ __forceinline__ void gemv(const fs_cu_mm &a) {
    float *xs = (float *)dyn_smem;
    __shared__ float red[32];
    __shared__ float part[GEMV_WARPS][R];
    constexpr int E = vec<DT>::E;
    constexpr bool QUANT = DT == FS_CU_Q8_0 || DT == FS_CU_Q4_0;
    constexpr int ROWS = GEMV_WARPS / KS * R;   /* rows per block per step */
    constexpr int CHUNK = 32 * KS * U;          /* vectors of a row per chunk */
    constexpr unsigned TLK = KS > 1 ? TL_GEMV_SPLIT : TL_GEMV;   /* its kind in the timeline build */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int kg = warp % KS, slot = warp / KS;  /* the warp's share of K, and of the rows */
    const int t = blockIdx.y;
    const int n_vec = a.K / E;                   /* 16-byte vectors per row */
    const int n_chunk = (n_vec + CHUNK - 1) / CHUNK;

    const uint4 *wrow[R];
    const uint16_t *srow[R];
    uint4 w[R][U];
    uint16_t sc[R][U];

    /* Row pointers of the warp's rows r0 .. r0 + R - 1 (NULL past the end). */
    auto rows = [&](int r0) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            int row = r0 + r;
            wrow[r] = nullptr;
            srow[r] = nullptr;
            if (row < a.N_total) {
                const fs_cu_linear &L = a.out[layer_of(a, row)];
                size_t n = (size_t)(row - L.row0);
                wrow[r] = (const uint4 *)L.w + n * (size_t)n_vec;
                if (QUANT) srow[r] = (const uint16_t *)L.scales + n * (size_t)(a.K / 32);
            }
        }
    };
    /* vector u of chunk c for this lane: the warps of a row take turns
     * by 32 vectors, so each load instruction is 512 contiguous bytes */
    auto vec_index = [&](int c, int u) { return c * CHUNK + (u * KS + kg) * 32 + lane; };
    auto load = [&](int c) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            int v = vec_index(c, u);
#pragma unroll
            for (int r = 0; r < R; r++) {
                bool ok = wrow[r] && v < n_vec;
                w[r][u] = ok ? __ldg(wrow[r] + v) : make_uint4(0, 0, 0, 0);
                if (QUANT) sc[r][u] = ok ? __ldg(srow[r] + v * E / 32) : (uint16_t)0;
            }
        }
    };

    /* Weights depend on no earlier kernel: start streaming them, then
     * wait for the input (programmatic launch, common.cuh). */
    int base = blockIdx.x * ROWS;
    rows(base + slot * R);
    load(0);
    if (!a.pf_late) prefetch_l2(a);
    pdl_launch_dependents();
    constexpr int SLOTS = KS == 1 ? 2 : 6;
    uint2 nw[SLOTS] = {};
    const bool pre = KS == 1 && NE && norm_early<SLOTS>(a, nw);
    tl_mark(TLK, TL_START, a.out[0].w);
    tl_arrived<R, U>(w, TLK, a.out[0].w);
    pdl_wait();
    tl_mark(TLK, TL_WAITED, a.out[0].w);
    load_input<SLOTS>(a, t, xs, red, 0, nullptr, pre, nw);
    tl_mark(TLK, TL_INPUT, a.out[0].w);

    bool loaded = true;
    for (; base < a.N_total; base += gridDim.x * ROWS) {   /* the same steps for the whole block */
        const int r0 = base + slot * R;
        if (!loaded) rows(r0);
        float acc[R];
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = 0.0f;
        for (int c = 0; c < n_chunk; c++) {
            if (!loaded) load(c);
            loaded = false;
#pragma unroll
            for (int u = 0; u < U; u++) {
                int v = vec_index(c, u);
                if (v >= n_vec) continue;
                const float *xv = xs + xpad(v * E);
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float s = vec<DT>::dot(w[r][u], xv);
                    acc[r] = QUANT ? fmaf(f16_to_f32(sc[r][u]), s, acc[r]) : acc[r] + s;
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++) {
            float s = warp_sum(acc[r]);
            if (KS > 1) {
                if (lane == 0) part[warp][r] = s;
            } else if (lane == 0 && r0 + r < a.N_total) {
                const fs_cu_linear &L = a.out[layer_of(a, r0 + r)];
                float *y = (float *)L.y + (size_t)t * L.N + (r0 + r - L.row0);
                *y = L.add ? *y + s : s;
            }
        }
        if (KS > 1) {   /* the KS warps of a row add their parts */
            __syncthreads();
            if (kg == 0 && lane < R && r0 + lane < a.N_total) {
                float s = 0.0f;
#pragma unroll
                for (int k = 0; k < KS; k++) s += part[warp + k][lane];
                const fs_cu_linear &L = a.out[layer_of(a, r0 + lane)];
                float *y = (float *)L.y + (size_t)t * L.N + (r0 + lane - L.row0);
                *y = L.add ? *y + s : s;
            }
            __syncthreads();
        }
    }
    if (a.pf_late) prefetch_l2(a);
    tl_mark(TLK, TL_END, a.out[0].w);
}

/* Rows per warp R and vectors per row per lane U, per dtype: about 1024
 * weights of a row per chunk, and at least 2 loads per lane in flight.
 * The _split versions give each row 4 warps, each a quarter of K: for
 * layers with few rows (o_proj, down_proj: 1024), which would otherwise
 * leave most of the GPU without loads to issue.
 * GEMV_BOUNDED also names the blocks of 4 warps an SM the compiler must
 * leave registers for (plain B, split BS; scaled to GEMV_WARPS by integer
 * division, so with 8 warps 4 / 2 blocks: 64 / 128 registers - the split
 * kernel's 5 blocks of 4 warps become 2 of 8, 512 threads an SM where
 * there were 640; it takes 114 registers). Measured per format on an H100
 * (src/cuda/NOTES.md, session 14, blocks of 4 warps): bf16 at 8 / 5 (64 /
 * 96 registers, was 80 / 108) gained 1-2% (tg128 997 -> 1,008, depth
 * 4096 795 -> 810); the same bounds cost q8_0 3% and q4_0 28% (its plain
 * kernel spills 248 bytes at 64), so those keep their registers; f16 and f32 are not
 * measured. (A bound of 1 block is not "no bound": it lets the compiler
 * take up to 255 registers, and it took 205 for q4_0.)
 * NE: the norm's weights loaded before the wait (norm_early). Measured
 * (H100, NOTES.md session 15): q4_0 tg128 +4% (1,040-1,042 -> 1,081,
 * depth 4096 835-837 -> 865); q8_0 +2% at depth 0 but -2% at 4096 (910
 * -> 892-899), so not there; in the bounded bf16 kernel its registers
 * spill (76 bytes) and it cost 2% (depth 4096 -4%). Only q4_0 has it;
 * f16 and f32 are not measured. */
#define GEMV_BOUNDS(name, DT, R, U, LB, LBS, NE)                                                       \
    extern "C" __global__ void LB gemv_##name(fs_cu_mm a) { gemv<DT, R, U, 1, NE>(a); }                 \
    extern "C" __global__ void LBS gemv_##name##_split(fs_cu_mm a) { gemv<DT, R, U, 4, NE>(a); }
#define GEMV(name, DT, R, U, NE) \
    GEMV_BOUNDS(name, DT, R, U, __launch_bounds__(GEMV_WARPS * 32), __launch_bounds__(GEMV_WARPS * 32), NE)
#define GEMV_BOUNDED(name, DT, R, U, B, BS) \
    GEMV_BOUNDS(name, DT, R, U, __launch_bounds__(GEMV_WARPS * 32, B), __launch_bounds__(GEMV_WARPS * 32, BS), false)
GEMV_BOUNDED(bf16, FS_CU_BF16, 2, 4, 8 * 4 / GEMV_WARPS, 5 * 4 / GEMV_WARPS)
GEMV(f16, FS_CU_F16, 2, 4, false)
GEMV(f32, FS_CU_F32, 2, 4, false)
GEMV(q8_0, FS_CU_Q8_0, 2, 2, false)
GEMV(q4_0, FS_CU_Q4_0, 4, 1, true)

/* Any K, float weights, one element at a time: the path for a row length
 * that is not a whole number of 16-byte vectors (never Qwen3's; kept so
 * every shape has a correct answer). One warp per row. */
extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_any(fs_cu_mm a) {
    float *xs = (float *)dyn_smem;
    __shared__ float red[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, t = blockIdx.y;
    pdl_launch_dependents();
    pdl_wait();
    load_input<2>(a, t, xs, red);
    for (int row = blockIdx.x * GEMV_WARPS + warp; row < a.N_total; row += gridDim.x * GEMV_WARPS) {
        const fs_cu_linear &L = a.out[layer_of(a, row)];
        size_t base = (size_t)(row - L.row0) * (size_t)a.K;
        float s = 0.0f;
        for (int k = lane; k < a.K; k += 32) s = fmaf(weight_at(L.w, a.dtype, base + k), xs[xpad(k)], s);
        s = warp_sum(s);
        if (lane == 0) {
            float *y = (float *)L.y + (size_t)t * L.N + (row - L.row0);
            *y = L.add ? *y + s : s;
        }
    }
}
