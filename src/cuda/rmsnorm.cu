/* rmsnorm.cu - root-mean-square normalisation, per row.
 *
 *   y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w     x, y: [rows, n] (y may be x)   w: [n]
 *
 * The matmul applies the norm to its input itself (gemv.cu, gemm.cu);
 * this op is for the norms that feed something else. One block per row:
 * each thread sums the squares of its strided elements, a block reduction
 * gives the scale, and each thread writes the elements it read - so y may
 * be x. Rounding as the reference (src/cpu/rmsnorm.c): x * scale is
 * rounded to f32, then multiplied by w.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256) rmsnorm(fs_cu_ptr x, fs_cu_ptr w, int w_dtype, fs_cu_ptr y, int n, float eps) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ float red[32];
    const float *xr = (const float *)x + (size_t)blockIdx.x * n;
    float *yr = (float *)y + (size_t)blockIdx.x * n;
    float ss = 0.0f;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
    float scale = rms_scale(block_sum(ss, red), n, eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = __fmul_rn(weight_at(w, w_dtype, i), __fmul_rn(xr[i], scale));
}
