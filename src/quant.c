/* quant.c - Q8_0 / Q4_0 block quantization: rows, the scalar dot
 * product, and the one-time conversion of a loaded model's matrices.
 *
 *   Q8_0 block (34 bytes):  d = max|x| / 127        q[i] = round(x[i] / d)      x ~ d * q
 *   Q4_0 block (18 bytes):  d = m / -8, where m is the value of largest
 *                           magnitude (sign kept)    q[i] = clamp(round(x[i]/d + 8), 0, 15)
 *                                                     x ~ d * (q - 8)
 * Both follow GGUF (llama.cpp's ggml-quants reference code) so the bytes
 * match what a learner finds there. Q4_0 divides by -8, not by 7: the
 * extreme value m lands exactly on q = 0 (d * -8 = m) and the 16 levels
 * -8..7 are used on its side fully; the opposite extreme can only reach
 * +7 * |d| and clamps there (at most |m| / 8 off).
 * Rounding: Q8_0 rounds to nearest, ties to even (rintf), and so does the
 * CPU backend's AVX2 quantizer (src/cpu/quant_cpu.c): both write the same
 * bytes. Q4_0 rounds ties up, as GGUF does: it
 * truncates x/d + 8.5.
 *
 * Dot products (the CPU backend's inner loop, y = x W^T one row at a time):
 * the activations x are quantized to Q8_0 first, then per block
 *   sumi = sum_{i<32} qw[i] * qx[i]          exact, in integers
 *   sum += sumi * (d_w * d_x)                f32
 * The _ref versions here do exactly that in scalar C, in block order. The
 * SIMD versions (src/cpu/quant_cpu.c) compute the same integer sums; only
 * the f32 additions run in another order (several accumulators).
 *
 * Everything here is plain C for any machine: the formats, not the speed.
 *
 * Docs: docs/quantization.md
 */
#include "quant.h"
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The struct layouts are the file format: no padding allowed. */
_Static_assert(sizeof(fs_block_q8_0) == 34, "Q8_0 block must be 34 bytes");
_Static_assert(sizeof(fs_block_q4_0) == 18, "Q4_0 block must be 18 bytes");

int fs_dtype_from_weights_name(const char *s, fs_dtype *out) {
    static const struct {
        const char *name;
        fs_dtype t;
    } names[] = {{"bf16", FS_DTYPE_BF16}, {"f16", FS_DTYPE_F16},   {"f32", FS_DTYPE_F32},
                 {"q8_0", FS_DTYPE_Q8_0}, {"q4_0", FS_DTYPE_Q4_0}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) {
            *out = names[i].t;
            return 0;
        }
    return -1;
}

/* ---- quantize / dequantize ------------------------------------------ */

/* Two kinds of block have no finite f16 scale that describes them, and
 * would reach an undefined float-to-int cast below (x / d is NaN or out of
 * range):
 *   - a NaN or an infinity in the block: the scale is stored as NaN and
 *     every q as 0, so the whole block reads back as NaN. A NaN weight or
 *     activation must not pass for a plausible number (it had become 0):
 *     the forward pass then stops at "logit is NaN", and fs_model_convert
 *     refuses such a weight before that;
 *   - a block so small that d rounds to 0 as an f16 (largest |x| below
 *     about 2^-18 for Q8_0, 2^-22 for Q4_0; for denormal x, 1/d overflows
 *     to inf and 0 * inf is NaN): every q is 0, which is how the zero scale
 *     reads it back anyway. */
#define F16_NAN 0x7e00

static int block_finite(const float *xb) {
    for (int i = 0; i < FS_QK; i++)
        if (!isfinite(xb[i])) return 0;
    return 1;
}

void fs_quantize_row_q8_0(const float *x, fs_block_q8_0 *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        const float *xb = x + (size_t)b * FS_QK;
        if (!block_finite(xb)) {
            y[b].d = F16_NAN;
            memset(y[b].qs, 0, sizeof y[b].qs);
            continue;
        }
        float amax = 0.0f;
        for (int i = 0; i < FS_QK; i++)
            if (fabsf(xb[i]) > amax) amax = fabsf(xb[i]);
        float d = amax / 127.0f;
        y[b].d = fs_f32_to_f16(d);
        if (fs_f16_to_f32(y[b].d) == 0.0f) {
            memset(y[b].qs, 0, sizeof y[b].qs);
            continue;
        }
        float id = 1.0f / d;
        for (int i = 0; i < FS_QK; i++) y[b].qs[i] = (int8_t)rintf(xb[i] * id);
    }
}

