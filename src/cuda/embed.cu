/* embed.cu - token embedding: a gather of table rows.
 *
 *   out[t, :] = table[ids[t], :]      table: [V, H] any weight dtype   out: [T, H] f32
 *
 * The ids come from the step in device memory (set_step), so a recorded
 * decode step embeds whatever token the current step holds. One block per
 * token, threads over the row (coalesced). bf16 and f16 widen exactly; a
 * Q8_0 / Q4_0 row is dequantized d * q, bit for bit the reference's value
 * (src/cpu/embed.c). Quantized tables have the GPU layout of
 * kernel_args.h: quants and scales in separate arrays.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256) embed(fs_cu_ptr table, fs_cu_ptr scales, int dtype, int H, fs_cu_ptr step,
                                                      fs_cu_ptr out) {
    pdl_launch_dependents();
    tl_mark(TL_EMBED, TL_START, 0);
    pdl_wait();
    tl_mark(TL_EMBED, TL_WAITED, 0);
    const int t = blockIdx.x;
    if (t >= step_T(step)) return;
    const size_t id = (size_t)step_token(step, t)[FS_CU_TOK_ID];
    float *dst = (float *)out + (size_t)t * H;
#pragma unroll 4
    for (int k = threadIdx.x; k < H; k += blockDim.x) {
        float v;
        if (dtype == FS_CU_Q8_0 || dtype == FS_CU_Q4_0) {
            float d = f16_to_f32(((const uint16_t *)scales)[id * (H / 32) + k / 32]);
            int q;
            if (dtype == FS_CU_Q8_0) {
                q = ((const int8_t *)table)[id * H + k];
            } else {
                int j = k % 32;
                uint8_t byte = ((const uint8_t *)table)[id * (H / 2) + (k / 32) * 16 + (j & 15)];
                q = (j < 16 ? byte & 15 : byte >> 4) - 8;
            }
            v = d * (float)q;
        } else {
            v = weight_at(table, dtype, id * H + k);
        }
        dst[k] = v;
    }
}
