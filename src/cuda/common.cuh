/* common.cuh - small device helpers every kernel file uses.
 *
 * Number formats, warp and block reductions, and the rms scale. Nothing
 * here launches anything. Kernels are `extern "C" __global__` so the host
 * finds them by their plain names (cuModuleGetFunction).
 *
 * Arithmetic is IEEE f32 (no --use_fast_math): expf, sqrt and division are
 * the accurate ones. Where the reference rounds a product before adding,
 * __fmul_rn / __fadd_rn keep the compiler from fusing them into one FMA.
 *
 * Docs: docs/gpu.md
 */
#ifndef FS_CUDA_COMMON_CUH
#define FS_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernel_args.h"

/* The dynamic shared memory of a launch (its size is a launch parameter).
 * One declaration for every kernel: CUDA gives them all the same name. */
extern __shared__ float4 dyn_smem[];

/* Programmatic dependent launch (sm_90; see fs_cuda_launch). A kernel
 * calls pdl_launch_dependents() once its own independent loads are in
 * flight - the next kernel may then be launched - and pdl_wait() before it
 * reads or writes anything an earlier kernel touches: the wait returns
 * when the previous kernel has finished and its writes are visible. On
 * older GPUs, or without the launch attribute, both do nothing.
 * The step (kernel_args.h) may be read before the wait: it is written only
 * by set_step's kernel, which never lets its successors start early. */
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* The timeline (timeline.c): in a build with it (`make BUILD=build-tl
 * CUDA_TIMELINE=1`: the kernels compiled with FS_CU_TIMELINE) and
 * FS_CUDA_TIMELINE=file set, thread 0 of a decode kernel's first and last
 * block writes marks - the kernel's kind (TL_*), the phase (TL_START: its
 * loads issued; TL_WAITED: its predecessor finished, the wait returned;
 * TL_INPUT: its input ready (a GEMV's row in shared memory, attention's
 * queries); TL_MID: attention's range done, before the combine; TL_END;
 * TL_LOADED: a GEMV's first weights arrived - the marking thread waits for
 * them before its wait, which only this build does),
 * which SM, a tag naming the call (a weight or cache address) and the GPU's
 * nanosecond clock. tools/gpu_timeline.py turns them into where a decode
 * step's time goes, kernel by kernel. Not built in by default: even off,
 * the marks cost a decode step ~19% (measured, src/cuda/NOTES.md session
 * 15) - a constant-cache miss at the start of every block. */
enum { TL_STEP = 1, TL_EMBED, TL_GEMV, TL_GEMV_SPLIT, TL_ROPE, TL_ATTN, TL_ARGMAX };
enum { TL_START = 0, TL_WAITED = 1, TL_END = 2, TL_INPUT = 3, TL_MID = 4, TL_LOADED = 5 };
#ifdef FS_CU_TIMELINE
__constant__ fs_cu_tl_event *tl_events;   /* set by the host, or 0 */
__constant__ unsigned tl_cap;
__device__ unsigned tl_count;
__device__ __forceinline__ void tl_mark(unsigned kind, unsigned phase, unsigned long long tag) {
    fs_cu_tl_event *ev = tl_events;
    if (!ev || threadIdx.x || threadIdx.y || threadIdx.z) return;
    const unsigned long long b = blockIdx.x + (unsigned long long)gridDim.x * (blockIdx.y + (unsigned long long)gridDim.y * blockIdx.z);
    const unsigned long long last = (unsigned long long)gridDim.x * gridDim.y * gridDim.z - 1;
    if (b != 0 && b != last) return;
    unsigned long long t;
    unsigned sm;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    if (*(volatile unsigned *)&tl_count >= tl_cap) return;   /* full: stop counting (no wrap-around) */
    unsigned i = atomicAdd(&tl_count, 1u);
    if (i < tl_cap) ev[i] = {t, kind | phase << 8 | (b == last && last ? 1u << 12 : 0u) | sm << 16, (unsigned)(tag >> 8)};
}
#else
__device__ __forceinline__ void tl_mark(unsigned, unsigned, unsigned long long) {}
#endif

/* Hopper's copy engine and transaction barriers (sm_90; gemv_stage.cu).
 * Nothing else compiles them: callers guard by __CUDA_ARCH__. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ unsigned smem_u32(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

/* An mbarrier (a 64-bit word in shared memory) that completes its phase
 * when `count` threads have arrived and every byte announced with
 * expect_tx has landed. */
__device__ __forceinline__ void mbar_init(unsigned long long *b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
/* Make the initialized barriers visible to the copy engine (the "async
 * proxy"), which will count bytes on them. */
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
/* Arrive once, announcing `bytes` more to land before the phase completes. */
__device__ __forceinline__ void mbar_arrive_expect(unsigned long long *b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
}
/* Wait until the barrier's phase `parity` has completed. The waits are
 * for a block's own copies, microseconds; bytes that never land (an
 * expect count that disagrees with the copies) would spin forever, so
 * after 2 s the kernel traps: a launch error the host reports, not a
 * hang that eats the rest of a test run. */
__device__ __forceinline__ void mbar_wait(unsigned long long *b, unsigned parity) {
    unsigned done;
    unsigned long long t0 = 0;
    do {
        asm volatile(
            "{\n\t.reg .pred p;\n\t"
            "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
            "selp.u32 %0, 1, 0, p;\n\t}"
            : "=r"(done)
            : "r"(smem_u32(b)), "r"(parity)
            : "memory");
        if (!done) {
            unsigned long long now;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
            if (!t0) t0 = now;
            else if (now - t0 > 2000000000ull) __trap();
        }
    } while (!done);
}
/* Copy `bytes` (a multiple of 16, both addresses 16-byte aligned) from
 * global to shared memory with the copy engine; the bytes count on b. */
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, unsigned bytes, unsigned long long *b) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     smem_u32(dst)),
                 "l"(src), "r"(bytes), "r"(smem_u32(b))
                 : "memory");
}
#endif