void fs_quantize_row_q4_0(const float *x, fs_block_q4_0 *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        const float *xb = x + (size_t)b * FS_QK;
        if (!block_finite(xb)) {
            y[b].d = F16_NAN;
            memset(y[b].qs, 0x88, sizeof y[b].qs); /* q = 8 stands for 0 */
            continue;
        }
        float amax = 0.0f, m = 0.0f; /* largest magnitude, and that value with its sign */
        for (int i = 0; i < FS_QK; i++)
            if (fabsf(xb[i]) > amax) {
                amax = fabsf(xb[i]);
                m = xb[i];
            }
        float d = m / -8.0f;
        y[b].d = fs_f32_to_f16(d);
        if (fs_f16_to_f32(y[b].d) == 0.0f) {
            memset(y[b].qs, 0x88, sizeof y[b].qs);
            continue;
        }
        float id = 1.0f / d;
        for (int i = 0; i < FS_QK / 2; i++) {
            /* x/d lies in [-8, 8]; + 8.5 then truncation rounds half up into
             * [0, 16.5]; only the far extreme (16) needs the clamp. */
            int lo = (int)(xb[i] * id + 8.5f), hi = (int)(xb[i + 16] * id + 8.5f);
            lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
            hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
            y[b].qs[i] = (uint8_t)(lo | hi << 4);
        }
    }
}

void fs_dequantize_row_q8_0(const fs_block_q8_0 *x, float *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        float d = fs_f16_to_f32(x[b].d);
        for (int i = 0; i < FS_QK; i++) y[(size_t)b * FS_QK + (size_t)i] = d * (float)x[b].qs[i];
    }
}

void fs_dequantize_row_q4_0(const fs_block_q4_0 *x, float *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        float d = fs_f16_to_f32(x[b].d);
        float *yb = y + (size_t)b * FS_QK;
        for (int i = 0; i < FS_QK / 2; i++) {
            yb[i] = d * (float)((x[b].qs[i] & 15) - 8);
            yb[i + 16] = d * (float)((x[b].qs[i] >> 4) - 8);
        }
    }
}

/* ---- dot products: scalar reference --------------------------------- */

float fs_vec_dot_q8_0_q8_0_ref(int k, const fs_block_q8_0 *w, const fs_block_q8_0 *x) {
    float sum = 0.0f;
    for (int b = 0; b < k / FS_QK; b++) {
        int sumi = 0;
        for (int i = 0; i < FS_QK; i++) sumi += w[b].qs[i] * x[b].qs[i];
        sum += (float)sumi * (fs_f16_to_f32(w[b].d) * fs_f16_to_f32(x[b].d));
    }
    return sum;
}

float fs_vec_dot_q4_0_q8_0_ref(int k, const fs_block_q4_0 *w, const fs_block_q8_0 *x) {
    float sum = 0.0f;
    for (int b = 0; b < k / FS_QK; b++) {
        int sumi = 0;
        for (int i = 0; i < FS_QK / 2; i++) {
            sumi += ((w[b].qs[i] & 15) - 8) * x[b].qs[i];
            sumi += ((w[b].qs[i] >> 4) - 8) * x[b].qs[i + 16];
        }
        sum += (float)sumi * (fs_f16_to_f32(w[b].d) * fs_f16_to_f32(x[b].d));
    }
    return sum;
}

/* ---- model conversion ----------------------------------------------- */

void fs_row_to_f32(fs_dtype t, const void *row_, int k, float *out) {
    const uint8_t *row = row_;
    switch (t) {
    case FS_DTYPE_F32: memcpy(out, row, (size_t)k * sizeof(float)); break;
    case FS_DTYPE_F16:
        for (int i = 0; i < k; i++) {
            uint16_t h;
            memcpy(&h, row + 2 * (size_t)i, 2);
            out[i] = fs_f16_to_f32(h);
        }
        break;
    case FS_DTYPE_BF16:
        for (int i = 0; i < k; i++) {
            uint16_t h;
            memcpy(&h, row + 2 * (size_t)i, 2);
            out[i] = fs_bf16_to_f32(h);
        }
        break;
    case FS_DTYPE_Q8_0: fs_dequantize_row_q8_0((const fs_block_q8_0 *)row, out, k); break;
    case FS_DTYPE_Q4_0: fs_dequantize_row_q4_0((const fs_block_q4_0 *)row, out, k); break;
    }
}

/* Row n of a [N, K] tensor, as f32. */
static void read_row(const fs_tensor *t, int64_t n, int K, float *out) {
    fs_row_to_f32(t->dtype, (const uint8_t *)t->data + (size_t)n * fs_dtype_row_bytes(t->dtype, K), K, out);
}

/* Write K f32 values as one row of dtype `to` at dst. Returns 0, or -1 when
 * a value (or a block scale) does not fit the target's range. */
