/* embed.c - token embedding: a gather of table rows.
 *
 *   out[t, :] = table[ids[t], :]      table: [V, H] bf16/f16/f32/Q8_0/Q4_0   out: [T, H] f32
 *
 * The first step of the forward pass: each token id of the step picks one
 * row of model.embed_tokens.weight. bf16 and f16 widen to f32 exactly, so
 * this op has no rounding at all (a Q8_0 / Q4_0 row is dequantized: d * q,
 * the weight format's own error and nothing more). The ids were checked
 * against V before set_step (fs_session_eval), because an op has no way to
 * report an error.
 *
 * Docs: docs/forward.md
 */
#include "quant.h"
#include "ref.h"

void fs_ref_embed(fs_backend *b, const fs_buf *table, int H, fs_buf *out) {
    const fs_ref *r = ref_ctx(b);
    size_t row_bytes = fs_dtype_row_bytes(table->dtype, H);
    for (int t = 0; t < r->T; t++)
        fs_row_to_f32(table->dtype, (const uint8_t *)table->data + (size_t)r->ids[t] * row_bytes, H,
                      buf_f32_mut(out) + (size_t)t * (size_t)H);
}