/* Ask L2 for `bytes` from p (both multiples of 16; a piece of at most a
 * few KB): Hopper's bulk prefetch, `cp.async.bulk.prefetch.L2`, one
 * instruction for the whole piece, fire and forget - nothing waits for
 * it, and a later load of those bytes finds them in L2 or on their way.
 * The GEMV's weight hint (gemv.cu) and decode attention's range
 * (attention.cu) use it.
 * Does nothing before sm_90. */
#define PF_PIECE 4096
__device__ __forceinline__ void prefetch_l2_bulk(const void *p, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#else
    (void)p, (void)bytes;
#endif
}

/* The same for a whole range, cut into PF_PIECE pieces shared out among
 * `n` threads (this one is number i of them). */
__device__ __forceinline__ void prefetch_l2_range(const void *p, size_t bytes, int i, int n) {
    bytes &= ~(size_t)15;
    for (size_t off = (size_t)i * PF_PIECE; off < bytes; off += (size_t)n * PF_PIECE)
        prefetch_l2_bulk((const char *)p + off, (unsigned)(bytes - off < PF_PIECE ? bytes - off : PF_PIECE));
}

/* The step (kernel_args.h): T, and token t's id, position and sequence
 * (tok[FS_CU_TOK_ID], tok[FS_CU_TOK_POS], tok[FS_CU_TOK_SEQ]). */
__device__ __forceinline__ int step_T(fs_cu_ptr step) { return ((const int *)step)[FS_CU_STEP_T]; }
__device__ __forceinline__ const int *step_token(fs_cu_ptr step, int t) {
    return (const int *)step + FS_CU_STEP_TOK + FS_CU_TOK_INTS * t;
}

/* bf16 is the top half of an f32: widening is a shift. A 32-bit word holds
 * two bf16, element 2i in the low half. */
__device__ __forceinline__ float bf16_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }
__device__ __forceinline__ float f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* Four consecutive elements e .. e+3 of a KV cache (fs_cu_caches): f32,
 * or f16 widened exactly (--kv f16: half the bytes for every read). */
__device__ __forceinline__ float4 kv_load4(const void *cache, size_t e, int f16) {
    if (!f16) return *(const float4 *)((const float *)cache + e);
    uint2 h = *(const uint2 *)((const uint16_t *)cache + e);
    float2 a = __half22float2(*(const __half2 *)&h.x), b = __half22float2(*(const __half2 *)&h.y);
    return make_float4(a.x, a.y, b.x, b.y);
}
/* Store one element into a KV cache: f32, or rounded to f16 (to nearest even). */
__device__ __forceinline__ void kv_store(void *cache, size_t e, float v, int f16) {
    if (f16) ((__half *)cache)[e] = __float2half_rn(v);
    else ((float *)cache)[e] = v;
}

/* Element i of a float weight (a norm's [n] vector) in its stored dtype.
 * Not for the hot loops: the matmul kernels decode 16 bytes at a time. */
__device__ __forceinline__ float weight_at(fs_cu_ptr w, int dtype, size_t i) {
    if (dtype == FS_CU_BF16) return __uint_as_float((uint32_t)((const uint16_t *)w)[i] << 16);
    if (dtype == FS_CU_F16) return f16_to_f32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* The sum of v over the block (every thread gets it). red: 32 floats of
 * shared memory. Two barriers: one before the warps' partial sums are
 * read, one before red may be reused. */
__device__ __forceinline__ float block_sum(float v, float *red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = lane < n_warps ? red[lane] : 0.0f;
    s = warp_sum(s);
    __syncthreads();
    return s;
}

/* rmsnorm's 1 / sqrt(mean(x^2) + eps) from the sum of squares, rounded as
 * the reference does: the mean plus eps in f32, the root in double. */
__device__ __forceinline__ float rms_scale(float sum_sq, int n, float eps) {
    float var = __fadd_rn(sum_sq / (float)n, eps);
    return (float)(1.0 / sqrt((double)var));
}

/* silu(g) * u, silu(g) = g / (1 + e^-g) rounded to f32 first (as PyTorch). */
__device__ __forceinline__ float swiglu(float g, float u) {
    float silu = g / (1.0f + expf(-g));
    return __fmul_rn(silu, u);
}

/* The matmul input element in[t, k] (kernel_args.h, fs_cu_mm): plain,
 * rmsnorm'd (scale = rms_scale of row t, computed by the caller) or
 * SwiGLU'd. */
__device__ __forceinline__ float mm_input_at(const fs_cu_mm &a, const float *x_row, const float *up_row, int k,
                                             float scale) {
    float v = x_row[k];
    if (a.up) return swiglu(v, up_row[k]);
    if (a.norm) return __fmul_rn(weight_at(a.norm, a.norm_dtype, k), __fmul_rn(v, scale));
    return v;
}

/* Row t's rms scale when the matmul input is normalized (1 otherwise). */
__device__ __forceinline__ float mm_input_scale(const fs_cu_mm &a, const float *x_row, float *red) {
    if (!a.norm) return 1.0f;
    float ss = 0.0f;
    for (int k = threadIdx.x; k < a.K; k += blockDim.x) ss = fmaf(x_row[k], x_row[k], ss);
    return rms_scale(block_sum(ss, red), a.K, a.eps);
}

#endif