static int write_row(const float *x, int K, fs_dtype to, uint8_t *dst) {
    switch (to) {
    case FS_DTYPE_F32: memcpy(dst, x, (size_t)K * sizeof(float)); return 0;
    case FS_DTYPE_F16:
        for (int i = 0; i < K; i++) {
            uint16_t h = fs_f32_to_f16(x[i]);
            if (isfinite(x[i]) && !isfinite(fs_f16_to_f32(h))) return -1;
            memcpy(dst + 2 * (size_t)i, &h, 2);
        }
        return 0;
    case FS_DTYPE_BF16:
        for (int i = 0; i < K; i++) {
            uint16_t h = fs_f32_to_bf16(x[i]);
            memcpy(dst + 2 * (size_t)i, &h, 2);
        }
        return 0;
    case FS_DTYPE_Q8_0:
    case FS_DTYPE_Q4_0: {
        if (to == FS_DTYPE_Q8_0) fs_quantize_row_q8_0(x, (fs_block_q8_0 *)dst, K);
        else fs_quantize_row_q4_0(x, (fs_block_q4_0 *)dst, K);
        /* the block scale is an f16: a block whose largest |x| is beyond
         * 127 * 65504 (8 * 65504 for Q4_0) cannot be stored */
        size_t bs = fs_dtype_row_bytes(to, FS_QK);
        for (int b = 0; b < K / FS_QK; b++) {
            uint16_t d;
            memcpy(&d, dst + (size_t)b * bs, 2);
            if (!isfinite(fs_f16_to_f32(d))) return -1;
        }
        return 0;
    }
    }
    return -1;
}

/* Convert one bound matrix in place (the tensor then points at memory the
 * model owns). Block formats need K % 32 == 0; other matrices are kept as
 * stored, with a note on stderr (Qwen3 has none). */
static int convert_tensor(fs_model *m, fs_tensor *t, fs_dtype to, float *scratch, fs_err *e) {
    if (t->dtype == to || !t->data) return 0;
    int64_t N = t->shape[0], K = t->shape[1];
    if (t->ndim != 2) return fs_errf(e, "convert: tensor %s is not a matrix", t->name);
    if (fs_dtype_is_quant(to) && K % FS_QK) {
        fprintf(stderr, "fs: note: %s has K = %lld, not a multiple of %d; kept as %s, not %s\n", t->name,
                (long long)K, FS_QK, fs_dtype_name(t->dtype), fs_dtype_name(to));
        return 0;
    }
    size_t row_bytes = fs_dtype_row_bytes(to, K), bytes;
    if (!fs_mul_size(row_bytes, (size_t)N, &bytes))
        return fs_errf(e, "convert: tensor %s: %s size overflows", t->name, fs_dtype_name(to));
    uint8_t *dst = fs_model_own(m, bytes);
    if (!dst) return fs_errf(e, "convert: tensor %s: out of memory allocating %zu bytes", t->name, bytes);
    for (int64_t n = 0; n < N; n++) {
        read_row(t, n, (int)K, scratch);
        /* A block format has no NaN or infinity to store (the row would
         * quantize to a NaN scale): such a weight is refused by name. */
        for (int64_t i = 0; fs_dtype_is_quant(to) && i < K; i++)
            if (!isfinite(scratch[i]))
                return fs_errf(e, "convert: tensor %s row %lld column %lld is %s: %s cannot store it", t->name,
                               (long long)n, (long long)i, isnan(scratch[i]) ? "NaN" : scratch[i] > 0 ? "+inf" : "-inf",
                               fs_dtype_name(to));
        if (write_row(scratch, (int)K, to, dst + (size_t)n * row_bytes))
            return fs_errf(e, "convert: tensor %s row %lld: a value is too large for %s", t->name, (long long)n,
                           fs_dtype_name(to));
    }
    if (t->file_backed) fs_st_release_pages(t->data, t->nbytes);   /* the file's copy is not needed now */
    t->dtype = to;
    t->data = dst;
    t->file_backed = 0;
    t->nbytes = bytes;
    return 0;
}

int fs_model_convert(fs_model *m, fs_dtype to, fs_err *e) {
    const fs_config *c = &m->cfg;
    int64_t maxK = c->hidden;
    if ((int64_t)c->n_heads * c->head_dim > maxK) maxK = (int64_t)c->n_heads * c->head_dim;
    if (c->ffn > maxK) maxK = c->ffn;
    float *scratch = fs_xmalloc((size_t)maxK * sizeof(float));
    int tied = m->lm_head.data == m->embed_tokens.data;
    int rc = convert_tensor(m, &m->embed_tokens, to, scratch, e);
    for (int l = 0; l < c->n_layers && !rc; l++) {
        fs_layer *L = &m->layers[l];
        fs_tensor *mats[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj,
                             &L->gate_proj, &L->up_proj, &L->down_proj};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0] && !rc; i++) rc = convert_tensor(m, mats[i], to, scratch, e);
    }
    /* Tied: the output projection is the embedding matrix, converted once. */
    if (!rc && tied)
        m->lm_head = m->embed_tokens;
    else if (!rc) {
        rc = convert_tensor(m, &m->lm_head, to, scratch, e);
    }
    free(scratch);
    return rc;
}

void fs_q8_0_sums(const fs_block_q8_0 *x, int k, fs_q8_0_sum *out) {
    for (int b = 0; b < k / FS_QK; b++) {
        int s = 0;
        for (int i = 0; i < FS_QK; i++) s += x[b].qs[i];
        out[b].d = fs_f16_to_f32(x[b].d);
        out[b].s = s;
    }
}
