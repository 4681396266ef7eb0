/* embed.c - token embedding: a gather of table rows.
 *
 *   out[t, :] = table[ids[t], :]      table: [V, H] bf16/f16/f32/Q8_0/Q4_0   out: [T, H] f32
 *
 * The first step of the forward pass: each token id picks one row of
 * model.embed_tokens.weight. bf16 and f16 widen to f32 exactly, so this op
 * has no rounding at all (a Q8_0 / Q4_0 row is dequantized: d * q, the
 * weight format's own error and nothing more). ids were checked against V by the caller
 * (fs_session_eval), because an op has no way to report an error.
 *
 * Docs: docs/forward.md
 */
#include "cpu.h"
#include "quant.h"

void fs_cpu_embed(fs_backend *b, const fs_buf *table, const int *ids, int T, int H, fs_buf *out) {
    (void)b;
    if (fs_dtype_is_quant(table->dtype)) {
        /* A quantized table row is H/32 whole blocks: dequantize it. */
        size_t row_bytes = fs_quant_row_bytes(table->dtype, H);
        for (int t = 0; t < T; t++) {
            const void *row = (const uint8_t *)table->data + (size_t)ids[t] * row_bytes;
            float *dst = cpu_f32_mut(out) + (size_t)t * (size_t)H;
            if (table->dtype == FS_DTYPE_Q8_0) fs_dequantize_row_q8_0(row, dst, H);
            else fs_dequantize_row_q4_0(row, dst, H);
        }
        return;
    }
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)ids[t] * (size_t)H;
        float *dst = cpu_f32_mut(out) + (size_t)t * (size_t)H;
        for (int i = 0; i < H; i++) dst[i] = cpu_get(table, row + (size_t)i);
    }
}
